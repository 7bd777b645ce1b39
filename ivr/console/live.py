"""The live session view's event stream (server-sent events). Each open view polls the
session through the recorder service every POLL_SECONDS and sends the state whenever it
changed; the stream ends once the session has ended or expired, or the app stops."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import web

from ivr.console import pages
from ivr.console.auth import Console
from ivr.recorder.models import LIVE_SESSION_STATES, SessionView

POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15.0
# One event per open stream: set at shutdown, so no stream holds the server's graceful stop.
class Streams:
    def __init__(self) -> None:
        self.open: set[asyncio.Event] = set()


STREAMS = web.AppKey("console_streams", Streams)


def setup(app: web.Application) -> None:
    app[STREAMS] = Streams()

    async def stop_streams(app: web.Application) -> None:
        for stop in list(app[STREAMS].open):
            stop.set()

    app.on_shutdown.append(stop_streams)


async def session_events(request: web.Request, c: Console) -> web.StreamResponse:
    sk = request.match_info["sk"]
    # Ownership and existence are checked before the stream starts, so errors stay HTTP ones.
    view = await c.service.session_status(c.developer, sk)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    stop = asyncio.Event()
    request.app[STREAMS].open.add(stop)
    try:
        await _stream(request, response, c, view, stop)
    except ConnectionResetError:
        pass  # the browser left
    finally:
        request.app[STREAMS].open.discard(stop)
    return response


async def _stream(request: web.Request, response: web.StreamResponse, c: Console,
                  view: SessionView, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    last = b""
    quiet_since = loop.time()
    await response.write(b"retry: 1000\n\n")
    while True:
        payload = orjson.dumps(pages.session_state(request, view))
        if payload != last:
            await response.write(b"event: state\ndata: " + payload + b"\n\n")
            last, quiet_since = payload, loop.time()
        elif loop.time() - quiet_since > KEEPALIVE_SECONDS:
            await response.write(b": keep-alive\n\n")
            quiet_since = loop.time()
        if view.session.state not in LIVE_SESSION_STATES:
            await response.write(b"event: done\ndata: {}\n\n")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        if stop.is_set():
            return
        view = await c.service.session_status(c.developer, view.session.session_key)
