"""What users of the phone side hit first: keys of every allowed shape reach the phone; a flow
that fails on our side apologises to the caller and leaves its reason on the call and the
session (where the API and the console show it); the phone side's callbacks are complete."""

from __future__ import annotations

import array
import asyncio
import io
import secrets
import wave
from typing import Any

import asyncpg
import orjson
import pytest

from ivr.recorder.phone import RecorderPhone
from ivr.settings import Settings
from ivr.telephony.call import Call
from tests.helpers.phone import recordings_of, start_session, take, when_recording
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

SHORT = "speech-short.wav"


def loudness(wav: bytes) -> float:
    """The RMS of a 16-bit WAV's samples (0 for silence)."""
    with wave.open(io.BytesIO(wav)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    return (sum(s * s for s in samples) / len(samples)) ** 0.5 if samples else 0.0


async def test_a_recorder_key_with_dash_and_underscore_works_on_the_phone(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    key = f"front-desk_{secrets.token_hex(3)}"
    rec = await make_recorder(voice_recorder_key=key)
    assert rec.key == key
    s = await start_session(rec, [None], caller_id="5557771001")
    leg = await caller.dial(rec.number, caller_id="5557771001")
    await take(engine, leg, SHORT, then="1")
    assert await leg.wait_hangup(20)
    recording = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert recording["recording_state"] == "recorded"
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended" and "failure_reason" not in status
    row = await pool.fetchrow(
        "SELECT outcome, failure_code FROM calls WHERE channel_id = $1", leg.id + ";2")
    assert row is not None and row["failure_code"] is None, row


async def test_a_failing_flow_apologises_then_records_why(
    engine: Engine, caller: Caller, pool: asyncpg.Pool
) -> None:
    async def broken(call: Call) -> None:
        await call.answer()
        await asyncio.sleep(0.8)  # the caller is listening by then
        raise RuntimeError("a bug in the flow")

    number = engine.routes.add(broken, "broken")
    leg = await caller.dial(number)
    name = f"heard-{secrets.token_hex(4)}"
    heard = asyncio.create_task(leg.call.record(name, max_duration=10))
    assert await leg.wait_hangup(15), "the engine hangs up after the apology"
    await heard
    wav = await caller.ari.stored_recording_file(name)
    await caller.ari.delete_stored_recording(name)
    # The apology (in the suite, a quarter second of tone) is heard before the hang-up.
    assert loudness(wav) > 100, loudness(wav)
    row = await pool.fetchrow(
        "SELECT outcome, failure_code, failure_reason FROM calls WHERE channel_id = $1",
        leg.id + ";2")
    assert row is not None and row["outcome"] == "error"
    assert row["failure_code"] == "internal_error"
    assert row["failure_reason"] == "RuntimeError: a bug in the flow"


async def test_a_session_whose_call_failed_says_why(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None, None], caller_id="5557771002")

    # The first take is accepted; the fault strikes when the second starts.
    start_take = RecorderPhone.start_take
    calls = 0

    async def second_fails(self: RecorderPhone, *args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionRefusedError("database gone")
        return await start_take(self, *args, **kwargs)

    monkeypatch.setattr(RecorderPhone, "start_take", second_fails)
    leg = await caller.dial(rec.number, caller_id="5557771002")
    await when_recording(engine, leg)
    await take(engine, leg, SHORT, then="1")
    # The second take records (Asterisk started it) and ends on `#`; then the fault surfaces.
    await when_recording(engine, leg)
    await leg.press("#")
    assert await leg.wait_hangup(20)
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended", status
    assert status["failure_code"] == "database_error"
    assert status["failure_reason"] == "ConnectionRefusedError: database gone"
    for _ in range(50):  # the runner closes the call's record right after its hang-up
        row = await pool.fetchrow(
            "SELECT outcome, failure_code FROM calls WHERE channel_id = $1", leg.id + ";2")
        if row is not None and row["outcome"] is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and (row["outcome"], row["failure_code"]) == (
        "error", "database_error")
    recordings = await recordings_of(rec, s["list_key"])
    assert recordings[s["keys"][0]]["recording_state"] == "recorded"


async def test_phone_side_callbacks_carry_absolute_audio_urls(
    engine: Engine, caller: Caller, make_recorder: Any, settings: Settings
) -> None:
    hooks: SignedReceiver[dict[str, Any]] = SignedReceiver(
        lambda request, body: dict(orjson.loads(body)["MyVoxapi"]))
    async with serving(hooks, "/events") as base:
        rec = await make_recorder(callback_url=f"{base}/events", callback_format="json")
        hooks.secrets.append(rec.callback_secret)
        s = await start_session(rec, [None], caller_id="5557771003")
        leg = await caller.dial(rec.number, caller_id="5557771003")
        await take(engine, leg, SHORT, then="1")
        assert await leg.wait_hangup(20)

        def recorded() -> list[dict[str, Any]]:
            return [e for e in hooks.got if e["event_type"] == "recording.recorded"]

        await hooks.wait_until(lambda: bool(recorded()), 10,
                               lambda: f"no recording.recorded event in {hooks.got}")
    recording = recorded()[0]["recording"]
    assert recording["recording_key"] == s["keys"][0]
    play_key = recording["play_key"]
    assert recording["wav_url"] == f"{settings.public_url}/{play_key}/recording.wav"
