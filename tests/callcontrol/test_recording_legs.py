"""On-demand recordings of legs Asterisk holds in a bridge of its own: an outbound call's leg
(a dialled channel sits in Stasis's invisible dial bridge for life) and an inbound leg waiting
in its bridge while the second leg rings. Each records what it should, through both API forms,
and a request answers what then happens: no `started` followed at once by `failed`."""

from __future__ import annotations

import asyncio

import pytest

from ivr.telephony.call import Call
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.helpers.audio import loudness
from tests.telephony_harness import Caller, Engine, wav_seconds

pytestmark = pytest.mark.asterisk


def recording_states(webhooks: Webhooks, vid: str) -> list[str]:
    return [e["state"] for e in webhooks.of(vid) if "recording_id" in e]


async def wait_recording_events(webhooks: Webhooks, vid: str, count: int) -> list[str]:
    await webhooks.wait_until(lambda: len(recording_states(webhooks, vid)) >= count, 15,
                              lambda: f"recording events of {vid}: "
                                      f"{recording_states(webhooks, vid)}")
    return recording_states(webhooks, vid)


async def test_an_outbound_calls_own_leg_is_recorded(
    new_app: NewApp, webhooks: Webhooks, stored_recordings: list[str]
) -> None:
    caller_app, called_app = await new_app(), await new_app()
    status, body = await caller_app.request("POST", "/voice/v1/call", {
        "from": caller_app.number, "to": called_app.number, "timeout": 10})
    assert status == 200, body
    vid = body["voice_id"]
    incoming = await webhooks.wait_first_for_number(called_app.number)
    other = incoming["voice_id"]
    status, _ = await called_app.request("POST", f"/voice/v1/call/{other}/accept")
    assert status == 200
    await webhooks.wait(vid, "connected")
    base = f"/voice/v1/call/{vid}"

    status, got = await caller_app.request("PUT", f"{base}/recording", {"start": True})
    assert status == 200, got
    recording_id = got["recording_id"]
    stored_recordings.append("cc-" + recording_id.replace("-", ""))
    status, again = await caller_app.request("PUT", f"{base}/recording", {"start": True})
    assert (status, again["msg"]) == (408, "Call is already recording")
    # The called party speaks: what the outbound leg hears from its far end.
    status, got = await called_app.request("PUT", f"/voice/v1/call/{other}/play", {
        "text": "Hello, this is Sam.", "language": "en-US", "voice": "female"})
    assert status == 200, got
    await webhooks.wait(other, "playfinished")
    status, got = await caller_app.request("PUT", f"{base}/recording", {"stop": True})
    assert (status, got["recording_id"]) == (200, recording_id)
    assert await wait_recording_events(webhooks, vid, 2) == ["started", "completed"]
    resp = await caller_app.client.get(f"/voice/v1/recording/{recording_id}",
                                       headers=caller_app.headers)
    assert resp.status == 200 and resp.content_type == "audio/wav"
    audio = await resp.read()
    seconds = wav_seconds(audio)
    assert seconds > 1.0, seconds
    assert loudness(audio, 0, seconds) > 300

    # VoipNow's StartRecording on the same leg.
    path = f"/uapi/phoneCalls/@me/{caller_app.number}/{vid}"
    status, got = await caller_app.request("PUT", path, {"action": "StartRecording",
                                                         "phoneCallViewId": "01"})
    assert status == 200, got
    await called_app.request("PUT", f"/voice/v1/call/{other}/play", {
        "text": "Hello again.", "language": "en-US", "voice": "female"})
    await webhooks.wait_until(
        lambda: len([e for e in webhooks.of(other) if e.get("playstate") == "playfinished"])
        == 2, 15, lambda: "the second prompt did not finish")
    status, got = await caller_app.request("PUT", f"{base}/recording", {"stop": True})
    assert status == 200, got
    stored_recordings.append("cc-" + got["recording_id"].replace("-", ""))
    assert await wait_recording_events(webhooks, vid, 4) == [
        "started", "completed", "started", "completed"]
    await caller_app.request("DELETE", base)
    await webhooks.wait(vid, "disconnected")
    assert recording_states(webhooks, vid) == ["started", "completed", "started", "completed"]


async def test_a_leg_waiting_in_its_bridge_records_the_bridge(
    new_app: NewApp, caller: Caller, engine: Engine, webhooks: Webhooks,
    stored_recordings: list[str],
) -> None:
    """While `connect` rings the second leg, the call's leg is in the call's bridge already:
    the bridge is recorded (the caller now, both once the agent answers)."""
    app = await new_app()
    answer = asyncio.Event()

    async def agent(call: Call) -> None:
        await call.ari.ring(call.id)
        await answer.wait()
        await call.answer()
        await call.wait_gone(20)

    dialing = asyncio.create_task(caller.dial(app.number))
    vid = (await webhooks.wait_first_for_number(app.number))["voice_id"]
    base = f"/voice/v1/call/{vid}"
    await app.request("POST", f"{base}/accept")
    leg = await dialing
    status, got = await app.request("PUT", f"{base}/connect", {
        "from": app.number, "to": engine.routes.add(agent)})
    assert status == 200, got
    await webhooks.wait(vid, "bridging")
    status, got = await app.request("PUT", f"{base}/recording", {"start": True})
    assert status == 200, got
    stored_recordings.append("cc-" + got["recording_id"].replace("-", ""))
    await leg.say("speech-short.wav")
    answer.set()
    await webhooks.wait(vid, "bridged")
    status, got = await app.request("PUT", f"{base}/recording", {"stop": True})
    assert status == 200, got
    assert await wait_recording_events(webhooks, vid, 2) == ["started", "completed"]
    resp = await app.client.get(f"/voice/v1/recording/{got['recording_id']}",
                                headers=app.headers)
    audio = await resp.read()
    assert resp.status == 200
    assert loudness(audio, 0, wav_seconds(audio)) > 300
    await leg.hangup()
    await webhooks.wait(vid, "disconnected")
