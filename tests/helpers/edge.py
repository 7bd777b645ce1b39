"""The web app as an outside client meets it: the production defaults of the HTTP edge
(Security()), with only what a test names changed, reached from a loopback address of the
test's own (127.x.y.z), so that its failures and locks are not those of the rest of the suite
(every other test's client is 127.0.0.1)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from ivr.app import create_app
from ivr.settings import Security, Settings


def own_address() -> str:
    """A loopback address no other test uses (Linux answers on all of 127.0.0.0/8)."""
    return (f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(256)}"
            f".{secrets.randbelow(254) + 1}")


@contextlib.asynccontextmanager
async def edge_app(settings: Settings, *, open_signup: bool | None = None,
                   **security: Any) -> AsyncIterator[TestServer]:
    """The app (no telephony) with Security() defaults plus `security`."""
    changed = dataclasses.replace(
        settings, security=Security(**security),
        open_signup=settings.open_signup if open_signup is None else open_signup)
    server = TestServer(create_app(changed, with_telephony=False), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def client_from(server: TestServer,
                      address: str | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """A session on `server` (paths relative to it) whose connections come from `address`
    (default: a fresh one)."""
    connector = aiohttp.TCPConnector(local_addr=(address or own_address(), 0))
    base = str(server.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession(base, connector=connector) as http:
        yield http
