"""`ivr serve` as its own process under a Stasis app and port of its own (tests that kill or
restart the engine), and waiting for what it writes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg

from ivr.settings import Settings
from tests.conftest import start_serve


async def serve(settings: Settings, app: str, port: int) -> asyncio.subprocess.Process:
    return await start_serve(
        dataclasses.replace(settings, http_port=port, public_url=f"http://127.0.0.1:{port}"),
        IVR_ARI_APP=app)


async def wait_for(pool: asyncpg.Pool, query: str, *args: Any, timeout: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await pool.fetchval(query, *args)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")
