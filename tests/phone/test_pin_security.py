"""PIN security: per-caller and per-number failure limits with a cool-down, PIN digits never
in the logs, and a shared number where the PIN picks the recorder."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from ivr.recorder.phone import PIN_FAILURES_PER_CALLER
from tests.helpers.phone import recordings_of, start_session, take
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

SHORT = "speech-short.wav"


async def test_a_caller_over_the_failure_limit_is_told_to_try_later(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None])
    number_id = await pool.fetchval("SELECT id FROM phone_numbers WHERE number = $1", rec.number)
    await pool.executemany(
        "INSERT INTO pin_failures (phone_number_id, caller_id) VALUES ($1, '5559990001')",
        [(number_id,)] * PIN_FAILURES_PER_CALLER)
    leg = await caller.dial(rec.number, caller_id="5559990001")
    await leg.press(s["pin"] + "#")  # even the right PIN is not tried during the cool-down
    assert await leg.wait_hangup(15)
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "created"
    # Another caller on the same number is not affected.
    leg = await caller.dial(rec.number, caller_id="5559990002")
    await leg.press(s["pin"] + "#")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended"


async def test_pin_digits_never_reach_the_logs(
    engine: Engine, caller: Caller, make_recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec = await make_recorder()
    s = await start_session(rec, [None])
    leg = await caller.dial(rec.number, caller_id="5559990003")
    await leg.press("9081726354#")  # a wrong one first, then the right one
    await leg.press(s["pin"] + "#")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ivr")]
    assert any("PIN accepted" in line for line in lines)
    assert not [line for line in lines if s["pin"] in line or "9081726354" in line]


async def test_a_shared_number_routes_each_caller_by_pin(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    first = await make_recorder()
    second = await make_recorder()
    # The second recorder also answers on the first one's number.
    await pool.execute(
        "INSERT INTO recorder_numbers (recorder_id, phone_number_id)"
        " SELECT v.id, n.id FROM voice_recorders v, phone_numbers n"
        " WHERE v.recorder_key = $1 AND n.number = $2", second.key, first.number)
    s1 = await start_session(first, [None])
    s2 = await start_session(second, [None])

    async def voice(s: dict[str, Any], caller_id: str) -> None:
        leg = await caller.dial(first.number, caller_id=caller_id)
        await leg.press(s["pin"] + "#")
        await take(engine, leg, SHORT, then="9")
        assert await leg.wait_hangup(20)

    await asyncio.gather(voice(s1, "5559990004"), voice(s2, "5559990005"))
    for rec, s in ((first, s1), (second, s2)):
        r = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
        assert r["recording_state"] == "recorded"
        assert r["caller_id"] in ("5559990004", "5559990005")
    assert (await recordings_of(first, s1["list_key"]))[s1["keys"][0]]["caller_id"] \
        == "5559990004"


async def test_a_recorder_password_is_asked_on_the_phone(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    """password_required: after the caller is identified the recorder asks for its password,
    keyed on the keypad (letters as their digit: "Ab3x" is 2239); a wrong one counts as a
    failure and is asked again; the right one lets the caller record."""
    rec = await make_recorder(password_required="true", recorder_password="Ab3x")
    # A password no keypad can key is refused while password_required is on.
    tree = await rec.vr.fail("SetVoiceRecorder", 1003, recorder_password="p@ss word")
    assert "keypad" in str(tree)
    s = await start_session(rec, [None], caller_id="5557770031")
    leg = await caller.dial(rec.number, caller_id="5557770031")
    await leg.press("1111#")
    await asyncio.sleep(1.0)
    await leg.press("2239#")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    recordings = await recordings_of(rec, s["list_key"])
    assert recordings[s["keys"][0]]["recording_state"] == "recorded"
    assert await pool.fetchval(
        "SELECT count(*) FROM pin_failures WHERE caller_id = '5557770031'") == 1


async def test_three_wrong_recorder_passwords_end_the_call(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder(password_required="true", recorder_password="7391")
    s = await start_session(rec, [None], caller_id="5557770032")
    leg = await caller.dial(rec.number, caller_id="5557770032")
    for _ in range(3):
        await leg.press("0000#")
        await asyncio.sleep(1.0)
    assert await leg.wait_hangup(25)
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "created"  # never let in
