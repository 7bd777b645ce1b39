"""WAV -> MP3, times real time: the engine's pipeline (ivr.media.transcode.wav_to_mp3: ffmpeg
in a subprocess, written atomically) against ffmpeg and lame called directly, on a minute of
8 kHz mono telephone speech."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run(speech: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ivr-bench-media-") as tmp:
        src, dst = Path(tmp) / "minute.wav", Path(tmp) / "out.mp3"
        _minute_of_speech(speech, src)
        seconds = wav_seconds(src)
        ffmpeg = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
                  str(src), "-ac", "1", "-codec:a", "libmp3lame", "-b:a", MP3_BITRATE,
                  "-f", "mp3", str(dst)]
        lame = ["lame", "--quiet", "-m", "m", "-b", MP3_BITRATE.rstrip("k"), str(src), str(dst)]
        walls = {
            "ivr.media.transcode": _timed(lambda: asyncio.run(wav_to_mp3(src, dst))),
            "ffmpeg": _timed(lambda: subprocess.run(ffmpeg, check=True)),
            "lame": _timed(lambda: subprocess.run(lame, check=True)),
        }
    return {"audio_seconds": round(seconds, 1),
            **{name: {"wall_s": round(w, 3), "x_realtime": round(seconds / w)}
               for name, w in walls.items()}}
