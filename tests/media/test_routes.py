"""The /media routes: what Asterisk fetches, with cache headers, and nothing else."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.media.prompts import PROMPTS_DIR, PromptCatalog, prompt_path
from ivr.media.routes import IMMUTABLE, REVALIDATE, add_routes
from ivr.media.transcode import wav_info
from ivr.media.tts import EspeakTts

PUBLIC = "http://127.0.0.1:1"
SPEECH = Path(__file__).resolve().parent.parent / "data" / "speech-fox.wav"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    app = web.Application()
    add_routes(app, data_dir=tmp_path)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def _cd_quality(dst: Path) -> None:
    subprocess.run(["sox", str(SPEECH), "-r", "44100", "-c", "2", str(dst)], check=True)


def _path(media: str) -> str:
    """The request path (and query) of a `sound:http://...` media URI."""
    url = urlsplit(media.removeprefix("sound:"))
    return f"{url.path}?{url.query}" if url.query else url.path


async def test_a_versioned_prompt_is_cacheable_for_a_year(
    client: TestClient, tmp_path: Path
) -> None:
    media = PromptCatalog(PROMPTS_DIR, tmp_path, PUBLIC).media("welcome")
    resp = await client.get(_path(media))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.headers["Cache-Control"] == IMMUTABLE
    assert resp.headers["ETag"] and resp.headers["Last-Modified"]
    assert await resp.read() == (PROMPTS_DIR / "en" / "welcome.wav").read_bytes()

    again = await client.head(_path(media), headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    part = await client.get(_path(media), headers={"Range": "bytes=0-11"})
    assert part.status == 206 and await part.read() == b"RIFF" + (await resp.read())[4:12]
    bare = await client.get("/media/prompts/en/welcome.wav")
    assert bare.status == 200 and bare.headers["Cache-Control"] == REVALIDATE


async def test_tts_files_are_served_immutable(client: TestClient, tmp_path: Path) -> None:
    media = await EspeakTts(tmp_path, PUBLIC).synthesize("Served over HTTP")
    resp = await client.get(_path(media))
    assert resp.status == 200 and resp.headers["Cache-Control"] == IMMUTABLE
    assert (await resp.read())[:4] == b"RIFF"


async def test_uploaded_prompts_need_their_token_and_are_converted_for_asterisk(
    client: TestClient, tmp_path: Path
) -> None:
    path = prompt_path(tmp_path, "REC0000001", "welcome")
    path.parent.mkdir(parents=True)
    # A developer's upload at CD quality, stereo: Asterisk's `wav` plays 8 kHz mono only.
    _cd_quality(path)
    media = PromptCatalog(PROMPTS_DIR, tmp_path, PUBLIC).media("welcome", "REC0000001")
    resp = await client.get(_path(media))
    assert resp.status == 200 and resp.headers["Cache-Control"] == IMMUTABLE
    served = tmp_path / "served.wav"
    served.write_bytes(await resp.read())
    info = wav_info(served)
    assert info.telephone_ready and abs(info.seconds - 4.27) < 0.02

    token = _path(media).split("/")[4]
    forged = _path(media).replace(token, "0" * 32)
    assert (await client.get(forged)).status == 404
    other = _path(media).replace("REC0000001", "REC0000002")
    assert (await client.get(other)).status == 404  # a token is for one recorder's prompt


@pytest.mark.parametrize("path", [
    "/media/prompts/en/..%2F..%2Fpyproject.wav",
    "/media/prompts/en/../../pyproject.wav",
    "/media/prompts/..%2F..%2Fetc/passwd.wav",
    "/media/prompts/en/%2e%2e%2fprompts.wav",
    "/media/prompts/en/prompts.tsv",
    "/media/prompts/en/Welcome.wav",
    "/media/prompts/en/welcome.wav%00",
    "/media/prompts/xx/welcome.wav",
    "/media/tts/..%2F..%2Fmedia%2Furl.key",
    "/media/tts/" + "0" * 64 + ".wav",
    "/media/tts/" + "g" * 64 + ".wav",
    "/media/uploads/REC0000001/" + "0" * 32 + "/..%2F..%2Fmedia%2Furl.wav",
    "/media/uploads/..%2F..%2Fmedia/" + "0" * 32 + "/welcome.wav",
])
async def test_paths_outside_the_media_folders_are_not_found(
    client: TestClient, path: str
) -> None:
    resp = await client.get(path)
    assert resp.status in (400, 404), (path, resp.status)
    assert resp.headers.get("Content-Type") != "audio/wav"
