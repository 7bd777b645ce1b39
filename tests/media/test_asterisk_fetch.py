"""The real Asterisk fetching prompt audio from our routes over HTTP (res_http_media_cache):
a default prompt and a synthesized text play to a caller, and across two calls each URL is
fetched exactly once: Asterisk honours our one-year Cache-Control and plays repeats from its
own cache, with no request at all (not even a HEAD to revalidate)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivr.core.web import Handler
from ivr.media.prompts import PROMPTS_DIR, PromptCatalog
from ivr.media.routes import add_routes
from ivr.media.tts import EspeakTts
from ivr.telephony.call import Call
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


class MediaServer:
    def __init__(self) -> None:
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self.url = ""


@pytest.fixture
async def media_server(tmp_path: Path) -> AsyncIterator[tuple[MediaServer, Path]]:
    server = MediaServer()

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        server.requests[(request.method, request.path_qs)] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    add_routes(app, data_dir=tmp_path)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    yield server, tmp_path
    await runner.cleanup()


async def test_asterisk_fetches_each_prompt_url_once_across_calls(
    engine: Engine, caller: Caller, media_server: tuple[MediaServer, Path]
) -> None:
    server, data_dir = media_server
    # URLs carry this run's port and a fresh media key: Asterisk has never cached them.
    catalog = PromptCatalog(PROMPTS_DIR, data_dir, server.url)
    tts = EspeakTts(data_dir, server.url)
    played: list[tuple[bool, float]] = []
    done = asyncio.Event()

    async def flow(call: Call) -> None:
        try:
            await call.answer()
            for media in (catalog.media("skipped"), await tts.synthesize("Test two")):
                started = asyncio.get_running_loop().time()
                playback = await call.play(media)
                played.append((playback.failed, asyncio.get_running_loop().time() - started))
        finally:
            done.set()

    number = engine.routes.add(flow)
    for _ in range(2):
        done.clear()
        leg = await caller.dial(number)
        await asyncio.wait_for(done.wait(), 20)
        assert await leg.wait_hangup(10)

    assert [failed for failed, _ in played] == [False] * 4
    # Each played in full (0.88 s and 1.07 s of audio), fetched or from the cache.
    assert [seconds > 0.8 for _, seconds in played] == [True] * 4, played
    prompt_url = catalog.media("skipped").removeprefix(f"sound:{server.url}")
    tts_url = (await tts.synthesize("Test two")).removeprefix(f"sound:{server.url}")
    assert dict(server.requests) == {("GET", prompt_url): 1, ("GET", tts_url): 1}
