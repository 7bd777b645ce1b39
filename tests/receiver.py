"""An HTTP endpoint on loopback for what the product posts signed (call-control webhooks,
broadcast postbacks, campaign XML): every post must carry a valid signature for one of
`secrets` (else 401, counted in `bad_signatures`); what `parse` makes of the rest is kept in
`got`, in arrival order, and whoever waits on `changed` is woken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from aiohttp import web

from ivr.delivery.signing import verify

T = TypeVar("T")


class SignedReceiver(Generic[T]):
    def __init__(self, parse: Callable[[web.Request, bytes], T | None]) -> None:
        self.parse = parse  # None: not acceptable (refused like a bad signature)
        self.url = ""
        self.secrets: list[str] = []
        self.got: list[T] = []
        self.bad_signatures = 0
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        item = (self.parse(request, body)
                if any(verify(s, request.headers, body) for s in self.secrets) else None)
        if item is None:
            self.bad_signatures += 1
            return web.Response(status=401)
        async with self.changed:
            self.got.append(item)
            self.changed.notify_all()
        return web.Response(text="ok")

    async def wait_until(self, done: Callable[[], bool], timeout: float,
                         failure: Callable[[], str]) -> None:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(done), timeout)
            except TimeoutError:
                raise AssertionError(failure()) from None


@asynccontextmanager
async def serving(receiver: SignedReceiver[T], *paths: str) -> AsyncIterator[str]:
    """Serve `receiver` at each of `paths`; yields the base URL."""
    app = web.Application()
    for path in paths:
        app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
