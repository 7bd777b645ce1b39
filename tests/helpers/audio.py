"""Reading audio in tests: a take's file over the API, the loudness of a stretch of a WAV."""

from __future__ import annotations

import array
import io
import math
import wave

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
