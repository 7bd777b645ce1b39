"""Speech recognition for `asr` plays, behind one small interface (`Recognizer`) so another
engine can be plugged in.

`PocketsphinxRecognizer` is offline: PyPI `pocketsphinx` 5.x with its bundled en-US 16 kHz
model. The caller is recorded at the channel's own 8 kHz and upsampled here by linear
interpolation (which leaves nothing above 4 kHz): Asterisk's own `wav16` recording carried
artifacts up there that made the same words fail to match, and the 16 kHz model cannot be
configured for 8 kHz input (its feat.params fix the filter bank at 6.8 kHz).

Two modes:
- with `phrases` (the API's `asr_phrases`), a JSGF grammar of exactly those phrases: speech
  matching one of them comes back as that phrase; other speech or noise matches nothing
  (None). This is reliable on telephone audio.
- without phrases, free dictation with the bundled language model. On 8 kHz telephone audio
  of synthetic speech it is poor (measured: "yes I would like to pay my bill" came back as
  "yeah i look like they might real"): use phrases where the answers are known.

Decoding is CPU-bound and blocking: callers run `recognize` in a thread (asyncio.to_thread);
each call builds its own decoder, so threads never share one."""

from __future__ import annotations

import array
import functools
import itertools
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

SAMPLE_RATE = 16000
WORD_RE = re.compile(r"^[a-z']{1,40}$")


class Recognizer(Protocol):
    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        """Words of `phrases` the engine cannot recognise (for a clear 400)."""
        ...

    def recognize(self, pcm: bytes, sample_rate: int, phrases: Sequence[str] | None
                  ) -> str | None:
        """The phrase heard in 16-bit mono `pcm` (one of `phrases` when given), or None.
        Blocking."""
        ...


def upsample_2x(pcm: bytes) -> bytes:
    """16-bit mono PCM at twice the rate: each sample, then the mean with the next."""
    src = array.array("h", pcm)
    out = array.array("h", bytes(4 * len(src)))
    out[0::2] = src
    if len(src) > 1:
        out[1:-1:2] = array.array("h", ((a + b) // 2 for a, b in itertools.pairwise(src)))
        out[-1] = src[-1]
    return out.tobytes()


def normalize(phrase: str) -> str:
    """Lower case, punctuation other than apostrophes dropped, single spaces."""
    return " ".join(re.sub(r"[^a-z' ]+", " ", phrase.lower()).split())


def jsgf(phrases: Sequence[str]) -> str:
    choices = " | ".join(f"( {normalize(p)} )" for p in phrases)
    return f"#JSGF V1.0;\ngrammar asr;\npublic <phrase> = {choices} ;\n"


class PocketsphinxRecognizer:

    def __init__(self, model_dir: Path | None = None) -> None:
        from pocketsphinx import get_model_path  # imported here: the engine is optional

        root = Path(model_dir or get_model_path())
        self.hmm = str(root / "en-us" / "en-us")
        self.dict = str(root / "en-us" / "cmudict-en-us.dict")
        self.lm = str(root / "en-us" / "en-us.lm.bin")

    @functools.cached_property
    def _words(self) -> frozenset[str]:
        with open(self.dict, encoding="utf-8") as handle:
            return frozenset(line.split(" ", 1)[0].split("(", 1)[0] for line in handle)

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        words = {w for p in phrases for w in normalize(p).split()}
        return sorted(w for w in words if w not in self._words)

    def recognize(self, pcm: bytes, sample_rate: int, phrases: Sequence[str] | None
                  ) -> str | None:
        from pocketsphinx import Decoder

        if sample_rate * 2 == SAMPLE_RATE:
            pcm = upsample_2x(pcm)
        elif sample_rate != SAMPLE_RATE:
            raise ValueError(f"audio at {sample_rate} Hz: give 8 or 16 kHz")
        # dither (seeded: repeatable): synthetic or digitally silent audio (runs of exact
        # zeros) otherwise upsets the model's noise estimate and whole phrases fail to match.
        common = {"hmm": self.hmm, "dict": self.dict, "samprate": SAMPLE_RATE,
                  "dither": True, "seed": 1, "loglevel": "FATAL"}
        if not phrases:
            return self._decode(Decoder(lm=self.lm, **common), pcm)
        with tempfile.NamedTemporaryFile("w", suffix=".gram", delete=False) as grammar:
            grammar.write(jsgf(phrases))
        try:
            heard = self._decode(Decoder(jsgf=grammar.name, **common), pcm)
        finally:
            os.unlink(grammar.name)
        # Only a whole phrase counts (a search that ran out of audio can end mid-phrase), and
        # it goes back as the application wrote it.
        return next((p for p in phrases if normalize(p) == heard), None)

    @staticmethod
    def _decode(decoder: Any, pcm: bytes) -> str | None:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = " ".join(hyp.hypstr.split()) if hyp is not None else ""
        return text or None


def default_recognizer() -> Recognizer | None:
    """The bundled engine, or None where pocketsphinx is not installed (asr answers 400)."""
    try:
        return PocketsphinxRecognizer()
    except ImportError:
        return None
