"""A kept take made ready for listening: the silence at both ends trimmed (a short pad kept, so
the first and last syllables are not clipped) and its loudness brought to a target (ITU-R
BS.1770 integrated loudness, as measured by quality.py) without its true peak passing a
ceiling. Only gain and cutting: no compression, no filtering; the take as recorded is kept
beside the result by the caller of `process`."""

from __future__ import annotations

import io
import math
import wave
from typing import Any

import numpy as np

from ivr.media.quality import _true_peak

PAD_SECONDS = 0.3  # of the silence trimmed, this much is kept at each end
PEAK_CEILING_DBTP = -1.0  # normalising never lifts the true peak above this


def process(data: bytes, figures: dict[str, Any], *, trim: bool,
            target_lufs: float | None) -> bytes | None:
    """The processed WAV, or None when there is nothing to do (not a take with speech, not a
    16-bit WAV, or nothing asked). `figures`: the take's analysis (quality.judged)."""
    if not figures or figures.get("speech_seconds", 0) <= 0 or (not trim and target_lufs is None):
        return None
    try:
        with wave.open(io.BytesIO(data)) as w:
            params = w.getparams()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None
    if params.sampwidth != 2 or params.nchannels != 1 or not raw:
        return None
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    rate = params.framerate
    if trim:
        start = max(0.0, float(figures["leading_silence_seconds"]) - PAD_SECONDS)
        end = len(samples) / rate - max(0.0, float(figures["trailing_silence_seconds"])
                                        - PAD_SECONDS)
        samples = samples[int(start * rate):max(int(start * rate) + 1, int(end * rate))]
    if target_lufs is not None:
        samples = samples * 10 ** (_gain_db(samples, rate, target_lufs, figures) / 20)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return out.getvalue()


def _gain_db(samples: np.ndarray, rate: int, target_lufs: float,
             figures: dict[str, Any]) -> float:
    # The analysis's figures, not a second pass over the take: BS.1770's gates leave out the
    # silence trimmed (within 0.2 LU of the trimmed take's own figure on every kind of take in
    # tests/media), and trimming only removes samples, so the trimmed take peaks no higher. The
    # peak figure is rounded to 0.1 dB: half a step more keeps the ceiling a ceiling.
    loudness = figures.get("loudness_lufs")
    if loudness is None:
        return 0.0
    peak_db = figures.get("true_peak_dbfs")
    if peak_db is not None:
        peak_db = float(peak_db) + 0.05
    else:
        peak = _true_peak(samples)
        peak_db = 20 * math.log10(peak) if peak > 0 else -120.0
    return min(target_lufs - float(loudness), PEAK_CEILING_DBTP - float(peak_db))
