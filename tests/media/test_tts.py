"""espeak-ng text to speech: cached by text, shared by concurrent requests, served by file."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from ivr.core.errors import InvalidParameter
from ivr.media.transcode import wav_info
from ivr.media.tts import EspeakTts

PUBLIC = "http://media.example:8080"


def _file(tts: EspeakTts, uri: str) -> Path:
    prefix = f"sound:{PUBLIC}/media/tts/"
    assert uri.startswith(prefix) and uri.endswith(".wav")
    return tts.dir / uri[len(prefix):]


async def test_a_text_is_synthesized_once_to_an_8k_wav(tmp_path: Path) -> None:
    tts = EspeakTts(tmp_path, PUBLIC)
    uri = await tts.synthesize("Greeting for Alice")
    info = wav_info(_file(tts, uri))
    assert info.telephone_ready and 0.5 < info.seconds < 3
    assert await tts.synthesize("  Greeting   for Alice ") == uri  # same words, same file
    assert tts.syntheses == 1
    other = await tts.synthesize("Greeting for Bob")
    assert other != uri and tts.syntheses == 2
    # A new engine on the same folder (a restart, another process) reuses the files.
    again = EspeakTts(tmp_path, PUBLIC)
    assert await again.synthesize("Greeting for Alice") == uri and again.syntheses == 0
    assert sorted(p.name for p in tts.dir.iterdir()) == sorted(
        [_file(tts, uri).name, _file(tts, other).name]), "no temporary files left behind"


async def test_concurrent_requests_for_one_text_share_one_synthesis(tmp_path: Path) -> None:
    tts = EspeakTts(tmp_path, PUBLIC)
    uris = await asyncio.gather(*(tts.synthesize("Recording for the spring catalogue")
                                  for _ in range(8)))
    assert len(set(uris)) == 1 and tts.syntheses == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_synthesis(tmp_path: Path) -> None:
    tts = EspeakTts(tmp_path, PUBLIC)
    first = asyncio.create_task(tts.synthesize("Hung up caller"))
    second = asyncio.create_task(tts.synthesize("Hung up caller"))
    await asyncio.sleep(0)  # both now wait on the one synthesis, which is still running
    assert list(tts._pending) == [tts.digest("Hung up caller")]
    first.cancel()
    uri = await second
    assert first.cancelled() and _file(tts, uri).is_file() and tts.syntheses == 1


async def test_the_file_name_does_not_reveal_the_text(tmp_path: Path) -> None:
    tts = EspeakTts(tmp_path, PUBLIC)
    uri = await tts.synthesize("Alice")
    plain = hashlib.sha256(b"en-usAlice").hexdigest()
    assert plain not in uri and len(_file(tts, uri).stem) == 64


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
async def test_empty_or_huge_text_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidParameter):
        await EspeakTts(tmp_path, PUBLIC).synthesize(text)


async def test_text_starting_with_a_dash_is_spoken_not_taken_for_an_option(
    tmp_path: Path
) -> None:
    tts = EspeakTts(tmp_path, PUBLIC)
    assert wav_info(_file(tts, await tts.synthesize("--version"))).seconds > 0.3
