"""A call that vanishes while the engine cannot see it (its event sockets down, as when
Asterisk restarts) is not a clean end: the session says the call was lost, not that the
caller hung up."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from ivr.telephony.rest import AriClient
from tests.helpers.phone import start_session, when_recording
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


async def test_a_call_vanishing_unseen_leaves_its_session_marked_lost(
    engine: Engine, caller: Caller, make_recorder: Any, ari: AriClient, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None], caller_id="5557774001")
    leg = await caller.dial(rec.number, caller_id="5557774001")
    await when_recording(engine, leg)
    # The engine's link goes; meanwhile the call ends where it cannot see it.
    engine.proxy.drop_events(refuse_for=2.0)
    await ari.hangup(leg.id + ";2")
    assert await leg.wait_hangup(10)
    status: dict[str, Any] = {}
    for _ in range(100):  # the sockets come back, the resync finds the channel gone
        status = await rec.vr.ok("GetSessionStatus", "json",
                                 recording_session_key=s["session_key"])
        if status["session_state"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert status["session_state"] == "ended", status
    assert status["failure_code"] == "call_lost", status
    assert "vanished" in status["failure_reason"]
    row = None
    for _ in range(50):  # the call's record, closed by the runner after the flow
        row = await pool.fetchrow("SELECT outcome, failure_code FROM calls WHERE channel_id = $1",
                                  leg.id + ";2")
        if row is not None and row["outcome"] is not None:
            break
        await asyncio.sleep(0.1)
    # Closed by the resynchronisation that found the channel gone, or by the runner after.
    assert row is not None and row["outcome"] == "lost"
    assert row["failure_code"] in (None, "call_lost")
    for _ in range(100):  # every app's socket back before the next test's calls
        if engine.tel.events.connected:
            break
        await asyncio.sleep(0.05)
    assert engine.tel.events.connected
