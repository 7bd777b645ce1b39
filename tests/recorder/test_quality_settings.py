"""Take quality in the API: each recorder's limits (defaults, set over /vr and /v1, bad values
refused with the parameter named and nothing written), and each take's figures and verdict,
stored with the take and shown with its recording (/v1 in full, MyVox its verdict only)."""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from ivr.recorder import store
from ivr.recorder.phone import RecorderPhone
from ivr.recorder.service import RecorderService
from ivr.recorder.takes import TakeStore, judge
from tests.helpers.vr import Vr

DEFAULTS = {"quality_check": True, "quality_keep_anyway": True,
            "quality_min_speech_seconds": 0.3, "quality_min_loudness_lufs": -40.0,
            "quality_max_clipped_ratio": 0.01, "quality_min_snr_db": 12.0}


def _auth(vr: Vr) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(vr.dev.username, vr.dev.password)}


async def test_a_recorder_has_quality_limits_set_in_both_faces(vr: Vr, api: TestClient) -> None:
    got = (await vr.ok("GetVoiceRecorder", "json",
                       voice_recorder_key=vr.dev.recorder_key))["voice_recorder"]
    assert {k: got[k] for k in DEFAULTS} == DEFAULTS
    # /vr: form strings, decimals as written.
    tree = await vr.ok("SetVoiceRecorder", "json", voice_recorder_key=vr.dev.recorder_key,
                       quality_keep_anyway="false", quality_min_speech_seconds="0.75",
                       quality_min_loudness_lufs="-45.5")
    v = tree["voice_recorder"]
    assert v["quality_keep_anyway"] is False and v["quality_min_speech_seconds"] == 0.75
    assert v["quality_min_loudness_lufs"] == -45.5 and v["quality_check"] is True
    # /v1: JSON numbers, whole or not.
    resp = await api.patch(f"/v1/recorders/{vr.dev.recorder_key}", headers=_auth(vr),
                           json={"quality_max_clipped_ratio": 0.05, "quality_min_snr_db": 6,
                                 "quality_check": False})
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["quality_max_clipped_ratio"], body["quality_min_snr_db"],
            body["quality_check"]) == (0.05, 6.0, False)


async def test_bad_quality_limits_are_refused_and_change_nothing(vr: Vr,
                                                                 api: TestClient) -> None:
    key = vr.dev.recorder_key
    for name, value in (("quality_min_speech_seconds", "-1"),
                        ("quality_min_loudness_lufs", "5"),
                        ("quality_max_clipped_ratio", "1.5"),
                        ("quality_min_snr_db", "loud"),
                        ("quality_min_snr_db", ""),  # cannot be cleared
                        ("quality_keep_anyway", "maybe")):
        tree = await vr.fail("SetVoiceRecorder", 1003, "json", voice_recorder_key=key,
                             name="renamed", **{name: value})
        assert name in tree["message"] or name in str(tree), tree
    for value in (True, "0.5x", [1]):
        resp = await api.patch(f"/v1/recorders/{key}", headers=_auth(vr),
                               json={"name": "renamed", "quality_min_snr_db": value})
        assert resp.status == 400 and (await resp.json())["param"] == "quality_min_snr_db"
    got = (await vr.ok("GetVoiceRecorder", "json", voice_recorder_key=key))["voice_recorder"]
    assert got["name"] != "renamed" and {k: got[k] for k in DEFAULTS} == DEFAULTS


def _tone_wav(seconds: float, amplitude: float) -> bytes:
    """Not speech to the VAD's ear: a steady tone (no_speech), or silence at amplitude 0."""
    rate = 8000
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(int(rate * seconds))))
    return out.getvalue()


async def test_a_takes_quality_is_stored_and_shown_with_its_recording(
    vr: Vr, api: TestClient, service: RecorderService, settings: Any
) -> None:
    lk = (await vr.ok("CreateRecordingList", "json"))["recording_list"]["recording_list_key"]
    rk = (await vr.ok("CreateRecording", "json", recording_list_key=lk))["recording"][
        "recording_key"]
    start = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=rk)
    phone = RecorderPhone(service.pool, settings.data_dir)
    route = await phone.route(start["phone_number_list"]["phone_number_info"][0]["phone_number"])
    assert route is not None
    session = await phone.session_by_pin(route.number.id, start["ivr_pin"])
    assert session is not None
    await phone.mark_called(session.id)
    (recording,) = await phone.recordings(session.id)
    assert await phone.start_take(session.id, recording.id)
    recorder = await phone.recorder(session.recorder_id)
    data = _tone_wav(2.0, 0.0)
    judged = await judge(recorder, data)
    assert judged is not None and judged["verdict"] == "no_speech"

    async def no_mp3(src: Any, dst: Any) -> None:
        raise AssertionError("a wav-only recorder makes no MP3")

    takes = TakeStore(phone, settings.data_dir, no_mp3)
    stored = await takes.keep(session.id, recording, "take-x", "chan-q", data, judged)
    assert stored.quality == judged
    assert await phone.accept_take(session.id, recording.id, stored.take, duration_ms=2000,
                                   has_wav=True, has_mp3=False, caller_id=None,
                                   touchtone_input=None)

    resp = await api.get(f"/v1/recorders/{vr.dev.recorder_key}/lists/{lk}/recordings/"
                         f"{recording.recording_key}", headers=_auth(vr))
    shown = await resp.json()
    assert shown["quality_verdict"] == "no_speech"
    quality = shown["quality"]
    assert quality["verdict"] == "no_speech" and quality["speech_seconds"] == 0
    assert quality["duration_seconds"] == 2.0 and quality["clipped_ratio"] == 0
    assert "loudness_lufs" not in quality  # silence has none to measure
    # MyVox, XML and JSON: the verdict as one more flat element, no nested figures.
    for reply in ("xml", "json"):
        got = (await vr.ok("GetRecording", reply, recording_list_key=lk,
                           recording_key=recording.recording_key))["recording"]
        assert got["quality_verdict"] == "no_speech" and "quality" not in got
    # The take's history (the console's list) carries it too.
    async with service.pool.acquire() as conn:
        (summary,) = await store.takes_of_recording(conn, recording.id)
    assert summary.quality == judged
