"""Developer and voice recorder commands, prompts, PlayRecording and the audio routes."""

from __future__ import annotations

import io
import wave
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from ivr.core.web import POOL
from ivr.recorder.models import take_path
from tests.helpers.vr import Dev, Vr, make_dev


def wav_bytes() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\1" * 800)
    return buf.getvalue()


async def test_developer_commands(api: TestClient, phone_number: str) -> None:
    dev = await make_dev(api, phone_number)
    vr = Vr(api, dev)
    for reply in ("xml", "json"):
        tree = await vr.ok("GetDeveloper", reply)
        assert tree["developer"]["username"] == dev.username
    await Vr(api, Dev(dev.username, "other-password", "")).fail("CreateDeveloper", 1105)
    await Vr(api, Dev("x", "short", "")).fail("CreateDeveloper", 1003)
    tree = await vr.ok("SetDeveloper", email="me@example.org", name="Me")
    assert tree["developer"]["email"] == "me@example.org"
    login = await vr.ok("LoginDeveloper", "json")
    assert len(login["api_token"]) > 30
    await Vr(api, Dev(dev.username, "bad-password", "")).fail("LoginDeveloper", 1108)
    tree = await vr.fail("EmailPassword", 1107, username=dev.username)
    assert "mail is not configured" in tree["error_details"]
    await vr.ok("ChangePassword", new_password="a-new-password")
    await vr.fail("GetDeveloper", 1001)
    vr = Vr(api, Dev(dev.username, "a-new-password", dev.recorder_key))
    await vr.ok("DeleteDeveloper")
    await vr.fail("GetDeveloper", 1001)


async def test_voice_recorder_commands(vr: Vr, api: TestClient, phone_number: str) -> None:
    for reply in ("xml", "json"):
        tree = await vr.ok("GetVoiceRecorder", reply)
        assert tree["voice_recorder"]["pin_length"] in ("6", 6)
    info = (await vr.ok("GetVoiceRecorder"))["voice_recorder"]["phone_number_list"]
    assert info["phone_number_info"]["phone_number"] == phone_number
    tree = await vr.ok("SetVoiceRecorder", "json", audio_format="both", pin_length=4,
                       identification="both", lookup_mode="lookup_else_create",
                       touchtone_prompt="true", touchtone_length=4, retention_days=30,
                       recorder_password="???", password_required="true")
    v = tree["voice_recorder"]
    assert (v["audio_format"], v["pin_length"], v["touchtone_length"]) == ("both", 4, 4)
    assert len(v["recorder_password"]) == 12
    assert "recorder_password" not in (await vr.ok("GetVoiceRecorder", "json"))["voice_recorder"]
    await vr.fail("SetVoiceRecorder", 1003, audio_format="ogg")
    tree = await vr.fail("SetVoiceRecorder", 1003, storage="upload")
    assert "upload_url" in tree["error_details"]
    await vr.fail("CreateVoiceRecorder", 1003, voice_recorder_key=vr.dev.recorder_key)
    lk = (await vr.ok("CreateRecordingList", initial_recordings=1))["recording_list"]
    start = await vr.ok("StartRecordingSession", recording_list_key=lk["recording_list_key"],
                        recording_keys=(await vr.ok("CreateRecording",
                                        recording_list_key=lk["recording_list_key"]))
                        ["recording"]["recording_key"])
    assert len(start["ivr_pin"]) == 4
    tree = await vr.ok("SetPrompt", prompt_set="friendly")
    assert tree["voice_recorder"]["prompt_set"] == "friendly"
    await vr.ok("DeleteVoiceRecorder")
    await vr.fail("GetVoiceRecorder", 1202)


async def test_call_initiated_recorder_gets_a_dedicated_number(vr: Vr, service: Any) -> None:
    await vr.fail("CreateVoiceRecorder", 1201, initiation="call", voice_recorder_key=None)
    free = await service.add_number("15125550177", "512-555-0177", "US", None)
    tree = await vr.ok("CreateVoiceRecorder", "json", initiation="call", voice_recorder_key=None)
    numbers = tree["voice_recorder"]["phone_number_list"]["phone_number_info"]
    assert [n["phone_number"] for n in numbers] == [free.number]
    # Dedicated: no other recorder, shared or not, is given it.
    await vr.fail("CreateVoiceRecorder", 1201, initiation="call", voice_recorder_key=None)
    shared = await vr.ok("CreateVoiceRecorder", "json", voice_recorder_key=None)
    assert shared["voice_recorder"]["phone_number_list"]["phone_number_info"][0][
        "phone_number"] != free.number


async def test_prompts(api: TestClient, vr: Vr) -> None:
    await vr.fail("PlayPrompt", 1205, prompt_name="welcome")
    await vr.fail("PlayPrompt", 1003, prompt_name="nonsense")
    data = aiohttp.FormData()
    for k, v in {"action": "UploadPrompt", "username": vr.dev.username,
                 "password": vr.dev.password, "voice_recorder_key": vr.dev.recorder_key,
                 "prompt_name": "welcome", "reply": "json"}.items():
        data.add_field(k, v)
    data.add_field("prompt_file", wav_bytes(), filename="welcome.wav", content_type="audio/wav")
    resp = await api.post("/vr", data=data)
    body = (await resp.json())["MyVoxapi"]
    assert body["status"] == "success", body
    tree = await vr.ok("PlayPrompt", "json", prompt_name="welcome")
    url = tree["prompt"]["prompt_url"]
    resp = await api.get(url[url.index("/prompts/"):])
    assert resp.status == 200 and (await resp.read()) == wav_bytes()
    await vr.fail("UploadPrompt", 1003, method="POST", prompt_name="welcome")


async def test_play_recording_and_audio_range(vr: Vr, api: TestClient, settings: Any) -> None:
    lk = (await vr.ok("CreateRecordingList"))["recording_list"]["recording_list_key"]
    rec = (await vr.ok("CreateRecording", recording_list_key=lk))["recording"]
    await vr.fail("PlayRecording", 1405, recording_list_key=lk,
                  recording_key=rec["recording_key"])
    resp = await api.get(f"/{rec['play_key']}/recording.wav")
    assert resp.status == 404
    path = take_path(settings.data_dir, rec["play_key"], 1, "wav")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes())
    await api.server.app[POOL].execute(
        "WITH t AS (INSERT INTO takes (recording_id, take_number, has_wav_file)"
        " SELECT id, 1, true FROM recordings WHERE play_key = $1 RETURNING id, recording_id)"
        " UPDATE recordings r SET state = 'recorded', has_wav_file = true,"
        " accepted_take_id = t.id FROM t WHERE r.id = t.recording_id", rec["play_key"])
    tree = await vr.ok("PlayRecording", "json", recording_list_key=lk,
                       recording_key=rec["recording_key"])
    url = tree["recording"]["wav_url"]
    assert url.endswith(f"/{rec['play_key']}/recording.wav")
    resp = await api.get(url[url.index(rec["play_key"]) - 1:], headers={"Range": "bytes=0-3"})
    assert resp.status == 206 and await resp.read() == b"RIFF"
    assert resp.headers["Content-Type"] == "audio/wav"
    assert (await api.get(f"/{rec['play_key']}/recording.mp3")).status == 404
