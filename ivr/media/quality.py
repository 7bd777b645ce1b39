"""How good a take is, measured from its WAV: pure analysis, no telephony.

Speech is found with WebRTC's voice activity detector (webrtcvad-wheels, 30 ms frames), and a
frame counts only when it is also above SPEECH_FLOOR_DBFS (the detector alone calls faint
line noise speech). Loudness is ITU-R BS.1770 integrated loudness (pyloudnorm); the true peak
is the sample peak of the take oversampled 4x; a sample is clipped at CLIP_LEVEL of full scale
or more (G.711's loudest code is 0.98). The signal-to-noise estimate compares the loud frames
(95th percentile of 20 ms frame power) with the quiet ones (10th percentile): the noise floor
between words against speech over it.

`analyse` takes a few milliseconds per second of audio; it runs in a worker thread
(`analyse_off_loop`), never on the event loop."""

from __future__ import annotations

import asyncio
import io
import math
import threading
import wave
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import webrtcvad

from ivr.core import threads

VERDICTS = ("ok", "no_speech", "too_quiet", "too_loud_clipped", "too_short", "noisy")
VAD_RATES = (8000, 16000, 32000, 48000)
VAD_FRAME_MS = 30
VAD_AGGRESSIVENESS = 2  # 0-3; 3 misses soft speech on a phone line
SPEECH_FLOOR_DBFS = -60.0
NO_SPEECH_SECONDS = 0.2  # less voiced time than this is no speech at all
CLIP_LEVEL = 0.97
SNR_FRAME_MS = 20
SNR_CAP_DB = 60.0
FLOOR_DB = -120.0  # what digital silence measures, in place of minus infinity

# Takes of several calls are analysed at once without waiting behind the default executor's
# file writes (fsync) and MP3 encodings.
_POOL = threads.pool("take-quality", 2)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A recorder's limits for an ok take (its quality_* settings)."""

    min_speech_seconds: float = 0.3
    min_loudness_lufs: float = -40.0
    max_clipped_ratio: float = 0.01
    min_snr_db: float = 12.0


@dataclass(frozen=True, slots=True)
class TakeQuality:
    duration_seconds: float
    speech_seconds: float
    leading_silence_seconds: float  # before the first speech (all of it without speech)
    trailing_silence_seconds: float  # after the last speech (all of it without speech)
    loudness_lufs: float | None  # None: nothing loud enough to measure (BS.1770's gates)
    sample_peak_dbfs: float
    true_peak_dbfs: float
    clipped_ratio: float
    snr_db: float | None  # None without speech

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _db(power_or_amplitude: float, *, power: bool = False) -> float:
    if power_or_amplitude <= 0:
        return FLOOR_DB
    return max(FLOOR_DB, (10 if power else 20) * math.log10(power_or_amplitude))


def read_wav(data: bytes) -> tuple[np.ndarray, int] | None:
    """Mono float samples in [-1, 1] and the rate of a 16-bit PCM WAV; None if it is not one."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            if w.getsampwidth() != 2 or w.getnframes() == 0:
                return None
            channels, rate = w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None
    samples = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels)[:, 0]
    return samples.astype(np.float64) / 32768.0, rate


def _speech_frames(x: np.ndarray, rate: int) -> np.ndarray:
    """One boolean per 30 ms frame: speech or not."""
    if rate not in VAD_RATES:
        from scipy.signal import resample_poly
        x, rate = resample_poly(x, 16000, rate), 16000
    n = rate * VAD_FRAME_MS // 1000
    count = len(x) // n
    if count == 0:
        return np.zeros(0, dtype=bool)
    frames = x[: count * n].reshape(count, n)
    loud = 10 * np.log10(np.maximum(np.mean(frames ** 2, axis=1), 1e-20)) > SPEECH_FLOOR_DBFS
    pcm = (np.clip(frames, -1, 32767 / 32768) * 32768).astype("<i2")
    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    return np.array([bool(loud[i]) and vad.is_speech(pcm[i].tobytes(), rate)
                     for i in range(count)], dtype=bool)


_TRUE_PEAK_HEADROOM = 10 ** (3.1 / 20)  # 3 dB, and a little
_TRUE_PEAK_CONTEXT = 64  # samples either side: resample_poly's filter reaches ~10


@lru_cache(maxsize=8)
def _k_weighting(rate: int) -> tuple[np.ndarray, float]:
    """BS.1770's K-weighting at `rate` as second-order sections: pyloudnorm's two biquads (its
    coefficients, designed for any rate) and their gain."""
    import pyloudnorm
    stages = list(pyloudnorm.Meter(rate)._filters.values())
    sos = np.array([np.concatenate([s.b / s.a[0], s.a / s.a[0]]) for s in stages])
    return sos, float(np.prod([s.passband_gain for s in stages]))


def _loudness(x: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (BS.1770-4, mono): the K-weighted mean square over 400 ms blocks
    with 75 % overlap, gated at -70 LUFS and then 10 LU under the gated mean. pyloudnorm's
    Meter gives the same figure block by block in Python; this takes all blocks at once."""
    from scipy.signal import sosfilt
    if len(x) < rate * 0.4:  # shorter than one BS.1770 block: pad with silence
        x = np.concatenate([x, np.zeros(int(rate * 0.4) - len(x) + 1)])
    sos, gain = _k_weighting(rate)
    y = gain * sosfilt(sos, x)
    count = int(np.round((len(x) / rate - 0.4) / 0.1)) + 1
    block = np.arange(count)
    lower = (0.4 * (block * 0.25) * rate).astype(np.int64)  # pyloudnorm's bounds, exactly
    upper = (0.4 * (block * 0.25 + 1) * rate).astype(np.int64)
    energy = np.concatenate([[0.0], np.cumsum(y * y)])
    z = (energy[np.minimum(upper, len(y))] - energy[lower]) / (0.4 * rate)
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10 * np.log10(np.maximum(z, 0.0))
    gated = z[blocks >= -70.0]
    if not len(gated):
        return None
    relative = -0.691 + 10 * math.log10(float(np.mean(gated))) - 10.0
    kept = z[(blocks > relative) & (blocks > -70.0)]
    if not len(kept) or float(np.mean(kept)) <= 0:
        return None
    return round(-0.691 + 10 * math.log10(float(np.mean(kept))), 1)


@lru_cache(maxsize=1)
def _oversampling_filter() -> np.ndarray:
    # What resample_poly(x, 4, 1) designs on every call; designed once, it costs nothing.
    from scipy.signal import firwin
    return firwin(2 * 10 * 4 + 1, 1 / 4, window=("kaiser", 5.0))


def _oversampled_peak(x: np.ndarray) -> float:
    from scipy.signal import resample_poly
    return float(np.max(np.abs(resample_poly(x, 4, 1, window=_oversampling_filter()))))


def _true_peak(x: np.ndarray) -> float:
    """BS.1770's true peak: the peak of the signal oversampled 4 times. A band-limited signal
    peaks between two samples at most ~3 dB above them, so only the stretches around samples
    within 3 dB of the sample peak are oversampled (with context enough for the filter), not
    the whole take: the same figure for a fraction of the work."""
    if not len(x):
        return 0.0
    near = np.flatnonzero(np.abs(x) >= np.max(np.abs(x)) / _TRUE_PEAK_HEADROOM)
    if len(near) > len(x) // 8:  # loud throughout: the whole take, once
        return _oversampled_peak(x)
    breaks = np.flatnonzero(np.diff(near) > 2 * _TRUE_PEAK_CONTEXT) + 1
    best = 0.0
    for group in np.split(near, breaks):
        lo = max(0, int(group[0]) - _TRUE_PEAK_CONTEXT)
        hi = min(len(x), int(group[-1]) + _TRUE_PEAK_CONTEXT + 1)
        best = max(best, _oversampled_peak(x[lo:hi]))
    return best


def _snr(x: np.ndarray, rate: int) -> float:
    n = rate * SNR_FRAME_MS // 1000
    count = len(x) // n
    if count < 2:
        return 0.0
    power = np.mean(x[: count * n].reshape(count, n) ** 2, axis=1)
    noise = max(float(np.percentile(power, 10)), 1e-12)  # -120 dBFS: digital silence
    signal = float(np.percentile(power, 95))
    return round(min(SNR_CAP_DB, max(0.0, _db(signal / noise, power=True))), 1)


def analyse(data: bytes) -> TakeQuality | None:
    """The take's figures; None when `data` is not a 16-bit PCM WAV."""
    read = read_wav(data)
    if read is None:
        return None
    x, rate = read
    duration = len(x) / rate
    speech = _speech_frames(x, rate)
    frame = VAD_FRAME_MS / 1000
    voiced = np.flatnonzero(speech)
    speech_seconds = len(voiced) * frame
    if len(voiced):
        leading = float(voiced[0]) * frame
        trailing = max(0.0, duration - float(voiced[-1] + 1) * frame)
    else:
        leading = trailing = duration
    peak = float(np.max(np.abs(x)))
    return TakeQuality(
        duration_seconds=round(duration, 3),
        speech_seconds=round(speech_seconds, 2),
        leading_silence_seconds=round(leading, 2),
        trailing_silence_seconds=round(trailing, 2),
        loudness_lufs=_loudness(x, rate),
        sample_peak_dbfs=round(_db(peak), 1),
        true_peak_dbfs=round(_db(max(peak, _true_peak(x))), 1),
        clipped_ratio=round(float(np.mean(np.abs(x) >= CLIP_LEVEL)), 4),
        snr_db=_snr(x, rate) if len(voiced) else None,
    )


def silence(seconds: float) -> TakeQuality:
    """The figures of a take that was silence throughout, of which no audio was kept (Asterisk
    writes none of a take it hears no sound in)."""
    seconds = round(seconds, 3)
    return TakeQuality(seconds, 0.0, seconds, seconds, None, FLOOR_DB, FLOOR_DB, 0.0, None)


def verdict(q: TakeQuality, limits: Thresholds) -> str:
    """`ok`, or the first thing wrong with the take, in the order a caller should fix them."""
    if q.clipped_ratio > limits.max_clipped_ratio:
        return "too_loud_clipped"
    if q.speech_seconds < NO_SPEECH_SECONDS:
        return "no_speech"
    if q.loudness_lufs is None or q.loudness_lufs < limits.min_loudness_lufs:
        return "too_quiet"
    if q.speech_seconds < limits.min_speech_seconds:
        return "too_short"
    if q.snr_db is not None and q.snr_db < limits.min_snr_db:
        return "noisy"
    return "ok"


def judged(q: TakeQuality, limits: Thresholds) -> dict[str, Any]:
    """What is stored with a take and shown: the figures and the verdict."""
    return {**q.as_dict(), "verdict": verdict(q, limits)}


async def analyse_off_loop(data: bytes) -> TakeQuality | None:
    return await asyncio.get_running_loop().run_in_executor(_POOL, analyse, data)


def warm_up() -> None:
    """Import scipy and pyloudnorm (about a second) and build the telephone-rate meter now, in
    a thread, so the first take of a new process is analysed as fast as the rest."""
    threading.Thread(target=_warm, name="take-quality-warm-up", daemon=True).start()


def _warm() -> None:
    analyse(_silence_wav(8000, 0.5))


def _silence_wav(rate: int, seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * seconds))
    return out.getvalue()
