"""Who may run a /vr command: the developer's credentials (1001 without them) and the
passwords of protected lists and recordings, each checked against the value meant for it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers.vr import Vr, parse

LIST = {"access_password": "list-access-1", "update_password": "list-update-1",
        "delete_password": "list-delete-1"}
RECORDING = {"access_password": "rec-access-1", "update_password": "rec-update-1",
             "delete_password": "rec-delete-1"}


async def protected(vr: Vr) -> tuple[str, str]:
    """A list and a recording whose six passwords all differ."""
    lk = (await vr.ok("CreateRecordingList", **LIST))["recording_list"]["recording_list_key"]
    rk = (await vr.ok("CreateRecording", recording_list_key=lk, name="One",
                      asset_password=LIST["update_password"]))["recording"]["recording_key"]
    await vr.ok("SetRecording", recording_list_key=lk, recording_key=rk, meta_data_1="m",
                asset_password=LIST["update_password"], **RECORDING)
    return lk, rk


def named(prefix: str, passwords: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}_{name}": value for name, value in passwords.items()}


async def test_every_password_is_checked_against_its_own_value(vr: Vr) -> None:
    lk, rk = await protected(vr)
    both = {**named("list", LIST), **named("recording", RECORDING)}
    # Reads: the list's and the recording's access passwords, each under its own name.
    got = await vr.ok("GetRecording", recording_list_key=lk, recording_key=rk, **both)
    assert got["recording"]["access_protected"] == "true"
    found = await vr.ok("GetRecording", "json", recording_list_key=lk, meta_data_1="%",
                        **both)
    assert [r["recording_key"] for r in found["recording"]] == [rk]
    hidden = await vr.ok("GetRecording", "json", recording_list_key=lk, meta_data_1="%",
                         access_password=LIST["access_password"])
    assert hidden["recording"] == []  # the recording's own access password was not given
    await vr.fail("GetRecording", 1402, recording_list_key=lk, recording_key=rk,
                  access_password=LIST["access_password"])
    # The role's bare name serves the object without a name of its own.
    await vr.ok("GetRecording", recording_list_key=lk, recording_key=rk,
                list_access_password=LIST["access_password"],
                access_password=RECORDING["access_password"])
    await vr.ok("GetRecordingList", recording_list_key=lk,
                access_password=LIST["access_password"])
    # A session needs the list's access and update passwords and the recording's update one.
    start = await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rk,
                        **both)
    await vr.ok("ExpireRecordingSession", recording_session_key=start["recording_session_key"])
    await vr.fail("StartRecordingSession", 1501, recording_list_key=lk, recording_keys=rk,
                  asset_password=LIST["update_password"])
    await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rk,
                access_password=LIST["access_password"],
                list_update_password=LIST["update_password"],
                recording_update_password=RECORDING["update_password"])
    # Changes: on SetRecording the bare names are the new passwords, so the credentials go
    # under the object's names.
    await vr.fail("SetRecording", 1403, recording_list_key=lk, recording_key=rk, name="Two",
                  asset_password=LIST["update_password"])
    changed = await vr.ok("SetRecording", recording_list_key=lk, recording_key=rk,
                          name="Two", **both)
    assert changed["recording"]["name"] == "Two"
    await vr.ok("SetRecordingList", recording_list_key=lk, name="Renamed",
                list_update_password=LIST["update_password"])
    await vr.ok("CreateRecording", recording_list_key=lk,
                update_password=LIST["update_password"])
    # Deletes.
    await vr.fail("DeleteRecording", 1404, recording_list_key=lk, recording_key=rk,
                  delete_password=LIST["delete_password"])
    await vr.ok("DeleteRecording", recording_list_key=lk, recording_key=rk,
                list_delete_password=LIST["delete_password"],
                recording_delete_password=RECORDING["delete_password"])
    await vr.ok("DeleteRecordingList", recording_list_key=lk,
                delete_password=LIST["delete_password"])


async def test_one_generic_password_still_opens_what_it_matches(vr: Vr) -> None:
    same = dict.fromkeys(LIST, "one-for-all-1")
    lk = (await vr.ok("CreateRecordingList", **same))["recording_list"]["recording_list_key"]
    rk = (await vr.ok("CreateRecording", recording_list_key=lk,
                      password=[vr.dev.password, "one-for-all-1"]))["recording"]["recording_key"]
    await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rk,
                asset_password="one-for-all-1")
    # A named value wins over the generic one: a wrong named value is not rescued.
    await vr.fail("GetRecordingList", 1302, recording_list_key=lk,
                  asset_password="one-for-all-1", list_access_password="wrong-one")


async def _bare(api: TestClient, **params: Any) -> dict[str, Any]:
    resp = await api.get("/vr", params=params)
    assert resp.status == 200
    reply = next((str(v) for k, v in params.items() if k.lower() == "reply"), "xml")
    return parse(await resp.text(), reply.lower())


async def test_protected_command_without_credentials_is_1001(api: TestClient, vr: Vr) -> None:
    lk = (await vr.ok("CreateRecordingList", initial_recordings=1))["recording_list"][
        "recording_list_key"]
    rk = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    start = await vr.ok("StartRecordingSession", recording_list_key=lk, recording_keys=rk)
    session = start["recording_session_key"]
    # As the seed's samples send them: the session key alone.
    for action in ("GetSessionStatus", "ExpireRecordingSession"):
        tree = await _bare(api, action=action, recording_session_key=session)
        assert tree["status"] == "failed" and tree["error_code"] == "1001", tree
        assert "username" in tree["error_details"] and "password" in tree["error_details"]
    status = await vr.ok("GetSessionStatus", recording_session_key=session)
    assert status["session_state"] == "created"  # the bare Expire changed nothing
    await vr.fail("GetRecordingList", 1001, recording_list_key=lk, username=None,
                  password=None)
    await vr.fail("GetRecordingList", 1001, "json", recording_list_key=lk, password=None)
    await vr.fail("GetRecordingList", 1001, recording_list_key=lk, username="")


async def test_capitalised_parameter_names(api: TestClient, vr: Vr) -> None:
    lk = (await vr.ok("CreateRecordingList", access_password="cap-access-1"))[
        "recording_list"]["recording_list_key"]
    # The GetRecording table writes Action, Reply and Password.
    tree = await _bare(api, Action="GetRecordingList", Reply="JSON", username=vr.dev.username,
                       Password=vr.dev.password, voice_recorder_key=vr.dev.recorder_key,
                       recording_list_key=lk, Access_Password="cap-access-1")
    assert tree["status"] == "success", tree
