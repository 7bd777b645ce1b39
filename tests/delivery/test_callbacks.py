"""Session callbacks through the outbox: every state change's event arrives, in order, signed;
a failing receiver gets retries and then a failed delivery the API shows; one failing
endpoint does not hold back another session's events."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from ivr.delivery import signing
from ivr.recorder.phone import RecorderPhone
from ivr.settings import Settings
from ivr.telephony.rest import basic_auth
from tests.delivery.conftest import Made, Receiver, event_of, new_session, store_take

SESSION_FLOW = ["session.created", "session.called", "recording.started",
                "recording.recorded", "session.ended"]


def phone_for(pool: asyncpg.Pool, settings: Settings) -> RecorderPhone:
    return RecorderPhone(pool, settings.data_dir, settings.public_url,
                         settings.delivery_retry_for)


async def voice_one(made: Made, pool: asyncpg.Pool, settings: Settings,
                    kept_on_hangup: bool = False, **params: Any) -> dict[str, Any]:
    """A session whose caller voices its one recording (touchtone 42#) and hangs up."""
    session = await new_session(made, **params)
    phone = phone_for(pool, settings)
    await store_take(phone, pool, session["session_key"], session["keys"][0], touchtone="42#",
                     kept_on_hangup=kept_on_hangup)
    session_id = await pool.fetchval(
        "SELECT id FROM recording_sessions WHERE session_key = $1", session["session_key"])
    await phone.end_session(session_id)
    return session


async def test_events_arrive_in_order_signed_with_the_resource(
        make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(callback_url=f"{receiver.url}/events", callback_format="json")
    session = await voice_one(made, pool, fast_settings)
    got = await receiver.wait("/events", 5)
    events = [event_of(r) for r in got]
    assert [e["event_type"] for e in events] == SESSION_FLOW
    for request, event in zip(got, events, strict=True):
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        assert signing.verify(made.secret, request.headers, request.body)
        assert not signing.verify("another-secret-entirely", request.headers, request.body)
        assert request.headers[signing.EVENT_ID_HEADER] == event["event_id"]
        assert event["status"] == "event" and event["message"] == event["event_type"]
        assert event["recording_session_key"] == session["session_key"]
    assert len({e["event_id"] for e in events}) == 5
    assert [e["session_state"] for e in events if e["event_type"].startswith("session.")] == [
        "created", "called", "ended"]
    recorded = events[3]["recording"]
    assert recorded["recording_key"] == session["keys"][0]
    assert recorded["recording_state"] == "recorded" and recorded["recording_length"] == 2
    assert recorded["touchtone_input"] == "42#" and recorded["caller_id"] == "5125550123"
    assert recorded["wav_url"].endswith(f"/{recorded['play_key']}/recording.wav")
    assert events[2]["recording"]["recording_state"] == "recording"
    # A body altered in transit fails verification.
    assert not signing.verify(made.secret, got[0].headers, got[0].body.replace(b"1", b"2"))


async def test_a_take_nobody_confirmed_says_so_in_events_v1_and_myvox(
        make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    """A take kept as the caller hung up mid-take (or recovered after the engine died, which
    keeps it the same way) is marked `kept_on_hangup`; one the caller confirmed is not."""
    made = await make_recorder(callback_url=f"{receiver.url}/kept", callback_format="json")
    confirmed = await voice_one(made, pool, fast_settings)
    unconfirmed = await voice_one(made, pool, fast_settings, kept_on_hangup=True)
    events = [event_of(r) for r in await receiver.wait("/kept", 10)]
    kept = {e["recording"]["recording_key"]: e["recording"]["kept_on_hangup"]
            for e in events if e["event_type"] == "recording.recorded"}
    assert kept == {confirmed["keys"][0]: False, unconfirmed["keys"][0]: True}
    # Before any take, the recording has no audio and the field is absent.
    assert all("kept_on_hangup" not in e["recording"] for e in events
               if e["event_type"] == "recording.started")
    auth = basic_auth(made.vr.dev.username, made.vr.dev.password)
    for session, expected in ((confirmed, False), (unconfirmed, True)):
        resp = await made.vr.api.get(
            f"/v1/recorders/{made.key}/lists/{session['list_key']}/recordings/"
            f"{session['keys'][0]}", headers=auth)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["kept_on_hangup"] is expected
        tree = await made.vr.ok("GetRecording", "json", recording_list_key=session["list_key"],
                                recording_key=session["keys"][0])
        assert tree["recording"]["kept_on_hangup"] is expected
        xml = await made.vr.raw("GetRecording", recording_list_key=session["list_key"],
                                recording_key=session["keys"][0])
        assert ET.fromstring(xml).findtext("recording/kept_on_hangup") == str(expected).lower()


async def test_xml_by_default_and_a_session_callback_url_wins(
        make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(callback_url=f"{receiver.url}/recorder")
    session = await new_session(made, callback_url=f"{receiver.url}/mine")
    (request,) = await receiver.wait("/mine", 1)
    assert request.headers["Content-Type"].startswith("text/xml")
    assert signing.verify(made.secret, request.headers, request.body)
    root = ET.fromstring(request.body)
    assert root.tag == "MyVoxapi" and root.attrib == {"message": "session.created",
                                                      "status": "event"}
    assert root.findtext("event_type") == "session.created"
    assert root.findtext("recording_session_key") == session["session_key"]
    assert root.find("session_recordings/recording/recording_key") is not None
    # The recorder's own URL hears about sessions without one.
    other = await new_session(made)
    (request,) = await receiver.wait("/recorder", 1)
    assert ET.fromstring(request.body).findtext("recording_session_key") == other["session_key"]
    assert len(receiver.at("/mine")) == 1


async def test_a_receiver_failing_three_times_still_gets_each_event_once_by_id(
        make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    receiver.fail_first["/flaky"] = 3
    made = await make_recorder(callback_url=f"{receiver.url}/flaky", callback_format="json")
    await voice_one(made, pool, fast_settings)
    await receiver.wait("/flaky", 3 + 5)
    accepted = [r for r in receiver.at("/flaky")][3:]
    # De-duplicated by event id (as a receiver does), every event once and in order.
    by_id: dict[str, str] = {}
    for request in receiver.at("/flaky"):
        event = event_of(request)
        assert signing.verify(made.secret, request.headers, request.body)
        by_id.setdefault(event["event_id"], event["event_type"])
    assert list(by_id.values()) == SESSION_FLOW
    assert [event_of(r)["event_type"] for r in accepted] == SESSION_FLOW
    first = receiver.at("/flaky")[:4]
    assert len({event_of(r)["event_id"] for r in first}) == 1, "the first event was retried"
    assert [r.headers[signing.ATTEMPT_HEADER] for r in first] == ["1", "2", "3", "4"]


async def test_failing_endpoint_retries_then_fails_visibly_and_blocks_no_one(
        app: TestClient, make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    receiver.always_fail.add("/down")
    made = await make_recorder(callback_url=f"{receiver.url}/up", callback_format="json")
    down = await new_session(made, callback_url=f"{receiver.url}/down")
    # Another session, on a working endpoint, is delivered while /down keeps failing.
    up = await voice_one(made, pool, fast_settings)
    got = await receiver.wait("/up", 5, timeout=6)
    assert {event_of(r)["recording_session_key"] for r in got} == {up["session_key"]}
    auth = basic_auth(made.vr.dev.username, made.vr.dev.password)
    path = f"/v1/recorders/{made.key}/deliveries"
    async with asyncio.timeout(10):
        while True:
            resp = await app.get(path, params={"state": "failed"}, headers=auth)
            failed = (await resp.json())["deliveries"]
            if failed:
                break
            await asyncio.sleep(0.1)
    (row,) = failed
    assert row["event_type"] == "session.created" and row["kind"] == "callback"
    assert row["url"] == f"{receiver.url}/down" and row["last_status"] == 500
    assert row["last_error"] == "HTTP 500" and row["attempts"] >= 3
    tries = receiver.at("/down")
    assert len(tries) == row["attempts"]
    assert all(event_of(t)["recording_session_key"] == down["session_key"] for t in tries)
    # Health and metrics show the failure.
    health = await (await app.get("/healthz")).json()
    assert health["delivery"]["failed"]["callback"] >= 1
    assert health["delivery"]["worker"]["running"] is True
    metrics = await (await app.get("/metrics")).text()
    assert 'ivr_outbox_failed{kind="callback"}' in metrics
    assert 'ivr_deliveries_total{kind="callback",outcome="failed"} 1.0' in metrics
    assert 'ivr_deliveries_total{kind="callback",outcome="delivered"} 5.0' in metrics
    # Retried by hand once the endpoint works again: delivered, same event id.
    receiver.always_fail.discard("/down")
    resp = await app.post(f"{path}/{row['event_id']}/retry", headers=auth)
    assert resp.status == 202, await resp.text()
    await receiver.wait("/down", len(tries) + 1)
    last = receiver.at("/down")[-1]
    assert event_of(last)["event_id"] == row["event_id"]
    resp = await app.post(f"{path}/{row['event_id']}/retry", headers=auth)
    assert resp.status == 404
    resp = await app.post(f"{path}/not-a-uuid/retry", headers=auth)
    assert resp.status == 400 and (await resp.json())["param"] == "event_id"
    resp = await app.get(path, params={"state": "lost"}, headers=auth)
    assert resp.status == 400 and (await resp.json())["param"] == "state"


async def test_bad_callback_options_are_refused_and_write_nothing(
        make_recorder: Any, receiver: Receiver) -> None:
    made = await make_recorder()
    tree = await made.vr.fail("SetVoiceRecorder", 1003, callback_url="ftp://example.com/x")
    assert "callback_url" in tree["error_details"]
    tree = await made.vr.fail("SetVoiceRecorder", 1003, callback_secret="short")
    assert "callback_secret" in tree["error_details"]
    tree = await made.vr.fail("SetVoiceRecorder", 1003, storage="upload",
                              upload_url="http://x.example/{nope}.{ext}")
    assert "{nope}" in tree["error_details"]
    tree = await made.vr.fail("SetVoiceRecorder", 1003, upload_auth_header="no colon")
    assert "upload_auth_header" in tree["error_details"]
    lk = (await made.vr.ok("CreateRecordingList"))["recording_list"]["recording_list_key"]
    rk = (await made.vr.ok("CreateRecording", recording_list_key=lk))["recording"][
        "recording_key"]
    tree = await made.vr.fail("StartRecordingSession", 1003, recording_list_key=lk,
                              recording_keys=rk, callback_url="sftp://host/x")
    assert "callback_url" in tree["error_details"]
    v = (await made.vr.ok("GetVoiceRecorder", "json"))["voice_recorder"]
    assert "callback_url" not in v and v["callback_format"] == "xml"
    assert "callback_secret" not in v
    # ??? rotates the secret and shows the new one once.
    tree = await made.vr.ok("SetVoiceRecorder", "json", callback_secret="???")
    assert len(tree["voice_recorder"]["callback_secret"]) >= 32
    assert tree["voice_recorder"]["callback_secret"] != made.secret


async def test_deleting_a_recording_or_its_list_sends_recording_deleted_for_each(
        make_recorder: Any, receiver: Receiver, fast_settings: Settings) -> None:
    made = await make_recorder(callback_url=f"{receiver.url}/deleted", callback_format="json")
    lk = (await made.vr.ok("CreateRecordingList", "json"))["recording_list"][
        "recording_list_key"]
    keys = [(await made.vr.ok("CreateRecording", "json", recording_list_key=lk))["recording"]
            ["recording_key"] for _ in range(3)]
    await made.vr.ok("DeleteRecording", "json", recording_list_key=lk, recording_key=keys[0])
    await made.vr.ok("DeleteRecordingList", "json", recording_list_key=lk)
    got = [event_of(r) for r in await receiver.wait("/deleted", 3)]
    assert [e["event_type"] for e in got] == ["recording.deleted"] * 3
    assert [e["recording"]["recording_key"] for e in got] == keys
    assert {e["recording_list_key"] for e in got} == {lk}
