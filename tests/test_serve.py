"""`ivr serve` as a user runs it: a separate process with its own Stasis app, its health, a
call to the line check, and a graceful stop on SIGTERM with a call in progress."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from ivr.app import LINECHECK_NUMBER
from ivr.settings import REPO_ROOT, Settings
from tests.conftest import free_port
from tests.telephony_harness import Caller

pytestmark = pytest.mark.asterisk


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str
    app: str
    log: bytearray


@pytest.fixture
async def served(settings: Settings, asterisk: object) -> AsyncIterator[Served]:
    port = free_port()
    app = f"ivr-serve-{port}"
    env = {
        **os.environ,
        "IVR_DATABASE_URL": settings.database_url,
        "IVR_HTTP_PORT": str(port),
        "IVR_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "IVR_ARI_APP": app,
        "IVR_DATA_DIR": str(settings.data_dir),
        "IVR_SHUTDOWN_GRACE": "20",
        "IVR_AGI_LISTEN": "",  # .env's FastAGI port may be a running `make run`'s
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "serve", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    log = bytearray()

    async def collect() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            log.extend(line)

    reader = asyncio.create_task(collect())
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
    yield Served(proc, url, app, log)
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
    await reader


async def test_healthz_shows_database_and_ari_connected(served: Served) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/healthz") as resp:
        body = await resp.json()
    assert resp.status == 200, served.log.decode()
    assert body["status"] == "ok"
    assert body["database"]["connected"] is True
    assert body["ari"]["connected"] is True and body["ari"]["app"] == served.app


async def test_line_check_call_and_sigterm_lets_the_call_finish(
    served: Served, caller: Caller, pool: asyncpg.Pool
) -> None:
    leg = await caller.dial(LINECHECK_NUMBER, caller_id="5550099", app=served.app)
    await asyncio.sleep(1.0)
    served.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    # Stopping: a new call is refused, and /healthz tells a load balancer so ...
    with pytest.raises(AssertionError, match="ended unanswered"):
        await caller.dial(LINECHECK_NUMBER, caller_id="5550098", app=served.app)
    async with aiohttp.ClientSession() as http, http.get(f"{served.url}/healthz") as resp:
        health = await resp.json()
        assert resp.status == 503 and health["status"] == "draining", health
        assert health["calls"]["active"] == 1 and health["calls"]["accepting"] is False
    # ... while the call in progress goes on: the caller talks after the greeting and beep
    # (about 6.5 s), presses #, and hears the take played back before the engine says goodbye
    # and hangs up.
    await asyncio.sleep(6.0)
    await leg.say("speech-short.wav")
    await leg.press("#")
    assert await leg.wait_hangup(25), "the line check should finish and hang up"
    assert await asyncio.wait_for(served.proc.wait(), 15) == 0
    log = served.log.decode()
    assert "line check recorded" in log, log
    row = await pool.fetchrow("SELECT flow, outcome FROM calls WHERE caller_id = '5550099'")
    assert row is not None and row["flow"] == "linecheck" and row["outcome"] == "completed"
    assert "s3cret" not in log and served.app in log
