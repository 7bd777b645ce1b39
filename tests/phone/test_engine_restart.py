"""A deploy drops no call: `ivr serve` is killed (SIGKILL) while a caller records their second
recording; the next `ivr serve` finds the channel still in its Stasis app, says "one moment"
and takes the caller back to the recording they were on. The first, kept before the restart,
stays kept; the take cut short is not accepted; the call goes on to its goodbye."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest

from ivr.settings import Settings
from ivr.telephony.rest import AriClient
from tests.conftest import free_port
from tests.helpers.phone import recordings_of, start_session
from tests.helpers.serve import serve, wait_for
from tests.telephony_harness import Caller

pytestmark = pytest.mark.asterisk

async def takes_in_asterisk(ari: AriClient, session_id: int) -> set[str]:
    """The session's takes Asterisk holds (one appears as the take starts recording)."""
    return {r["name"] for r in await ari.list_stored_recordings()
            if r["name"].startswith(f"take-{session_id}-")}


async def take_started(ari: AriClient, session_id: int, before: set[str]) -> None:
    for _ in range(200):
        if await takes_in_asterisk(ari, session_id) - before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no new take started")


RECORDING_ON = ("SELECT 1 FROM recording_sessions s JOIN recordings r"
                " ON r.id = s.current_recording_id WHERE s.session_key = $1"
                " AND s.state = 'recording' AND r.recording_key = $2")


async def test_a_restarted_engine_resumes_the_call_at_the_recording_it_was_on(
    settings: Settings, asterisk: object, caller: Caller, make_recorder: Any,
    pool: asyncpg.Pool, ari: AriClient,
) -> None:
    port = free_port()
    app = f"ivr-restart-{port}"
    rec = await make_recorder()
    s = await start_session(rec, [None, None])
    k1, k2 = s["keys"]
    first = await serve(settings, app, port)
    try:
        leg = await caller.dial(rec.number, caller_id="5556660002", app=app)
        await leg.press(s["pin"] + "#")
        await wait_for(pool, RECORDING_ON, s["session_key"], k1)
        await leg.say("speech-short.wav")
        await leg.press("#")
        await asyncio.sleep(0.5)
        await leg.press("1")  # keep it: on to the second recording
        await wait_for(pool, RECORDING_ON, s["session_key"], k2)
        session_id = await pool.fetchval(
            "SELECT id FROM recording_sessions WHERE session_key = $1", s["session_key"])
        await take_started(ari, session_id, set())
        cut_short = await takes_in_asterisk(ari, session_id)
        await asyncio.sleep(0.5)  # a few words into the second take
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()

    second = await serve(settings, app, port)
    try:
        # The same channel, still up: the new engine took it back to the second recording.
        await wait_for(pool, "SELECT 1 FROM calls WHERE channel_id = $1 AND flow ="
                       " 'recorder-resumed'", leg.id + ";2", timeout=15)
        await take_started(ari, session_id, cut_short)  # after "one moment" and its name
        assert not leg.call.gone
        assert not await takes_in_asterisk(ari, session_id) & cut_short, "not dropped"
        await leg.say("speech-short.wav")
        await leg.press("#")
        await asyncio.sleep(0.5)
        await leg.press("9")
        assert await leg.wait_hangup(20), "the engine says goodbye and hangs up"
        await wait_for(pool, "SELECT 1 FROM recording_sessions WHERE session_key = $1"
                       " AND state = 'ended'", s["session_key"])
        recordings = await recordings_of(rec, s["list_key"])
        for key in (k1, k2):
            assert recordings[key]["recording_state"] == "recorded", recordings[key]
            assert recordings[key]["kept_on_hangup"] is False
        takes = await pool.fetch(
            "SELECT t.status FROM takes t JOIN recordings r ON r.id = t.recording_id"
            " WHERE r.recording_key = $1 ORDER BY take_number", k2)
        assert [t["status"] for t in takes][-1] == "accepted"
        assert "pending" not in [t["status"] for t in takes]
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0
