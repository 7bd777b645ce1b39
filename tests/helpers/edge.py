"""The web app as an outside client meets it: the production defaults of the HTTP edge
(Security()), with only what a test names changed, reached from a loopback address of the
test's own (127.x.y.z), so that its failures and locks are not those of the rest of the suite
(every other test's client is 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from ivr.app import create_app
from ivr.settings import REPO_ROOT, Security, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_address() -> str:
    """A loopback address no other test uses (Linux answers on all of 127.0.0.0/8)."""
    return (f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(256)}"
            f".{secrets.randbelow(254) + 1}")


@contextlib.asynccontextmanager
async def edge_app(settings: Settings, *, open_signup: bool | None = None,
                   host: str = "127.0.0.1", **security: Any) -> AsyncIterator[TestServer]:
    """The app (no telephony) with Security() defaults plus `security`, listening on
    `host`."""
    changed = dataclasses.replace(
        settings, security=Security(**security),
        open_signup=settings.open_signup if open_signup is None else open_signup)
    server = TestServer(create_app(changed, with_telephony=False), host=host)
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


@contextlib.asynccontextmanager
async def edge_process(settings: Settings, **env: str) -> AsyncIterator[tuple[str, int]]:
    """The web app (no telephony) as a process of its own, on `settings`' database and data
    plus IVR_* `env` (defaults otherwise): yields its base URL and pid, for what must be
    measured apart from the test's own process (its memory)."""
    port = free_port()
    full = {**os.environ, "IVR_DATABASE_URL": settings.database_url,
            "IVR_HTTP_PORT": str(port), "IVR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "IVR_DATA_DIR": str(settings.data_dir), "IVR_AGI_LISTEN": "", **env}
    code = ("import sys; from aiohttp import web; from ivr.app import create_app; "
            "from ivr.settings import Settings; s = Settings.load(); "
            "web.run_app(create_app(s, with_telephony=False), host='127.0.0.1', "
            "port=s.http_port, print=None)")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=REPO_ROOT,
                                                env=full)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status in (200, 503):
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the app process did not answer")
        yield base, proc.pid
    finally:
        proc.terminate()
        await proc.wait()


def rss_of(pid: int) -> int:
    """A process's resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")
