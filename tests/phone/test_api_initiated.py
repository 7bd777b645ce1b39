"""API-initiated sessions with real calls: a developer starts a session over /vr, a caller
dials the recorder's number and voices the recordings."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from pydub import AudioSegment

from tests.helpers.audio import audio
from tests.helpers.phone import (
    StatusWatch,
    recordings_of,
    start_session,
    take,
    when_recording,
)
from tests.helpers.vr import as_list
from tests.telephony_harness import Caller, Engine, wav_seconds

pytestmark = pytest.mark.asterisk

FOX, FOX_S = "speech-fox.wav", 4.27
SHORT, SHORT_S = "speech-short.wav", 1.71


async def test_full_session_with_listen_and_rerecord(
    engine: Engine, caller: Caller, make_recorder: Any, api: TestClient, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder(audio_format="both")
    s = await start_session(rec, ["Kitchen photo", None, None])
    k1, k2, k3 = s["keys"]
    with StatusWatch(rec.vr, s["session_key"]) as watch:
        await asyncio.sleep(0.2)
        leg = await caller.dial(rec.number, caller_id="5557770001")
        await leg.press(s["pin"] + "#")
        # Recording 1: a take, listen to it, record again, keep the second.
        await take(engine, leg, FOX, then="2")
        await asyncio.sleep(2.0)
        await leg.press("3")
        await take(engine, leg, SHORT, then="1")
        # Recording 2: keep; recording 3: "I'm done" keeps it and ends the session.
        await take(engine, leg, FOX, then="1")
        await take(engine, leg, SHORT, then="9")
        assert await leg.wait_hangup(20), "the engine hangs up after goodbye"
        await asyncio.sleep(0.2)
    assert watch.states[:4] == ["created", "called", "recording", "called"], watch.states
    assert watch.states[-1] == "ended"
    assert watch.current == [k1, k2, k3]

    recordings = await recordings_of(rec, s["list_key"])
    for key, seconds in ((k1, SHORT_S), (k2, FOX_S), (k3, SHORT_S)):
        r = recordings[key]
        assert r["recording_state"] == "recorded", r
        wav = await audio(api, r["wav_url"])
        assert abs(wav_seconds(wav) - seconds) < 0.5, (key, wav_seconds(wav))
        mp3 = AudioSegment.from_file(io.BytesIO(await audio(api, r["mp3_url"])), "mp3")
        assert abs(len(mp3) / 1000 - seconds) < 0.5
        assert r["caller_id"] == "5557770001"
    takes = await pool.fetch(
        "SELECT t.take_number, t.status FROM takes t JOIN recordings r ON r.id = t.recording_id"
        " WHERE r.recording_key = $1 ORDER BY take_number", k1)
    assert [(t["take_number"], t["status"]) for t in takes] == [(1, "discarded"),
                                                               (2, "accepted")]


async def test_caller_id_skips_the_pin(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None], caller_id="5557770002")
    assert s["pin"] == "5557770002"
    leg = await caller.dial(rec.number, caller_id="5557770002")
    await take(engine, leg, SHORT, then="1")
    assert await leg.wait_hangup(20)
    recordings = await recordings_of(rec, s["list_key"])
    assert recordings[s["keys"][0]]["recording_state"] == "recorded"
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended"


async def test_withheld_caller_id_keys_their_number_as_pin(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None], caller_id="5557770003")
    leg = await caller.dial(rec.number, caller_id="")
    await leg.press("5557770003#")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    recordings = await recordings_of(rec, s["list_key"])
    assert recordings[s["keys"][0]]["recording_state"] == "recorded"


async def test_three_wrong_pins_then_goodbye(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None])
    wrong = "1" if s["pin"][0] != "1" else "2"
    leg = await caller.dial(rec.number, caller_id="5557770004")
    await leg.press(f"{wrong * 6}#{wrong * 6}#{wrong * 6}#")
    assert await leg.wait_hangup(25)
    failures = await pool.fetchval(
        "SELECT count(*) FROM pin_failures WHERE caller_id = '5557770004'")
    assert failures == 3
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "created"


async def test_an_expired_pin_does_not_open_the_session(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None])
    await pool.execute("UPDATE recording_sessions SET expires_at = now() - interval '1 second'"
                       " WHERE session_key = $1", s["session_key"])
    leg = await caller.dial(rec.number, caller_id="5557770005")
    await leg.press(f"{s['pin']}#{s['pin']}#{s['pin']}#")
    assert await leg.wait_hangup(25)
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "expired"


async def test_hang_up_mid_take_keeps_a_long_enough_take_only(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder(min_take_seconds=3)
    kept = await start_session(rec, [None])
    lost = await start_session(rec, [None])

    async def hang_up_after(session: dict[str, Any], speech: str, caller_id: str) -> None:
        leg = await caller.dial(rec.number, caller_id=caller_id)
        await leg.press(session["pin"] + "#")
        await when_recording(engine, leg)
        await leg.say(speech)
        await leg.hangup()

    await asyncio.gather(hang_up_after(kept, FOX, "5557770006"),
                         hang_up_after(lost, SHORT, "5557770007"))
    # The kept take is fetched, judged, stored and accepted after the hang-up: until both
    # sessions have ended (a loaded machine takes more than a second or two).
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        states = [(await rec.vr.ok("GetSessionStatus", "json",
                                   recording_session_key=s["session_key"]))["session_state"]
                  for s in (kept, lost)]
        if states == ["ended", "ended"] or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    r_kept = (await recordings_of(rec, kept["list_key"]))[kept["keys"][0]]
    r_lost = (await recordings_of(rec, lost["list_key"]))[lost["keys"][0]]
    assert r_kept["recording_state"] == "recorded" and r_kept["kept_on_hangup"] is True
    assert abs(int(r_kept["recording_length"]) - FOX_S) <= 1
    assert r_lost["recording_state"] == "unrecorded"
    rows = await pool.fetch(
        "SELECT r.recording_key, t.status, t.kept_on_hangup FROM takes t"
        " JOIN recordings r ON r.id = t.recording_id WHERE r.recording_key = ANY($1)",
        [kept["keys"][0], lost["keys"][0]])
    by_key = {r["recording_key"]: (r["status"], r["kept_on_hangup"]) for r in rows}
    assert by_key[kept["keys"][0]] == ("accepted", True)
    assert by_key.get(lost["keys"][0], ("discarded", False))[0] == "discarded"
    for s in (kept, lost):
        status = await rec.vr.ok("GetSessionStatus", "json",
                                 recording_session_key=s["session_key"])
        assert status["session_state"] == "ended"


async def test_a_retake_never_destroys_the_accepted_audio(
    engine: Engine, caller: Caller, make_recorder: Any, api: TestClient
) -> None:
    """A recorded recording joins a new session (rerecord); the caller records a take and
    skips it: the old audio stays, untouched."""
    rec = await make_recorder()
    s = await start_session(rec, [None])
    leg = await caller.dial(rec.number, caller_id="5557770008")
    await leg.press(s["pin"] + "#")
    await take(engine, leg, FOX, then="9")
    assert await leg.wait_hangup(20)
    before = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    old_audio = await audio(api, before["wav_url"])

    again = await rec.vr.ok("StartRecordingSession", "json", recording_list_key=s["list_key"],
                            recording_keys=s["keys"][0])
    assert as_list(again["session_recordings"]["recording"])[0]["recording_state"] == "rerecord"
    leg = await caller.dial(rec.number, caller_id="5557770009")
    await leg.press(again["ivr_pin"] + "#")
    await take(engine, leg, SHORT, then="*")
    assert await leg.wait_hangup(20)
    after = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert after["recording_state"] == "recorded"
    assert await audio(api, after["wav_url"]) == old_audio


async def test_live_reorder_insert_and_delete(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None, None, None])
    a, b, c = s["keys"]
    leg = await caller.dial(rec.number, caller_id="5557770010")
    await leg.press(s["pin"] + "#")
    await when_recording(engine, leg)
    # While the caller voices A: C moves first, a new D comes second, B goes.
    await rec.vr.ok("SetRecording", "json", recording_list_key=s["list_key"], recording_key=c,
                    sequence=1)
    d = (await rec.vr.ok("CreateRecording", "json", recording_list_key=s["list_key"],
                         sequence=2))["recording"]["recording_key"]
    await rec.vr.ok("DeleteRecording", "json", recording_list_key=s["list_key"],
                    recording_key=b)
    await leg.say(SHORT)
    await leg.press("#")
    await asyncio.sleep(0.3)
    await leg.press("1")
    await take(engine, leg, SHORT, then="1")
    await take(engine, leg, SHORT, then="1")
    assert await leg.wait_hangup(25)
    order = await pool.fetch(
        "SELECT r.recording_key FROM takes t JOIN recordings r ON r.id = t.recording_id"
        " JOIN recording_lists l ON l.id = r.list_id WHERE l.list_key = $1 ORDER BY t.id",
        s["list_key"])
    assert [o["recording_key"] for o in order] == [a, c, d]


async def test_touchtone_input_is_stored_and_searchable(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder(touchtone_prompt="true", touchtone_length=4)
    s = await start_session(rec, [None])
    leg = await caller.dial(rec.number, caller_id="5557770011")
    await leg.press(s["pin"] + "#")
    await leg.press("4321")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    found = await rec.vr.ok("GetRecording", "json", recording_list_key=s["list_key"],
                            touchtone_input="43%")
    matches = as_list(found["recording"])
    assert [m["recording_key"] for m in matches] == s["keys"]
    assert matches[0]["touchtone_input"] == "4321"
