"""Nothing lost when the engine dies: `ivr serve` is killed (SIGKILL) while a caller records;
the caller hangs up; the next `ivr serve` finds the take in Asterisk's spool, keeps it, and
ends the session."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest

from ivr.settings import Settings
from tests.conftest import free_port
from tests.helpers.phone import recordings_of, start_session
from tests.helpers.serve import serve, wait_for
from tests.telephony_harness import Caller

pytestmark = pytest.mark.asterisk


async def test_a_take_survives_the_engine_being_killed(
    settings: Settings, asterisk: object, caller: Caller, make_recorder: Any,
    pool: asyncpg.Pool,
) -> None:
    port = free_port()
    app = f"ivr-recover-{port}"
    rec = await make_recorder()
    s = await start_session(rec, [None])
    first = await serve(settings, app, port)
    try:
        leg = await caller.dial(rec.number, caller_id="5556660001", app=app)
        await leg.press(s["pin"] + "#")
        await wait_for(pool, "SELECT 1 FROM recording_sessions WHERE session_key = $1"
                       " AND state = 'recording'", s["session_key"])
        await leg.say("speech-fox.wav")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    await leg.hangup()
    await asyncio.sleep(0.5)
    # The session still says "recording": nobody was left to say otherwise.
    state = await pool.fetchval("SELECT state FROM recording_sessions WHERE session_key = $1",
                                s["session_key"])
    assert state == "recording"

    second = await serve(settings, app, port)
    try:
        await wait_for(pool, "SELECT 1 FROM recording_sessions WHERE session_key = $1"
                       " AND state = 'ended'", s["session_key"], timeout=15)
        r = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
        assert r["recording_state"] == "recorded"
        assert r["kept_on_hangup"] is True  # the caller never confirmed it
        assert 4 <= int(r["recording_length"]) <= 6
        take = await pool.fetchrow(
            "SELECT t.status, t.kept_on_hangup, t.asterisk_name FROM takes t"
            " JOIN recordings r ON r.id = t.recording_id WHERE r.recording_key = $1",
            s["keys"][0])
        assert take["status"] == "accepted" and take["kept_on_hangup"]
        assert take["asterisk_name"].startswith("take-")
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0
