"""Text to speech for what the prompt set cannot know in advance (a recording's name). The
flow needs a media URI, not audio: an engine synthesizes to a file the engine serves over HTTP
and returns its `sound:http://...` URI. Files are named by a keyed hash of voice + text, so
each text is synthesized once and its URL never changes meaning (Asterisk may cache it for a
year)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from pathlib import Path
from typing import Protocol

from ivr.core.errors import InvalidParameter
from ivr.core.files import private_dir, publish
from ivr.media.process import run_tool
from ivr.media.signing import media_key, sign
from ivr.media.speech import PIPELINE, VOICE, espeak_command, telephone_wav_command

MAX_TEXT = 500
# The APIs' languages (BCP 47 tags) -> espeak-ng voices; a gender is a variant of the voice.
LANGUAGES = {"en-US": "en-us", "en-GB": "en-gb", "de-DE": "de", "fr-FR": "fr",
             "es-ES": "es", "es-US": "es-419", "es-MX": "es-419", "it-IT": "it",
             "nl-NL": "nl", "pt-PT": "pt", "pt-BR": "pt-br", "mt-MT": "mt"}
VOICES = {"male": "", "female": "+f3"}
# At most this many syntheses run at once; the rest wait (a burst of calls must not fork
# hundreds of espeak-ng processes).
MAX_CONCURRENT = 4
TTS_FILE = re.compile(r"[0-9a-f]{64}")


class Tts(Protocol):
    async def synthesize(self, text: str) -> str:
        """The ARI media URI that speaks `text`."""
        ...


def _folded(tag: str) -> str:
    return tag.replace("_", "-").lower()


def _by_tag() -> dict[str, str]:
    """Case and `_` do not matter; a bare language ("es") is its first tag above."""
    found: dict[str, str] = {}
    for tag, voice in LANGUAGES.items():
        found[_folded(tag)] = voice
        found.setdefault(_folded(tag).partition("-")[0], voice)
    return found


_BY_TAG = _by_tag()


def espeak_voice(language: str, voice: str) -> str | None:
    """The espeak-ng voice speaking `language` ("es-US", "en_us", "fr") in a `voice`
    ("male" | "female", any case), or None when there is none."""
    base = _BY_TAG.get(_folded(language))
    variant = VOICES.get(voice.lower())
    if base is None or variant is None:
        return None
    return base + variant


def tts_dir(data_dir: Path) -> Path:
    return data_dir / "tts"


class EspeakTts:
    def __init__(self, data_dir: Path, public_url: str, voice: str = VOICE) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_+-]{1,40}", voice):
            raise InvalidParameter("voice", f"bad espeak-ng voice {voice!r}")
        self.voice = voice
        self.dir = tts_dir(data_dir)
        self._key = media_key(data_dir)
        self._base = f"sound:{public_url.rstrip('/')}/media/tts/"
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self.syntheses = 0  # how many texts were actually synthesized (not served from cache)

    def digest(self, text: str) -> str:
        """The file name for `text`: keyed, so a file's name does not reveal (or confirm a
        guess of) what it says."""
        return sign(self._key, f"{PIPELINE}\0{self.voice}\0{text}", length=64)

    async def synthesize(self, text: str) -> str:
        text = " ".join(text.split())
        if not text:
            raise InvalidParameter("text", "nothing to say")
        if len(text) > MAX_TEXT:
            raise InvalidParameter("text", f"text is longer than {MAX_TEXT} characters")
        digest = self.digest(text)
        uri = f"{self._base}{digest}.wav"
        if (self.dir / f"{digest}.wav").is_file():
            return uri
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._make(digest, text))
            self._pending[digest] = pending
            pending.add_done_callback(lambda done: self._finished(digest, done))
        # A caller hanging up cancels its own wait, never the synthesis others share.
        await asyncio.shield(pending)
        return uri

    def _finished(self, digest: str, done: asyncio.Future[None]) -> None:
        self._pending.pop(digest, None)
        if not done.cancelled():
            done.exception()  # seen, even when every waiter has gone: the next call retries

    async def _make(self, digest: str, text: str) -> None:
        async with self._slots:
            private_dir(self.dir)
            stem = f".{digest}.{secrets.token_hex(4)}"
            raw, out = self.dir / f"{stem}.espeak", self.dir / f"{stem}.part"
            try:
                await run_tool(espeak_command(self.voice, raw), text.encode())
                await run_tool(telephone_wav_command(raw, out))
                publish(out, self.dir / f"{digest}.wav")
                self.syntheses += 1
            finally:
                for leftover in (raw, out):
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()

