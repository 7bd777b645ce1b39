"""Every /vr command's reply against the seed's sample, in XML and JSON: same root, same
attributes, every element the sample shows present at the same place and in the same order
(our replies may add the elements the seed's tables list), and the JSON reply the mirror of
the XML one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
import pytest

from tests.helpers.vr import Vr
from tests.recorder import samples


def shape(elem: ET.Element) -> list[tuple[str, Any]]:
    return [(child.tag, shape(child)) for child in elem]


def assert_contains_shape(sample: list[tuple[str, Any]], ours: list[tuple[str, Any]],
                          where: str = "MyVoxapi") -> None:
    """The sample's children are a subsequence of ours, recursively."""
    i = 0
    for tag, children in sample:
        while i < len(ours) and ours[i][0] != tag:
            i += 1
        assert i < len(ours), f"<{tag}> missing or out of order under <{where}>"
        assert_contains_shape(children, ours[i][1], f"{where}/{tag}")
        i += 1


def json_mirror(elem: ET.Element) -> Any:
    """What our JSON reply must be for an XML element (the rule docs/api.md states)."""
    if len(elem) == 0:
        return elem.text
    out: dict[str, Any] = {}
    for child in elem:
        value = json_mirror(child)
        if child.tag in _ARRAYS:
            out.setdefault(child.tag, []).append(value)
        else:
            out[child.tag] = value
    return out


_ARRAYS = {"recording_list_many", "phone_number_info"}


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


async def check(vr: Vr, sample: str, action: str, **params: Any) -> str:
    text = await vr.raw(action, "xml", **params)
    ours = ET.fromstring(text)
    theirs = ET.fromstring(sample)
    assert ours.tag == theirs.tag == "MyVoxapi"
    assert set(ours.attrib) == set(theirs.attrib) == {"message", "status"}
    assert ours.attrib["status"] == "success", text
    assert_contains_shape(shape(theirs), shape(ours))
    return text


async def check_json(vr: Vr, xml_text: str, action: str, **params: Any) -> None:
    """The JSON reply holds the same tree (repeatable elements as arrays)."""
    doc = orjson.loads(await vr.raw(action, "json", **params))["MyVoxapi"]
    root = ET.fromstring(xml_text)
    assert set(doc) >= {"status", "message"}
    xml_names = [c.tag for c in root]
    json_names = [k for k in doc if k not in ("status", "message")]
    assert json_names == list(dict.fromkeys(xml_names))


async def test_create_recording_list_and_get(vr: Vr) -> None:
    params = dict(name="Test Recording List", meta_data_1="xxx", meta_data_2="yyy",
                  meta_data_3="zzz", max_recordings=5)
    text = await check(vr, samples.CREATE_RECORDING_LIST, "CreateRecordingList",
                       recording_list_key="MyCustomKey", **params)
    await check_json(vr, text, "CreateRecordingList", recording_list_key="JsonKey", **params)
    text = await check(vr, samples.GET_RECORDING_LIST, "GetRecordingList",
                       recording_list_key="MyCustomKey")
    await check_json(vr, text, "GetRecordingList", recording_list_key="MyCustomKey")
    text = await check(vr, samples.SET_RECORDING_LIST, "SetRecordingList",
                       recording_list_key="MyCustomKey", max_recordings=5)
    await check_json(vr, text, "SetRecordingList", recording_list_key="MyCustomKey")


async def test_recording_commands(vr: Vr) -> None:
    lk = (await vr.ok("CreateRecordingList"))["recording_list"]["recording_list_key"]
    text = await check(vr, samples.CREATE_RECORDING, "CreateRecording", recording_list_key=lk,
                       name="My Recording")
    key = ET.fromstring(text).find("recording/recording_key").text  # type: ignore[union-attr]
    await check_json(vr, text, "CreateRecording", recording_list_key=lk, name="Second")
    text = await check(vr, samples.SET_RECORDING, "SetRecording", recording_list_key=lk,
                       recording_key=key, name="MyRecording", meta_data_1="ABCDEFG")
    await check_json(vr, text, "SetRecording", recording_list_key=lk, recording_key=key)
    text = await vr.raw("GetRecording", recording_list_key=lk, recording_key=key)
    await check_json(vr, text, "GetRecording", recording_list_key=lk, recording_key=key)
    text = await check(vr, samples.DELETE_RECORDING, "DeleteRecording", recording_list_key=lk,
                       recording_key=key)
    assert text.rstrip().endswith("/>")
    json_doc = orjson.loads(await vr.raw("DeleteRecordingList", "json", recording_list_key=lk))
    assert json_doc == {"MyVoxapi": {"status": "success",
                                     "message": f"Recording list {lk} deleted"}}


async def test_get_recording_with_audio_matches_sample(vr: Vr, pool: Any) -> None:
    lk = (await vr.ok("CreateRecordingList"))["recording_list"]["recording_list_key"]
    key = (await vr.ok("CreateRecording", recording_list_key=lk,
                       name="My Recording"))["recording"]["recording_key"]
    await pool.execute("UPDATE recordings SET state = 'recorded', has_mp3_file = true,"
                       " recording_length = 7 WHERE recording_key = $1", key)
    text = await check(vr, samples.GET_RECORDING, "GetRecording", recording_list_key=lk,
                       recording_key=key)
    rec = ET.fromstring(text).find("recording")
    assert rec is not None and rec.findtext("recording_length") == "7"
    assert rec.findtext("mp3_url", "").endswith(f"/{rec.findtext('play_key')}/recording.mp3")
    assert rec.find("wav_url") is None


async def test_session_commands(vr: Vr) -> None:
    lk = (await vr.ok("CreateRecordingList"))["recording_list"]["recording_list_key"]
    keys = [(await vr.ok("CreateRecording", recording_list_key=lk, name=f"Recording {i}"))
            ["recording"]["recording_key"] for i in (1, 2)]
    text = await check(vr, samples.START_RECORDING_SESSION, "StartRecordingSession",
                       recording_list_key=lk, recording_keys=",".join(keys))
    session = ET.fromstring(text).findtext("recording_session_key")
    doc = orjson.loads(await vr.raw("GetSessionStatus", "json", recording_session_key=session))
    assert isinstance(doc["MyVoxapi"]["session_recordings"]["recording"], list)
    text = await vr.raw("GetSessionStatus", recording_session_key=session)
    theirs = ET.fromstring(samples.GET_SESSION_STATUS)
    assert_contains_shape(shape(theirs), shape(ET.fromstring(text)))
    await check_json(vr, text, "GetSessionStatus", recording_session_key=session)
    text = await check(vr, samples.EXPIRE_RECORDING_SESSION, "ExpireRecordingSession",
                       recording_session_key=session)
    await check_json(vr, text, "ExpireRecordingSession", recording_session_key=session)


async def test_start_session_json_arrays(vr: Vr) -> None:
    lk = (await vr.ok("CreateRecordingList", initial_recordings=1))["recording_list"][
        "recording_list_key"]
    key = (await vr.ok("GetRecording", recording_list_key=lk, meta_data_1="%"))
    assert key["recording_count"] == "0"  # NULL meta data never matches a pattern
    rec = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]["recording_key"]
    doc = orjson.loads(await vr.raw("StartRecordingSession", "json", recording_list_key=lk,
                                    recording_keys=rec))["MyVoxapi"]
    assert list(doc)[:4] == ["status", "message", "recording_session_key", "ivr_pin"]
    assert isinstance(doc["phone_number_list"]["phone_number_info"], list)
    assert [r["recording_key"] for r in doc["session_recordings"]["recording"]] == [rec]
    assert doc["session_recordings"]["recording"][0]["is_in_session"] is True


@pytest.mark.parametrize("reply", ["xml", "json"])
async def test_failure_shape(vr: Vr, reply: str) -> None:
    text = await vr.raw("NoSuchCommand", reply)
    if reply == "xml":
        ours, theirs = ET.fromstring(text), ET.fromstring(samples.FAILURE)
        assert set(ours.attrib) == set(theirs.attrib)
        assert_contains_shape(shape(theirs), shape(ours))
        assert [c.tag for c in ours] == ["error_code", "error_message", "error_details"]
        assert ours.findtext("error_code") == "1002"
    else:
        doc = orjson.loads(text)["MyVoxapi"]
        assert doc["status"] == "failed" and doc["error_code"] == 1002
        assert doc["error_message"] == "Unrecognized API command"
        assert "NoSuchCommand" in doc["error_details"]


@pytest.mark.parametrize("reply", ["xml", "json"])
async def test_common_section_root_on_request(vr: Vr, reply: str) -> None:
    """reply_root=openMyVox answers in the common section's shape: that root, and status and
    message as child elements; the rest of the tree is the same as the default reply's."""
    text = await vr.raw("NoSuchCommand", reply, reply_root="openMyVox")
    if reply == "xml":
        ours, theirs = ET.fromstring(text), ET.fromstring(samples.COMMON_FAILURE)
        assert ours.tag == theirs.tag == "openMyVox" and ours.attrib == {}
        assert_contains_shape(shape(theirs), shape(ours), "openMyVox")
        assert [c.tag for c in ours] == ["status", "message", "error_code", "error_message",
                                         "error_details"]
        assert ours.findtext("status") == "failed" and ours.findtext("error_code") == "1002"
    else:
        doc = orjson.loads(text)
        assert list(doc) == ["openMyVox"] and doc["openMyVox"]["error_code"] == 1002
    created = await vr.raw("CreateRecordingList", reply, reply_root="openmyvox",
                           recording_list_key=f"Root{reply}")
    default = await vr.raw("GetRecordingList", reply, recording_list_key=f"Root{reply}")
    if reply == "xml":
        ours = ET.fromstring(created)
        assert ours.findtext("status") == "success"
        assert [c.tag for c in ours] == ["status", "message", *[
            c.tag for c in ET.fromstring(default)]]
    else:
        tree = orjson.loads(created)["openMyVox"]
        assert tree["status"] == "success"
        assert list(tree) == list(orjson.loads(default)["MyVoxapi"])
    bad = ET.fromstring(await vr.raw("GetDeveloper", reply_root="Nope"))
    assert bad.tag == "MyVoxapi" and bad.findtext("error_code") == "1003"
