"""The voice API's answers that need no call in progress, and the VoipNow StartRecording form:
authentication, validation, the seed's error codes, and applications leaving no half state."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web

from ivr.callcontrol.service import CallControl
from ivr.callcontrol.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from ivr.core.errors import Conflict, InvalidParameter
from ivr.delivery.signing import ATTEMPT_HEADER, EVENT_ID_HEADER
from ivr.settings import REPO_ROOT, Settings
from ivr.telephony.call import Call
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


async def test_authentication_and_validation_errors(new_app: NewApp) -> None:
    app = await new_app()
    for headers in ({}, {"Authorization": "Basic bm9wZQ=="},
                    {"Authorization": "Basic " + "eHh4eHh4eHg6d3Jvbmc="},
                    {"Authorization": f"Bearer {app.creds.app_id}"},
                    {"Authorization": f"Bearer {app.creds.app_id}.wrong-key"}):
        status, body = await app.request("POST", "/voice/v1/call", {}, headers=headers)
        # The seed writes `state` in some error examples and `status` in others: both.
        assert (status, body["result"], body["state"], body["status"]) == (
            401, 401, "failed", "failed"), headers
    bearer = {"Authorization": f"Bearer {app.creds.app_id}.{app.creds.app_key}"}
    status, body = await app.request("POST", "/voice/v1/call", {}, headers=bearer)
    assert (status, body["param"]) == (400, "from")  # authenticated: the body is judged
    wrong_key = dict(app.headers)
    other = await new_app()
    wrong_key["Authorization"] = other.headers["Authorization"][:-4] + "AAA="
    status, _ = await app.request("GET", f"/voice/v1/call/{uuid.uuid4()}", headers=wrong_key)
    assert status == 401

    cases = [
        ({"from": app.number}, 400, "to"),
        ({"to": "123"}, 400, "from"),
        ({"from": app.number, "to": "not a number"}, 400, "to"),
        ({"from": app.number, "to": "123", "colour": "red"}, 400, "colour"),
        ({"from": app.number, "to": "123", "timeout": 0}, 400, "timeout"),
        ({"from": app.number, "to": "123", "action_on_connect": {"play": {}}}, 400,
         "prompt_name"),
    ]
    for body, status_expected, param in cases:
        status, got = await app.request("POST", "/voice/v1/call", body)
        assert (status, got["param"], got["state"]) == (status_expected, param, "failed"), body
    resp = await app.client.post("/voice/v1/call", data=b"{not json", headers=app.headers)
    assert resp.status == 400 and (await resp.json())["result"] == 400

    # `from` must be the application's own number: another application's number has no
    # service of this one (6110); a number no application has is not found (6118).
    status, got = await app.request("POST", "/voice/v1/call", {"from": other.number, "to": "12"})
    assert (status, got["result"], got["msg"], got["status"]) == (
        404, 6110, "Application Not Found", "failed")
    status, got = await app.request("POST", "/voice/v1/call", {"from": "5550009", "to": "12"})
    assert (status, got["result"], got["state"]) == (404, 6118, "failed")
    assert got["msg"] == "Phone number not found for the service"

    # The seed's routes end in a slash (`.../call/$voiceId/`): the same answers with it.
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/"), ("DELETE", "/"),
                         ("POST", "/accept"), ("PUT", "/play"), ("PUT", "/connect/"),
                         ("PUT", "/recording")):
        for vid in (str(uuid.uuid4()), "not-a-uuid"):
            status, got = await app.request(method, f"/voice/v1/call/{vid}{path}",
                                            {"prompt_name": "beep"})
            assert (status, got["result"], got["msg"]) == (404, 404, "Call not found")
    status, got = await app.request("GET", f"/voice/v1/recording/{uuid.uuid4()}")
    assert (status, got["result"], got["msg"]) == (404, 404, "Recording File Not Found")


async def _plays(webhooks: Webhooks, vid: str, count: int) -> list[dict[str, Any]]:
    """The call's first `count` play events, once they have come."""
    def plays() -> list[dict[str, Any]]:
        return [e for e in webhooks.of(vid) if "playstate" in e]

    await webhooks.wait_until(lambda: len(plays()) >= count, 20,
                              lambda: f"{len(plays())} play events: {plays()}")
    return plays()


async def test_play_and_recording_errors_on_a_live_call(
    new_app: NewApp, caller: Caller, webhooks: Webhooks, stored_recordings: list[str]
) -> None:
    app = await new_app()
    dialing = asyncio.create_task(caller.dial(app.number))
    vid = (await webhooks.wait_first_for_number(app.number))["voice_id"]
    base = f"/voice/v1/call/{vid}"
    await app.request("POST", f"{base}/accept")
    leg = await dialing
    # Another application cannot see the call.
    other = await new_app()
    status, _ = await other.request("GET", base)
    assert status == 404

    status, got = await app.request("PUT", f"{base}/play",
                                    {"text": "hello", "language": "en-US", "voice": "robot"})
    assert (status, got["result"], got["voice_id"]) == (406, 6117, vid)
    # A language espeak-ng has no voice for is the seed's 406 / 6117, naming the language; a
    # value that is no language tag at all is a 400.
    status, got = await app.request("PUT", f"{base}/play",
                                    {"text": "hello", "language": "xx-XX", "voice": "male"})
    assert (status, got["result"], got["param"], got["status"]) == (
        406, 6117, "language", "failed")
    assert "xx-XX" in got["details"]
    status, got = await app.request("PUT", f"{base}/play",
                                    {"text": "hello", "language": "english!", "voice": "male"})
    assert (status, got["result"], got["param"]) == (400, 400, "language")
    # A prompt name that is neither a prompt nor an Asterisk sound: refused there and then.
    status, got = await app.request("PUT", f"{base}/play", {"prompt_name": "no-such-prompt"})
    assert (status, got["result"], got["msg"], got["status"], got["param"]) == (
        400, 400, "Media Request Failed", "failed", "prompt_name")
    assert got["voice_id"] == vid
    status, got = await app.request("GET", f"{base}/")
    assert (status, got["state"], got["voice_id"]) == (200, "connected", vid)
    status, got = await app.request("PUT", f"{base}/play",
                                    {"text": "   ", "language": "en-US", "voice": "female"})
    assert (status, got["result"], got["msg"]) == (
        503, 6107, "Error doing text to speech conversion")
    # Text-to-speech that works: synthesized, fetched by Asterisk over HTTP, played.
    status, got = await app.request("PUT", f"{base}/play", {
        "text": "Your call is important to us.", "language": "en-US", "voice": "female",
        "prompt_ref": "tts"})
    assert status == 200, got
    spoken = await webhooks.wait(vid, "playfinished")
    assert (spoken["play_id"], spoken["prompt_ref"]) == (got["play_id"], "tts")
    # The seed's own example language, in another spelling of the voice.
    status, got = await app.request("PUT", f"{base}/play", {
        "text": "Gracias por llamar.", "language": "es-US", "voice": "Female",
        "prompt_ref": "es"})
    assert status == 200, got
    spoken = [e for e in await _plays(webhooks, vid, 2) if e.get("prompt_ref") == "es"]
    assert spoken[0]["play_id"] == got["play_id"]
    assert [e["playstate"] for e in webhooks.of(vid) if "playstate" in e] == [
        "playfinished", "playfinished"]  # the refused plays played nothing
    status, got = await app.request("PUT", f"{base}/play", {"url": "ftp://x/y.wav"})
    assert (status, got["param"]) == (400, "url")
    status, got = await app.request("PUT", f"{base}/play",
                                    {"prompt_name": "beep", "text": "both"})
    assert (status, got["param"]) == (400, "prompt_name")
    status, got = await app.request("PUT", f"{base}/hold", {"hold": "yes"})
    assert (status, got["param"]) == (400, "hold")
    for body, param in (({"start": True, "format": "ogg"}, "format"),
                        ({"start": True, "stop": True}, "start"),
                        ({"start": True, "recording_name": "a/b"}, "recording_name")):
        status, got = await app.request("PUT", f"{base}/recording", body)
        assert (status, got["param"]) == (400, param)
    status, got = await app.request("PUT", f"{base}/recording", {"stop": True})
    assert (status, got["msg"]) == (409, "Call is not recording")

    # VoipNow's form: its error codes, then a recording of the (unbridged) call in wav49.
    path = f"/uapi/phoneCalls/@me/{app.number}/{vid}"
    for url, body, code in (
        (f"/uapi/phoneCalls/@me/{app.number}/{uuid.uuid4()}",
         {"action": "StartRecording", "phoneCallViewId": "01"}, "pc_phonecall_invalid"),
        (f"/uapi/phoneCalls/@me/5550000/{vid}",
         {"action": "StartRecording", "phoneCallViewId": "01"}, "pc_phonecall_invalid"),
        (path, {"action": "StartRecording", "format": "ogg", "phoneCallViewId": "01"},
         "pc_recformat_invalid"),
        (path, {"action": "StartRecording"}, "pc_phonecallview_invalid"),
        (path, {"action": "StartRecording", "phoneCallViewId": "02"},
         "pc_phonecallview_invalid"),
    ):
        status, got = await app.request("PUT", url, body)
        assert (status, got["error"]["code"]) == (400, code), (url, body)
    # The seed's singular path, with a bearer token in the header its example names.
    singular = {"Authentication": f"Bearer {app.creds.app_id}.{app.creds.app_key}"}
    status, got = await app.request("PUT", f"/uapi/phoneCall/@me/{app.number}/{vid}",
                                    {"action": "StartRecording", "format": "wav49",
                                     "phoneCallViewId": "01"}, headers=singular)
    assert status == 200, got
    assert (got["id"], got["phoneCallView"][0]["id"]) == (vid, "01")
    view = got["phoneCallView"][0]
    published, answered = (datetime.fromisoformat(got[k]) for k in ("published", "answered"))
    recording = datetime.fromisoformat(view["recording"])
    assert published <= answered <= recording and published.utcoffset() is not None
    assert view["answered"] == got["answered"]
    assert got["link"]["self"].endswith(f"/uapi/phoneCalls/@me/{app.number}/{vid}")
    started = await webhooks.wait(vid, "started")
    stored_recordings.append("cc-" + started["recording_id"].replace("-", ""))
    status, got = await app.request("PUT", path, {"action": "StartRecording",
                                                  "phoneCallViewId": "01"})
    assert status == 408
    await leg.say("speech-short.wav")
    await app.request("PUT", f"{base}/recording", {"stop": True})
    await webhooks.wait(vid, "completed")
    resp = await app.client.get(f"/voice/v1/recording/{started['recording_id']}",
                                headers=app.headers)
    audio = await resp.read()
    assert resp.status == 200 and audio[:4] == b"RIFF" and audio[20:22] == b"\x31\x00"  # GSM
    status, _ = await other.request("GET", f"/voice/v1/recording/{started['recording_id']}")
    assert status == 404
    # mp3: recorded as WAV, encoded when fetched.
    status, got = await app.request("PUT", f"{base}/recording",
                                    {"start": True, "format": "mp3", "recording_name": vid})
    assert status == 200, got
    stored_recordings.append("cc-" + got["recording_id"].replace("-", ""))
    await leg.say("speech-short.wav")
    await app.request("PUT", f"{base}/recording", {"stop": True})
    done = [e for e in webhooks.of(vid) if e.get("state") == "completed"]
    for _ in range(50):
        done = [e for e in webhooks.of(vid) if e.get("state") == "completed"]
        if len(done) == 2:
            break
        await asyncio.sleep(0.1)
    assert done[1]["recording_id"] == got["recording_id"]
    resp = await app.client.get(f"/voice/v1/recording/{got['recording_id']}",
                                headers=app.headers)
    mp3 = await resp.read()
    assert resp.status == 200 and resp.content_type == "audio/mpeg"
    assert mp3[:3] == b"ID3" or mp3[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
    await leg.hangup()
    await webhooks.wait(vid, "disconnected")


async def test_action_on_connect_is_judged_before_anything_is_dialled(
    new_app: NewApp, pool: asyncpg.Pool
) -> None:
    app = await new_app()
    other = await new_app()
    bridge = {"from": app.number, "to": "5550010"}
    cases = [
        ({"play": {"prompt_name": "beep"}, "bridge": bridge}, 400, 400, "action_on_connect"),
        ({}, 400, 400, "action_on_connect"),
        ({"connect": "yes"}, 400, 400, "action_on_connect"),
        ({"bridge": True}, 400, 400, "action_on_connect"),
        ({"bridge": {"from": app.number}}, 400, 400, "to"),
        ({"connect": {**bridge, "colour": "red"}}, 400, 400, "colour"),
        ({"bridge": bridge, "start_timeout": 5}, 400, 400, "start_timeout"),
        ({"bridge": {**bridge, "from": other.number}}, 404, 6110, None),
        ({"bridge": {**bridge, "from": "5550009"}}, 404, 6118, None),
        ({"play": {"prompt_name": "no-such-prompt"}}, 400, 400, "prompt_name"),
        ({"play": {"text": "hi", "language": "xx-XX", "voice": "male"}}, 406, 6117, "language"),
    ]
    for action, status_expected, result, param in cases:
        status, got = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": "5550010", "action_on_connect": action})
        assert (status, got["result"], got.get("param")) == (status_expected, result, param), (
            action, got)
    assert await pool.fetchval(
        "SELECT count(*) FROM cc_calls c JOIN cc_applications a ON a.id = c.application_id"
        " WHERE a.app_id = $1", app.creds.app_id) == 0


async def test_applications_leave_no_half_state(control: CallControl, pool: asyncpg.Pool,
                                                new_app: NewApp) -> None:
    app = await new_app()
    before = await pool.fetchval("SELECT count(*) FROM cc_applications")
    with pytest.raises(Conflict):
        await control.create_application(webhook_url="http://127.0.0.1:1/h",
                                         numbers=["5551212", app.number])
    with pytest.raises(InvalidParameter):
        await control.create_application(webhook_url="ftp://x", numbers=["5551213"])
    assert await pool.fetchval("SELECT count(*) FROM cc_applications") == before
    assert await pool.fetchval("SELECT count(*) FROM cc_numbers WHERE number = '5551212'") == 0
    stored = await pool.fetchval("SELECT app_key_hash FROM cc_applications WHERE app_id = $1",
                                 app.creds.app_id)
    assert stored.startswith("$argon2id$") and app.creds.app_key not in stored


async def test_webhooks_go_through_the_outbox_signed_in_order_and_retried(
    new_app: NewApp, engine: Engine, pool: asyncpg.Pool
) -> None:
    """A receiver that fails each event's first attempt: the delivery worker retries it
    (same event id, next attempt), and the call's next event waits for it: order holds."""
    app = await new_app()
    secret = app.creds.webhook_secret
    seen: list[tuple[str, str, str, int]] = []  # (event_id, state, attempt header, status)
    done = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(secret, request.headers, body)
        assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
        event = orjson.loads(body)
        assert request.headers[EVENT_ID_HEADER] == event["event_id"]
        first = all(e[0] != event["event_id"] for e in seen)
        status = 503 if first else 200
        seen.append((event["event_id"], event["state"], request.headers[ATTEMPT_HEADER], status))
        if event["state"] == "disconnected" and status == 200:
            done.set()
        return web.Response(status=status)

    receiver = web.Application()
    receiver.router.add_post("/h", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def busy(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.hangup("busy")

    try:
        status, body = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": engine.routes.add(busy), "timeout": 5,
            "event_url": f"http://127.0.0.1:{port}/h"})
        assert status == 200, body
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await runner.cleanup()
    assert [(state, attempt, status) for _, state, attempt, status in seen] == [
        ("ringing", "1", 503), ("ringing", "2", 200),
        ("disconnected", "1", 503), ("disconnected", "2", 200)]
    expected = [("voice.ringing", "delivered", 2), ("voice.disconnected", "delivered", 2)]
    for _ in range(50):  # the worker settles the row just after the receiver's answer
        rows = await pool.fetch("SELECT event_type, state, attempts FROM outbox"
                                " WHERE stream = $1 ORDER BY id", f"voicecall:{body['voice_id']}")
        if [tuple(r) for r in rows] == expected:
            break
        await asyncio.sleep(0.1)
    assert [tuple(r) for r in rows] == expected
    assert not verify("s" * 32, {TIMESTAMP_HEADER: "1", SIGNATURE_HEADER: "sha256=00"}, b"{}")


_CLI = """
import argparse, sys
from ivr.callcontrol import cli
from ivr.core.errors import IvrError
from ivr.settings import Settings
parser = argparse.ArgumentParser(prog="ivr")
cli.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.func(Settings.load(), args))
except IvrError as exc:
    print(f"ivr: {exc.message}", file=sys.stderr)
    sys.exit(1)
"""


async def test_operator_creates_an_application_from_the_command_line(
    settings: Settings, control: CallControl
) -> None:
    env = {**os.environ, "IVR_DATABASE_URL": settings.database_url}
    # `ivr voiceapp ...` as ivr/cli.py registers it, without importing the other features.
    ivr = [sys.executable, "-c", _CLI]
    made = await asyncio.to_thread(
        subprocess.run, [*ivr, "voiceapp", "create", "--webhook", "https://example.test/hook",
                         "--number", "5556001", "--number", "5556002",
                         "--shared-number", "5556003"],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert made.returncode == 0, made.stderr
    fields = dict(line.strip().split(":  ", 1) for line in made.stdout.splitlines()
                  if ":  " in line)
    app = await control.authenticate(fields["app id"].strip(), fields["app key"].strip())
    assert app.numbers == ("5556001", "5556002", "5556003")
    pin = fields["PIN on 5556003"].strip()
    assert len(pin) == 6 and pin.isdigit()
    refused = await asyncio.to_thread(
        subprocess.run, [*ivr, "voiceapp", "create", "--webhook", "https://example.test/hook",
                         "--number", "5556002"],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert refused.returncode == 1
    assert "already routed to another application" in refused.stderr


async def test_a_call_left_open_by_a_dead_process_is_closed_when_asked_for(
    new_app: NewApp, pool: asyncpg.Pool
) -> None:
    app = await new_app()
    vid = uuid.uuid4()
    await pool.execute(
        """INSERT INTO cc_calls (voice_id, application_id, direction, from_number, to_number,
               channel_id, state)
           SELECT $1, id, 'inbound', '5550400', $2, $3, 'connected' FROM cc_applications
           WHERE app_id = $4""", vid, app.number, f"gone-{vid.hex}", app.creds.app_id)
    status, got = await app.request("DELETE", f"/voice/v1/call/{vid}")
    assert (status, got["msg"], got["voice_id"]) == (409, "Call is already disconnected", str(vid))
    row = await pool.fetchrow("SELECT state, cause, ended_at FROM cc_calls WHERE voice_id = $1",
                              vid)
    assert (row["state"], row["cause"]) == ("disconnected", "lost") and row["ended_at"]
    status, got = await app.request("GET", f"/voice/v1/call/{vid}")
    assert (status, got["state"], got["cause"]) == (200, "disconnected", "lost")
