"""An inbound call accepted and bridged to a second leg (dialled over the SIP loopback trunk):
bridge events, 405 on play, DTMF events, a mixed recording holding both voices, hold with music,
transfer, forward, and the 409s when nothing is bridged."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from ivr.telephony.call import Call
from ivr.telephony.events import Event
from ivr.telephony.rest import AriClient
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.helpers.audio import loudness
from tests.telephony_harness import CALLER_APP, Caller, Engine, wav_seconds

pytestmark = pytest.mark.asterisk


async def hear(caller: Caller, ari: AriClient, channel_id: str, name: str,
               stored: list[str], seconds: int = 2) -> bytes:
    """What a channel sends (what its caller hears), through a snoop channel in the caller
    harness's app."""
    snoop_id = f"snoop-{secrets.token_hex(6)}"
    snoop = Call(ari, {"id": snoop_id}, [])
    started = asyncio.get_running_loop().create_future()

    def sink(event: Event) -> None:
        if event["type"] == "StasisStart" and not started.done():
            started.set_result(None)
        snoop.feed(event)

    caller.router.register(snoop_id, sink)
    try:
        await ari.snoop(channel_id, snoop_id, app=CALLER_APP, spy="out")
        await asyncio.wait_for(started, 5)
        take = await snoop.record(name, max_duration=seconds, terminate_on="none")
        stored.append(take.name)
        return await ari.stored_recording_file(take.name)
    finally:
        await snoop.hangup()
        caller.router.unregister(snoop_id)


async def test_bridge_record_both_voices_hold_transfer(
    new_app: NewApp, caller: Caller, engine: Engine, webhooks: Webhooks, ari: AriClient,
    stored_recordings: list[str],
) -> None:
    app = await new_app()
    callee_speaks = asyncio.Event()
    agent_digits: list[str] = []
    agent_caller_ids: list[str] = []

    async def agent(call: Call) -> None:
        agent_caller_ids.append(call.caller_id)
        await call.answer()
        await callee_speaks.wait()
        await call.play(f"sound:{caller.media_url}/speech-short.wav")
        await call.send_dtmf("5")
        await call.wait_gone(30)

    async def second_agent(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.answer()
        agent_digits.append(await call.collect_digits(1, timeout=10))
        await call.wait_gone(30)

    agent_number = engine.routes.add(agent)
    second_number = engine.routes.add(second_agent)

    dialing = asyncio.create_task(caller.dial(app.number, caller_id="5550200"))
    vid = (await webhooks.wait_first_for_number(app.number))["voice_id"]
    base = f"/voice/v1/call/{vid}"

    # Nothing is bridged yet: transfer, forward and hold answer 409.
    await app.request("POST", f"{base}/accept")
    leg = await dialing
    for path, body in (("transfer", {"from": app.number, "transfer_to": second_number}),
                       ("forward", {"from": app.number, "to": second_number}),
                       ("hold", {"hold": True})):
        method = "POST" if path == "hold" else "PUT"
        status, err = await app.request(method, f"{base}/{path}", body)
        assert (status, err["msg"], err["state"]) == (409, "Call is not bridged yet", "failed")
    # `from` must be one of the application's numbers.
    status, err = await app.request("PUT", f"{base}/connect", {"from": "5559999",
                                                               "to": agent_number})
    assert (status, err["result"]) == (404, 6118)

    status, body = await app.request("PUT", f"{base}/connect",
                                     {"from": app.number, "to": agent_number})
    assert (status, body["state"]) == (200, "initiated")
    bridged = await webhooks.wait(vid, "bridged")
    assert bridged["to"] == agent_number
    assert agent_caller_ids == [app.number]  # `from`, carried over the loopback trunk

    status, err = await app.request("PUT", f"{base}/play", {"prompt_name": "beep"})
    assert (status, err["result"], err["msg"]) == (
        405, 6112, "Call is in bridged mode, can't play media")

    # Record the bridge: the caller speaks, then the agent; both are in the mixed file.
    status, body = await app.request("PUT", f"{base}/recording",
                                     {"start": True, "recording_name": f"both-{vid}"})
    assert status == 200, body
    recording_id = body["recording_id"]
    status, err = await app.request("PUT", f"{base}/recording", {"start": True})
    assert (status, err["result"], err["msg"]) == (408, 408, "Call is already recording")
    await webhooks.wait(vid, "started")
    await leg.say("speech-short.wav")
    callee_speaks.set()
    dtmf = await webhooks.wait(vid, "dtmfcollected", timeout=10)
    assert dtmf["digit"] == "5"
    await asyncio.sleep(0.3)
    await leg.press("7")
    status, body = await app.request("PUT", f"{base}/recording", {"stop": True})
    assert (status, body["recording_id"]) == (200, recording_id)
    await webhooks.wait(vid, "completed")
    resp = await app.client.get(f"/voice/v1/recording/{recording_id}", headers=app.headers)
    assert resp.status == 200 and resp.content_type == "audio/wav"
    audio = await resp.read()
    stored_recordings.append(f"cc-{recording_id.replace('-', '')}")
    seconds = wav_seconds(audio)
    assert seconds > 2.5, seconds
    # speech-short is ~1.3 s: the caller's take fills the start, the agent's the next part.
    caller_part, agent_part = loudness(audio, 0.1, 1.1), loudness(audio, 1.7, 2.6)
    assert caller_part > 300 and agent_part > 300, (caller_part, agent_part)
    status, err = await app.request("PUT", f"{base}/recording",
                                    {"start": True, "recording_name": f"both-{vid}"})
    assert (status, err["result"]) == (409, 409)
    for _ in range(50):
        keyed = {e["digit"] for e in webhooks.of(vid) if e.get("state") == "dtmfcollected"}
        if keyed == {"5", "7"}:
            break
        await asyncio.sleep(0.1)
    assert keyed == {"5", "7"}, "digits from both legs are reported while bridged"

    # Hold: the caller hears music, then the conversation again.
    status, state = await app.request("GET", base)
    assert (status, state["state"], state["bridged"]) == (200, "connected", True)
    status, body = await app.request("POST", f"{base}/hold", {"hold": True})
    assert (status, body["hold"]) == (200, True)
    music = await hear(caller, ari, state["channel_id"], f"held-{vid}", stored_recordings)
    status, body = await app.request("POST", f"{base}/hold", {"hold": False})
    assert (status, body["hold"]) == (200, False)
    quiet = await hear(caller, ari, state["channel_id"], f"unheld-{vid}", stored_recordings)
    held_level, bridged_level = loudness(music, 0.2, 1.8), loudness(quiet, 0.2, 1.8)
    assert held_level > 100 and held_level > 5 * bridged_level, (held_level, bridged_level)

    # Transfer to a second agent: the first is released once the second answers.
    status, body = await app.request("PUT", f"{base}/transfer",
                                     {"from": app.number, "transfer_to": second_number})
    assert (status, body["status"]) == (200, "initiated")
    for _ in range(50):
        if [e["to"] for e in webhooks.of(vid) if e.get("state") == "bridged"] == [
                agent_number, second_number]:
            break
        await asyncio.sleep(0.1)
    await leg.press("3")
    await asyncio.sleep(0.5)
    assert agent_digits == ["3"]
    await leg.hangup()
    gone = await webhooks.wait(vid, "disconnected")
    assert gone["cause"] == "normal"
    states = webhooks.states(vid)
    assert states[:3] == ["incomingcall", "connected", "bridged"]
    assert states.count("bridged") == 2 and "bridge_failed" not in states
