"""A database outage while a caller records: the call goes on. The engine's database traffic
runs through a proxy the test cuts (every connection aborted, new ones refused), as a
PostgreSQL restart or a network blip would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from ivr.settings import Settings
from tests.helpers.phone import recordings_of, start_session, when_recording
from tests.helpers.tcp_proxy import CuttableProxy
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

SHORT = "speech-short.wav"
OUTAGE = 8.0


@pytest.fixture
async def db_proxy(engine: Engine, settings: Settings) -> AsyncIterator[CuttableProxy]:
    """The engine's pool reconnects through a proxy for this test, and back afterwards."""
    url = urlsplit(settings.database_url)
    proxy = CuttableProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    engine.pool.set_connect_args(url._replace(netloc=url.netloc.replace(
        f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")).geturl())
    await engine.pool.expire_connections()
    try:
        yield proxy
    finally:
        engine.pool.set_connect_args(settings.database_url)
        await engine.pool.expire_connections()
        await proxy.close()


async def test_a_database_outage_mid_session_drops_no_call(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool,
    db_proxy: CuttableProxy,
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None, None], caller_id="5557772001")
    leg = await caller.dial(rec.number, caller_id="5557772001")
    await when_recording(engine, leg)
    await leg.say(SHORT)
    # The database goes away as the caller ends the take: storing it, the review, keeping it
    # and finding the next recording all happen while it is down.
    assert db_proxy.cut(refuse_for=OUTAGE) > 0
    await leg.press("#")
    await asyncio.sleep(1.0)
    await leg.press("1")
    # Back after OUTAGE seconds: the flow goes on to the second recording.
    await when_recording(engine, leg, timeout=OUTAGE + 15)
    await leg.say(SHORT)
    await leg.press("#")
    await asyncio.sleep(0.5)
    await leg.press("9")
    assert await leg.wait_hangup(20)
    recordings = await recordings_of(rec, s["list_key"])
    assert [recordings[k]["recording_state"] for k in s["keys"]] == ["recorded", "recorded"]
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended" and "failure_code" not in status, status
    row = await pool.fetchrow(
        "SELECT outcome, failure_code FROM calls WHERE channel_id = $1", leg.id + ";2")
    assert row is not None and (row["outcome"], row["failure_code"]) == ("completed", None)
