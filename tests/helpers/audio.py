"""Audio in tests: a take's file over the API, the loudness of a stretch of a WAV, the test
speech with silence around it."""

from __future__ import annotations

import array
import io
import math
import wave
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient


async def audio(api: TestClient, url: str) -> bytes:
    """The bytes behind an absolute audio URL the API gave, fetched from the test app."""
    resp = await api.get(url[url.index("/", url.index("//") + 2):])
    assert resp.status == 200, url
    return await resp.read()


def loudness(wav: bytes, start: float, end: float) -> int:
    """RMS of the [start, end) seconds of a 16-bit WAV."""
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        w.setpos(int(start * rate))
        samples = array.array("h", w.readframes(int((end - start) * rate)))
    return int(math.sqrt(sum(x * x for x in samples) / max(len(samples), 1)))


SPEECH = Path(__file__).parent.parent / "data" / "speech-fox.wav"


def padded(silence_before: float, silence_after: float, gain_db: float = 0.0) -> bytes:
    """tests/data/speech-fox.wav with seconds of digital silence before and after, at a gain."""
    with wave.open(str(SPEECH)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    x = np.concatenate([np.zeros(int(rate * silence_before)), x * 10 ** (gain_db / 20),
                        np.zeros(int(rate * silence_after))])
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.clip(-32768, 32767).astype("<i2").tobytes())
    return out.getvalue()
