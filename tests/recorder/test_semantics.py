"""The seed's rules, each through /vr (XML and JSON alike)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from ivr.recorder.phone import RecorderPhone
from ivr.recorder.service import RecorderService
from tests.helpers.vr import Vr, as_list, make_dev


async def new_list(vr: Vr, **params: Any) -> str:
    return str((await vr.ok("CreateRecordingList", **params))["recording_list"]
               ["recording_list_key"])


async def sequences(vr: Vr, lk: str) -> list[tuple[str, int]]:
    tree = await vr.ok("GetRecording", "json", recording_list_key=lk, meta_data_3="%")
    return [(r["name"], r["sequence"]) for r in tree["recording"]]


async def test_keys_custom_generated_and_unique(vr: Vr) -> None:
    generated = await new_list(vr)
    assert len(generated) == 10 and generated.isalnum() and generated.isupper()
    await new_list(vr, recording_list_key="Mine")
    await vr.fail("CreateRecordingList", 1305, recording_list_key="Mine")
    await vr.ok("CreateRecording", recording_list_key="Mine", recording_key="R1")
    await vr.fail("CreateRecording", 1406, recording_list_key="Mine", recording_key="R1")
    # Recording keys are unique within their list only.
    await vr.ok("CreateRecording", recording_list_key=generated, recording_key="R1")
    rec = (await vr.ok("GetRecording", "json", recording_list_key="Mine",
                       recording_key="R1"))["recording"]
    assert len(rec["play_key"]) == 20


async def test_sequences_keep_consecutive(vr: Vr) -> None:
    lk = await new_list(vr)
    for name, seq in (("a", None), ("b", None), ("c", 1)):
        await vr.ok("CreateRecording", recording_list_key=lk, name=name, meta_data_3="x",
                    sequence=seq, recording_key=name)
    assert await sequences(vr, lk) == [("c", 1), ("a", 2), ("b", 3)]
    await vr.ok("SetRecording", recording_list_key=lk, recording_key="c", sequence=3)
    assert await sequences(vr, lk) == [("a", 1), ("b", 2), ("c", 3)]
    await vr.ok("DeleteRecording", recording_list_key=lk, recording_key="a")
    assert await sequences(vr, lk) == [("b", 1), ("c", 2)]
    # keep_consecutive=false leaves the others alone and refuses a taken sequence.
    await vr.ok("DeleteRecording", recording_list_key=lk, recording_key="b",
                keep_consecutive="false")
    assert await sequences(vr, lk) == [("c", 2)]
    tree = await vr.fail("CreateRecording", 1003, recording_list_key=lk, sequence=2,
                         keep_consecutive="false")
    assert "sequence" in tree["error_details"]
    await vr.ok("CreateRecording", recording_list_key=lk, name="d", meta_data_3="x",
                sequence=5, keep_consecutive="false")
    assert await sequences(vr, lk) == [("c", 2), ("d", 5)]


async def test_initial_and_max_recordings(vr: Vr) -> None:
    lk = await new_list(vr, initial_recordings=2, max_recordings=3)
    tree = await vr.ok("GetRecordingList", recording_list_key=lk)
    assert tree["recording_list"]["recording_count"] == "2"
    await vr.ok("CreateRecording", recording_list_key=lk)
    await vr.fail("CreateRecording", 1401, recording_list_key=lk)
    await vr.fail("CreateRecordingList", 1003, initial_recordings=4, max_recordings=3)
    await vr.fail("SetRecordingList", 1003, recording_list_key=lk, max_recordings=1)


async def test_meta_data_search_and_wildcards(vr: Vr) -> None:
    for i, (m1, code) in enumerate((("slide-1", "1234"), ("slide-2", "1299"), ("x_y", "5"))):
        await new_list(vr, recording_list_key=f"L{i}", meta_data_1=m1, access_code=code)
    found = await vr.ok("GetRecordingList", "json", meta_data_1="slide%", access_code="12%")
    assert sorted(x["recording_list_key"] for x in found["recording_list"]) == ["L0", "L1"]
    found = await vr.ok("GetRecordingList", "json", meta_data_1="slide%", access_code="123%")
    assert [x["recording_list_key"] for x in found["recording_list"]] == ["L0"]
    # Only '%' is a wildcard: '_' matches itself.
    found = await vr.ok("GetRecordingList", "json", meta_data_1="x_y")
    assert [x["recording_list_key"] for x in found["recording_list"]] == ["L2"]
    assert (await vr.ok("GetRecordingList", "json", meta_data_1="xay"))["recording_list"] == []
    await vr.ok("SetRecording", recording_list_key="L0",
                recording_key=(await vr.ok("CreateRecording", recording_list_key="L0"))
                ["recording"]["recording_key"], touchtone_input="4455", caller_id="5125550100")
    found = await vr.ok("GetRecording", recording_list_key="L0", touchtone_input="44%",
                        caller_id="512%")
    assert found["recording_count"] == "1"
    assert found["recording"]["touchtone_input"] == "4455"


async def test_search_returns_at_most_100(vr: Vr, service: RecorderService) -> None:
    lk = await new_list(vr)
    await vr.ok("SetRecordingList", recording_list_key=lk)
    async with service.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO recordings (list_id, recording_key, sequence, play_key, meta_data_1)"
            " SELECT l.id, 'K' || g, g, upper(substr(md5(random()::text), 1, 20)), 'm'"
            " FROM recording_lists l, generate_series(1, 105) g WHERE l.list_key = $1", lk)
    found = await vr.ok("GetRecording", "json", recording_list_key=lk, meta_data_1="m")
    assert len(found["recording"]) == 100


async def test_passwords_random_once_and_protected(vr: Vr) -> None:
    tree = await vr.ok("CreateRecordingList", "json", access_password="?????",
                       update_password="???", delete_password="secret-delete")
    rl = tree["recording_list"]
    lk, access, update = rl["recording_list_key"], rl["access_password"], rl["update_password"]
    assert len(access) == 12 and access != update and "delete_password" not in rl
    assert rl["access_protected"] and rl["update_protected"] and rl["delete_protected"]
    # Never readable again.
    again = await vr.ok("GetRecordingList", "json", recording_list_key=lk, asset_password=access)
    assert "access_password" not in again["recording_list"]
    await vr.fail("GetRecordingList", 1302, recording_list_key=lk)
    await vr.fail("GetRecordingList", 1302, recording_list_key=lk, asset_password="wrong")
    await vr.fail("CreateRecording", 1401, recording_list_key=lk, asset_password=access)
    await vr.ok("CreateRecording", recording_list_key=lk, asset_password=update)
    await vr.fail("DeleteRecordingList", 1304, recording_list_key=lk, asset_password=update)
    # A second `password` value is the command's own password (the seed's parameter name).
    await vr.ok("DeleteRecordingList", recording_list_key=lk,
                password=[vr.dev.password, "secret-delete"])


async def test_recording_states_and_rerecord(vr: Vr, service: RecorderService) -> None:
    lk = await new_list(vr, initial_recordings=2)
    rows = await service.pool.fetch(
        "SELECT r.id, r.recording_key FROM recordings r JOIN recording_lists l ON l.id ="
        " r.list_id WHERE l.list_key = $1 ORDER BY sequence", lk)
    k1, k2 = rows[0]["recording_key"], rows[1]["recording_key"]
    start = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=f"{k1} ; {k2}")
    key = start["recording_session_key"]
    assert len(start["ivr_pin"]) == 6 and start["ivr_pin"].isdigit()
    phone = RecorderPhone(service.pool, service.data_dir)
    route = await phone.route(start["phone_number_list"]["phone_number_info"][0]["phone_number"])
    assert route is not None
    session = await phone.session_by_pin(route.number.id, start["ivr_pin"])
    assert session is not None and session.session_key == key
    status = await vr.ok("GetSessionStatus", "json", recording_session_key=key)
    assert status["session_state"] == "created" and "current_recording" not in status
    await phone.mark_called(session.id)
    assert (await vr.ok("GetSessionStatus", recording_session_key=key))["session_state"] == "called"
    assert await phone.start_take(session.id, rows[0]["id"])
    status = await vr.ok("GetSessionStatus", "json", recording_session_key=key)
    assert status["session_state"] == "recording"
    assert status["current_recording"]["recording_key"] == k1
    assert status["current_recording"]["recording_state"] == "recording"
    take = await phone.new_take(session.id, rows[0]["id"], "chan-1")
    assert await phone.accept_take(session.id, rows[0]["id"], take, duration_ms=4200,
                                   has_wav=True, has_mp3=False, caller_id="5125550100",
                                   touchtone_input=None)
    assert [r.recording_key for r in await phone.recordings(session.id)] == [k1, k2]
    await phone.end_session(session.id)
    status = await vr.ok("GetSessionStatus", "json", recording_session_key=key)
    assert status["session_state"] == "ended"
    got = (await vr.ok("GetRecording", "json", recording_list_key=lk, recording_key=k1))
    assert got["recording"]["recording_state"] == "recorded"
    assert got["recording"]["recording_length"] == 4 and got["recording"]["has_wav_file"]
    assert got["recording"]["is_in_session"] is False
    # Joining a new session with audio makes it "rerecord"; expiring puts it back.
    start = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=f"{k1}|{k2}")
    states = {r["recording_key"]: r["recording_state"]
              for r in start["session_recordings"]["recording"]}
    assert states == {k1: "rerecord", k2: "unrecorded"}
    await vr.ok("ExpireRecordingSession", recording_session_key=start["recording_session_key"])
    got = await vr.ok("GetRecording", "json", recording_list_key=lk, recording_key=k1)
    assert got["recording"]["recording_state"] == "recorded"


async def test_excluded_recordings_and_unlock(vr: Vr) -> None:
    lk = await new_list(vr)
    k1 = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    k2 = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    first = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=k1)
    second = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                         recording_keys=f"{k1}/{k2}")
    assert [r["recording_key"] for r in second["session_recordings"]["recording"]] == [k2]
    assert [r["recording_key"] for r in second["excluded_recordings"]["recording"]] == [k1]
    assert first["ivr_pin"] != second["ivr_pin"]
    await vr.fail("StartRecordingSession", 1501, recording_list_key=lk, recording_keys=k1)
    await vr.ok("ExpireRecordingSession", recording_session_key=first["recording_session_key"])
    third = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=k1)
    assert "excluded_recordings" not in third


async def test_all_locked_failure_lists_the_excluded(vr: Vr) -> None:
    lk = await new_list(vr)
    keys = [(await vr.ok("CreateRecording", recording_list_key=lk))["recording"]
            ["recording_key"] for _ in range(2)]
    await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=",".join(keys))
    for reply in ("xml", "json"):
        tree = await vr.fail("StartRecordingSession", 1501, reply, recording_list_key=lk,
                             recording_keys=",".join(keys))
        excluded = as_list(tree["excluded_recordings"]["recording"])
        assert [r["recording_key"] for r in excluded] == keys
        assert "another live recording session" in tree["error_details"]


async def test_caller_id_sessions_and_overwrite(vr: Vr) -> None:
    lk = await new_list(vr, initial_recordings=1)
    k = (await vr.ok("GetRecordingList", recording_list_key=lk))["recording_list"]
    assert k["recording_count"] == "1"
    rec = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    other = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    first = await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rec,
                        caller_id="512-555-0199")
    assert first["ivr_pin"] == "5125550199"
    await vr.fail("StartRecordingSession", 1501, recording_list_key=lk, recording_keys=other,
                  caller_id="5125550199")
    second = await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rec,
                         caller_id="5125550199", overwrite="true")
    old = await vr.ok("GetSessionStatus", recording_session_key=first["recording_session_key"])
    assert old["session_state"] == "expired"
    assert second["session_recordings"]["recording"]["recording_key"] == rec


async def test_unused_pin_expires(vr: Vr, service: RecorderService) -> None:
    lk = await new_list(vr, initial_recordings=1)
    rec = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    start = await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rec)
    await service.pool.execute(
        "UPDATE recording_sessions SET expires_at = now() - interval '1 second'"
        " WHERE session_key = $1", start["recording_session_key"])
    status = await vr.ok("GetSessionStatus", recording_session_key=start["recording_session_key"])
    assert status["session_state"] == "expired"
    assert status["session_recordings"]["recording"]["is_in_session"] == "false"
    number = start["phone_number_list"]["phone_number_info"]["phone_number"]
    phone = RecorderPhone(service.pool, service.data_dir)
    route = await phone.route(number)
    assert route is not None
    assert await phone.session_by_pin(route.number.id, start["ivr_pin"]) is None


async def test_authentication_and_isolation(api: TestClient, vr: Vr, phone_number: str) -> None:
    lk = await new_list(vr)
    start = await vr.ok("StartRecordingSession", recording_list_key=lk,
                        recording_keys=(await vr.ok("CreateRecording", recording_list_key=lk))
                        ["recording"]["recording_key"])
    await vr.fail("GetRecordingList", 1001, recording_list_key=lk, password="wrong-password")
    await vr.fail("GetRecordingList", 1001, recording_list_key=lk, username="")
    other = Vr(api, await make_dev(api, phone_number))
    for action, params in (
        ("GetRecordingList", {"recording_list_key": lk}),
        ("DeleteRecordingList", {"recording_list_key": lk}),
        ("CreateRecording", {"recording_list_key": lk}),
        ("GetVoiceRecorder", {}),
        ("GetSessionStatus", {"recording_session_key": start["recording_session_key"]}),
        ("ExpireRecordingSession", {"recording_session_key": start["recording_session_key"]}),
    ):
        await other.fail(action, 1208, voice_recorder_key=vr.dev.recorder_key, **params)
    assert (await vr.ok("GetRecordingList", recording_list_key=lk))["recording_list"]


async def test_bad_input_names_parameter_and_writes_nothing(vr: Vr) -> None:
    for reply in ("xml", "json"):
        tree = await vr.fail("CreateRecording", 1003, reply)
        assert "recording_list_key" in tree["error_details"]
    tree = await vr.fail("CreateRecordingList", 1003, caller_id="call-me")
    assert "caller_id" in tree["error_details"]
    await vr.fail("CreateRecordingList", 1003, max_recordings="many")
    await vr.fail("StartRecordingSession", 1003, recording_list_key="X")
    await vr.fail("GetRecordingList", 1003, reply="yaml")
    lk = await new_list(vr, initial_recordings=1)
    # A failing command leaves nothing behind: the duplicate key fails after the list insert.
    before = (await vr.ok("GetRecordingList", recording_list_key=lk))["recording_list"]
    await vr.fail("CreateRecordingList", 1305, recording_list_key=lk, initial_recordings=3)
    after = (await vr.ok("GetRecordingList", recording_list_key=lk))["recording_list"]
    assert before["recording_count"] == after["recording_count"] == "1"


async def test_post_form_and_case_insensitive_action(vr: Vr) -> None:
    text = await vr.raw("createrecordinglist", method="POST", name="Posted")
    assert 'status="success"' in text and "<name>Posted</name>" in text


async def test_fifty_concurrent_creates_and_moves(vr: Vr) -> None:
    lk = await new_list(vr)
    first = [(await vr.ok("CreateRecording", recording_list_key=lk, recording_key=f"s{i}",
                          meta_data_3="x", name=f"s{i}"))["recording"]["recording_key"]
             for i in range(5)]

    async def one(i: int) -> None:
        if i % 2:
            await vr.ok("SetRecording", recording_list_key=lk, recording_key=first[i % 5],
                        sequence=(i % 7) + 1)
        else:
            await vr.ok("CreateRecording", recording_list_key=lk, meta_data_3="x",
                        name=f"c{i}", sequence=(i % 4) + 1 if i % 3 else None)

    await asyncio.gather(*(one(i) for i in range(50)))
    seqs = [s for _, s in await sequences(vr, lk)]
    assert seqs == list(range(1, 5 + 25 + 1))


async def test_a_password_set_before_its_keypad_form_was_kept(vr: Vr,
                                                               service: RecorderService) -> None:
    """A recorder whose password predates migration 0012 has no keypad form: a caller keying
    the password itself (digits) is let in, and that fills the keypad form in; a password with
    letters cannot be checked from the keypad until it is set again."""
    await vr.ok("SetVoiceRecorder", recorder_password="7391")
    recorder_id = await service.pool.fetchval(
        "SELECT id FROM voice_recorders WHERE recorder_key = $1", vr.dev.recorder_key)
    await service.pool.execute(
        "UPDATE voice_recorders SET phone_password_hash = NULL WHERE id = $1", recorder_id)
    phone = RecorderPhone(service.pool, service.data_dir)
    assert not await phone.recorder_password_ok(recorder_id, "0000")
    assert await service.pool.fetchval(
        "SELECT phone_password_hash FROM voice_recorders WHERE id = $1", recorder_id) is None
    assert await phone.recorder_password_ok(recorder_id, "7391")
    filled = await service.pool.fetchval(
        "SELECT phone_password_hash FROM voice_recorders WHERE id = $1", recorder_id)
    assert filled is not None and filled.startswith("$argon2")
    assert await phone.recorder_password_ok(recorder_id, "7391")
    assert not await phone.recorder_password_ok(recorder_id, "7390")

    await vr.ok("SetVoiceRecorder", recorder_password="Ab3x")
    await service.pool.execute(
        "UPDATE voice_recorders SET phone_password_hash = NULL WHERE id = $1", recorder_id)
    assert not await phone.recorder_password_ok(recorder_id, "2239")
