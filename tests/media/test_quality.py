"""Take quality on generated audio (espeak-ng speech, sox for silence, gain, clipping and
noise), at the telephone rate takes are recorded at."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ivr.media.quality import VERDICTS, Thresholds, analyse, judged, verdict

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it takes a short nap."
TELEPHONE = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed"]


def sox(*args: str | Path) -> None:
    subprocess.run(["sox", "-D", "-R", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each kind of take, as bytes of an 8 kHz 16-bit WAV."""
    d = tmp_path_factory.mktemp("quality")
    raw = d / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "--stdin"],
                   input=SENTENCE.encode(), check=True)
    # Half a second of room before and after, as after a beep and before the `#`.
    sox(raw, *TELEPHONE, d / "speech.wav", "norm", "-3", "pad", "0.5", "0.7")
    sox(d / "speech.wav", d / "clipped.wav", "gain", "20")
    sox(d / "speech.wav", d / "quiet.wav", "gain", "-35")
    sox("-n", *TELEPHONE, d / "silence.wav", "trim", "0", "4")
    seconds = subprocess.run(["soxi", "-D", str(d / "speech.wav")], check=True,
                             capture_output=True, text=True).stdout.strip()
    sox("-n", *TELEPHONE, d / "hiss.wav", "synth", seconds, "whitenoise", "vol", "0.25")
    sox("-m", d / "speech.wav", d / "hiss.wav", d / "noisy.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(d / "yes-raw.wav"), "--stdin"],
                   input=b"yes", check=True)
    sox(d / "yes-raw.wav", *TELEPHONE, d / "word.wav", "norm", "-3", "trim", "0", "0.2",
        "pad", "0.5", "0.5")
    return {p.stem: p.read_bytes() for p in d.glob("*.wav")}


def test_speech_is_ok_with_its_figures(audio: dict[str, bytes]) -> None:
    q = analyse(audio["speech"])
    assert q is not None
    assert verdict(q, Thresholds()) == "ok"
    assert 2.5 < q.speech_seconds < q.duration_seconds
    # The padding is found as silence (within a VAD frame or two, and espeak's own lead-in).
    assert 0.4 <= q.leading_silence_seconds < 0.8, q
    assert 0.6 <= q.trailing_silence_seconds < 1.1, q
    assert -30 < q.loudness_lufs < -12, q  # type: ignore[operator]
    assert -4 < q.sample_peak_dbfs <= -2.9 and q.true_peak_dbfs >= q.sample_peak_dbfs
    assert q.clipped_ratio == 0
    assert q.snr_db is not None and q.snr_db > 30
    stored = judged(q, Thresholds())
    assert stored["verdict"] == "ok" and stored["speech_seconds"] == q.speech_seconds


def test_silence_is_no_speech(audio: dict[str, bytes]) -> None:
    q = analyse(audio["silence"])
    assert q is not None and verdict(q, Thresholds()) == "no_speech"
    assert q.speech_seconds == 0 and q.loudness_lufs is None and q.snr_db is None
    assert q.leading_silence_seconds == q.trailing_silence_seconds == 4.0


def test_clipped_speech_is_too_loud(audio: dict[str, bytes]) -> None:
    q = analyse(audio["clipped"])
    assert q is not None and verdict(q, Thresholds()) == "too_loud_clipped"
    assert q.clipped_ratio > 0.05 and q.sample_peak_dbfs > -0.1
    assert q.true_peak_dbfs > q.sample_peak_dbfs  # a clipped wave overshoots between samples


def test_very_quiet_speech_is_too_quiet(audio: dict[str, bytes]) -> None:
    q = analyse(audio["quiet"])
    assert q is not None and verdict(q, Thresholds()) == "too_quiet"
    assert q.loudness_lufs is not None and q.loudness_lufs < -50
    # The limit is the recorder's: one that takes whispers keeps it.
    assert verdict(q, Thresholds(min_loudness_lufs=-60)) == "ok"


def test_speech_under_loud_hiss_is_noisy(audio: dict[str, bytes]) -> None:
    q = analyse(audio["noisy"])
    assert q is not None and verdict(q, Thresholds()) == "noisy"
    assert q.snr_db is not None and q.snr_db < 12
    assert verdict(q, Thresholds(min_snr_db=0)) == "ok"


def test_a_fragment_of_a_word_is_too_short(audio: dict[str, bytes]) -> None:
    q = analyse(audio["word"])
    assert q is not None and 0.2 <= q.speech_seconds < 0.3, q
    assert verdict(q, Thresholds()) == "too_short"
    assert verdict(q, Thresholds(min_speech_seconds=0.2)) == "ok"


def test_not_a_wav_has_no_figures() -> None:
    assert analyse(b"") is None
    assert analyse(b"RIFF....WAVEfmt junk") is None


def test_analysis_is_fast(audio: dict[str, bytes]) -> None:
    """Well under the review menu's start: milliseconds for a take of seconds."""
    analyse(audio["speech"])  # imports and filters built
    started = time.perf_counter()
    for _ in range(10):
        analyse(audio["speech"])
    per_take = (time.perf_counter() - started) / 10
    assert per_take < 0.05, f"{per_take * 1000:.1f} ms per take"


def test_the_true_peak_is_the_whole_takes_oversampled_peak(audio: dict[str, bytes]) -> None:
    """Only the stretches near the sample peak are oversampled: the figure is the same."""
    import numpy as np
    from scipy.signal import resample_poly

    from ivr.media.quality import _true_peak, read_wav

    for name, data in audio.items():
        read = read_wav(data)
        assert read is not None
        x, _ = read
        whole = float(np.max(np.abs(resample_poly(x, 4, 1)))) if len(x) else 0.0
        assert _true_peak(x) == pytest.approx(whole, abs=1e-9), name


def test_every_verdict_but_ok_has_a_prompt_saying_it() -> None:
    from ivr.media.manifest import MANIFEST, load_manifest
    from tests.conftest import PROMPTS_DIR

    names = load_manifest(PROMPTS_DIR / "en" / MANIFEST)
    assert {f"quality_{v}" for v in VERDICTS if v != "ok"} <= set(names)
    for v in VERDICTS:
        if v != "ok":
            assert (PROMPTS_DIR / "en" / f"quality_{v}.wav").is_file()


def test_the_loudness_is_pyloudnorms(audio: dict[str, bytes]) -> None:
    """All blocks at once give the figure pyloudnorm's Meter gives block by block."""
    import numpy as np
    import pyloudnorm

    from ivr.media.quality import _loudness, read_wav

    for name, data in audio.items():
        read = read_wav(data)
        assert read is not None
        x, rate = read
        if len(x) < rate * 0.4:
            x = np.concatenate([x, np.zeros(int(rate * 0.4) - len(x) + 1)])
        reference = float(pyloudnorm.Meter(rate).integrated_loudness(x))
        expected = round(reference, 1) if np.isfinite(reference) else None
        assert _loudness(x, rate) == expected, name
