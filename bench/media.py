"""WAV -> MP3, times real time: the engine's pipeline (ivr.media.transcode.wav_to_mp3: ffmpeg
in a subprocess, written atomically) against ffmpeg and lame called directly, on a minute of
8 kHz mono telephone speech; and what checking a take costs (ivr.media.quality.analyse, and
processing.process for a kept one): CPU milliseconds per second of audio, on the caller's
speech as a take (the bench's take, with a second of line noise at both ends) and on the
minute."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ivr.media import processing, quality
from ivr.media.transcode import MP3_BITRATE, wav_seconds, wav_to_mp3

RUNS = 5


def _minute_of_speech(speech: Path, out: Path) -> None:
    repeats = max(1, int(60 / wav_seconds(speech)) + 1)
    subprocess.run(["sox", *[str(speech)] * repeats, str(out), "trim", "0", "60"], check=True)


def _timed(work: Any) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cpu_ms(work: Any) -> float:
    """Median CPU milliseconds of `work` (thread CPU: the machine's other load does not count)."""
    times = []
    for _ in range(RUNS * 4):
        start = time.thread_time()
        work()
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1000


def _take_checks(wavs: dict[str, Path]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    quality.analyse(wavs["take"].read_bytes())  # imports and filters built
    for name, path in wavs.items():
        data = path.read_bytes()
        seconds = wav_seconds(path)
        figures = quality.judged(quality.analyse(data), quality.Thresholds())  # type: ignore[arg-type]
        analysed = _cpu_ms(lambda d=data: quality.analyse(d))
        processed = _cpu_ms(lambda d=data, f=figures: processing.process(
            d, f, trim=True, target_lufs=-16.0))
        found[name] = {"audio_seconds": round(seconds, 2),
                       "analyse_ms": round(analysed, 2), "process_ms": round(processed, 2),
                       "analyse_ms_per_s": round(analysed / seconds, 3),
                       "process_ms_per_s": round(processed / seconds, 3)}
    return found


def run(speech: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ivr-bench-media-") as tmp:
        src, dst = Path(tmp) / "minute.wav", Path(tmp) / "out.mp3"
        _minute_of_speech(speech, src)
        seconds = wav_seconds(src)
        ffmpeg = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
                  str(src), "-ac", "1", "-codec:a", "libmp3lame", "-b:a", MP3_BITRATE,
                  "-f", "mp3", str(dst)]
        lame = ["lame", "--quiet", "-m", "m", "-b", MP3_BITRATE.rstrip("k"), str(src), str(dst)]
        take = Path(tmp) / "take.wav"
        subprocess.run(["sox", str(speech), "-r", "8000", "-c", "1", "-b", "16", str(take),
                        "pad", "1", "1"], check=True)
        checks = _take_checks({"take": take, "minute": src})
        walls = {
            "ivr.media.transcode": _timed(lambda: asyncio.run(wav_to_mp3(src, dst))),
            "ffmpeg": _timed(lambda: subprocess.run(ffmpeg, check=True)),
            "lame": _timed(lambda: subprocess.run(lame, check=True)),
        }
    return {"audio_seconds": round(seconds, 1), "take_checks": checks,
            **{name: {"wall_s": round(w, 3), "x_realtime": round(seconds / w)}
               for name, w in walls.items()}}
