"""The live session view's event stream (server-sent events). Each open view polls the
session through the recorder service every POLL_SECONDS and sends the state whenever it
changed; the stream ends once the session has ended or expired, or the app stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from ivr.console import pages
from ivr.console.auth import Console
from ivr.core.errors import NotFound
from ivr.recorder.models import LIVE_SESSION_STATES

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


Read = Callable[[], Awaitable[tuple[dict[str, Any], bool]]]


async def stream(request: web.Request, read: Read,
                 pace: Callable[[dict[str, Any]], float]) -> web.StreamResponse:
    """Sends what `read` answers (data, and whether it can no longer change) whenever it
    changed, until it says nothing more will (then `done`), the browser leaves, or the app
    stops; `pace` says how long to wait before reading again."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    stop = asyncio.Event()
    request.app[STREAMS].open.add(stop)
    loop = asyncio.get_running_loop()
    try:
        await response.write(b"retry: 1000\n\n")
        last, quiet_since = b"", loop.time()
        while True:
            data, over = await read()
            payload = orjson.dumps(data)
            if payload != last:
                await response.write(b"event: state\ndata: " + payload + b"\n\n")
                last, quiet_since = payload, loop.time()
            elif loop.time() - quiet_since > KEEPALIVE_SECONDS:
                await response.write(b": keep-alive\n\n")
                quiet_since = loop.time()
            if over:
                await response.write(b"event: done\ndata: {}\n\n")
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pace(data))
            if stop.is_set():
                break
    except (ConnectionResetError, NotFound):
        pass  # the browser left, or what it follows was deleted meanwhile
    finally:
        request.app[STREAMS].open.discard(stop)
    return response


async def session_events(request: web.Request, c: Console) -> web.StreamResponse:
    sk = request.match_info["sk"]
    # Ownership and existence are checked before the stream starts, so errors stay HTTP ones.
    view = await c.service.session_status(c.developer, sk)
    first = True

    async def read() -> tuple[dict[str, Any], bool]:
        nonlocal view, first
        if not first:
            view = await c.service.session_status(c.developer, sk)
        first = False
        return (pages.session_state(request, view),
                view.session.state not in LIVE_SESSION_STATES)

    return await stream(request, read, lambda _: POLL_SECONDS)
