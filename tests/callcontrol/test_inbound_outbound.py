"""Real calls under call control: inbound accepted or dropped, prompts and menus, outbound
answered / busy / not answered, hangup and call state."""

from __future__ import annotations

import asyncio

import pytest

from ivr.telephony.call import Call
from ivr.telephony.rest import AriClient
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


async def test_inbound_accept_menu_and_hangup(
    new_app: NewApp, caller: Caller, webhooks: Webhooks
) -> None:
    app = await new_app()
    dialing = asyncio.create_task(caller.dial(app.number, caller_id="5550100"))
    incoming = await webhooks.wait_first_for_number(app.number)
    vid = incoming["voice_id"]
    assert incoming["from"] == "5550100" and incoming["to"] == app.number
    status, state = await app.request("GET", f"/voice/v1/call/{vid}")
    assert (status, state["state"], state["direction"]) == (200, "In progress", "Inbound")
    # A play before the call is answered is refused.
    status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play",
                                      {"prompt_name": "beep"})
    assert (status, body["result"], body["state"]) == (409, 409, "failed")

    status, body = await app.request("POST", f"/voice/v1/call/{vid}/accept")
    assert (status, body) == (200, {"voice_id": vid, "status": "success",
                                    "timestamp": body["timestamp"]})
    leg = await dialing
    await webhooks.wait(vid, "connected")

    # A menu: the caller keys 42#.
    status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play", {
        "prompt_name": "beep", "dtmf": True, "prompt_ref": "menu-1", "menu_timeout": 5})
    assert status == 200 and body["playstate"] == "initiated"
    play_id = body["play_id"]
    status, pending = await app.request("PUT", f"/voice/v1/call/{vid}/play",
                                        {"prompt_name": "beep"})
    assert (status, pending["result"], pending["voice_id"]) == (408, 6114, vid)
    status, state = await app.request("GET", f"/voice/v1/call/{vid}")
    assert state["state"] == "IVR"
    await leg.press("42#")
    got = await webhooks.wait(vid, "digitcollected")
    assert (got["digit"], got["play_id"], got["prompt_ref"]) == ("42", play_id, "menu-1")

    # A menu nobody answers times out; a plain prompt finishes; a missing prompt is refused
    # at once; audio that cannot be fetched fails as it plays.
    await app.request("PUT", f"/voice/v1/call/{vid}/play",
                      {"prompt_name": "beep", "dtmf": True, "menu_timeout": 1})
    await webhooks.wait(vid, "menutimeout")
    await app.request("PUT", f"/voice/v1/call/{vid}/play", {"prompt_name": "beep"})
    await webhooks.wait(vid, "playfinished")
    status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play",
                                      {"prompt_name": "no-such-prompt"})
    assert (status, body["msg"]) == (400, "Media Request Failed")
    await app.request("PUT", f"/voice/v1/call/{vid}/play",
                      {"url": "http://127.0.0.1:9/no-such-audio.wav"})
    await webhooks.wait(vid, "failed")

    status, body = await app.request("DELETE", f"/voice/v1/call/{vid}")
    assert (status, body["state"], body["voice_id"]) == (200, "success", vid)
    gone = await webhooks.wait(vid, "disconnected")
    assert gone["cause"] == "hangup requested"
    assert await leg.wait_hangup(5)
    status, state = await app.request("GET", f"/voice/v1/call/{vid}")
    assert (status, state["state"]) == (200, "disconnected")
    status, body = await app.request("DELETE", f"/voice/v1/call/{vid}")
    assert (status, body["msg"]) == (409, "Call is already disconnected")
    assert webhooks.states(vid) == [
        "incomingcall", "connected", "digitcollected", "menutimeout", "playfinished",
        "failed", "disconnected"]
    assert webhooks.bad_signatures == 0


async def test_inbound_not_accepted_is_dropped_and_greeting_answers(
    new_app: NewApp, caller: Caller, webhooks: Webhooks, engine: Engine, ari: AriClient
) -> None:
    silent = await new_app(accept_timeout=1)
    greeted = await new_app(greeting="beep")

    async def unanswered() -> None:
        with pytest.raises(AssertionError):
            await caller.dial(silent.number, timeout=6)

    async def greeting() -> None:
        leg = await caller.dial(greeted.number, caller_id="5550101")
        event = await webhooks.wait_first_for_number(greeted.number)
        status, _ = await greeted.request("POST",
                                             f"/voice/v1/call/{event['voice_id']}/accept")
        assert status == 200  # already answered by the greeting: accepting changes nothing
        await leg.hangup()
        gone = await webhooks.wait(event["voice_id"], "disconnected")
        assert gone["cause"] == "normal"

    async def caller_gives_up() -> None:
        dialing = asyncio.create_task(caller.dial(patient.number, timeout=20))
        ringing = await webhooks.wait_first_for_number(patient.number)
        started = asyncio.get_running_loop().time()
        for channel in await ari.list_channels():
            if channel["name"].startswith(f"Local/{patient.number}@") and \
                    channel["name"].endswith(";1"):
                await ari.hangup(channel["id"])
        gone = await webhooks.wait(ringing["voice_id"], "disconnected", timeout=5)
        assert asyncio.get_running_loop().time() - started < 3, "not the accept timeout"
        assert gone["cause"] == "normal"
        with pytest.raises(AssertionError):
            await dialing

    patient = await new_app(accept_timeout=20)
    await asyncio.gather(unanswered(), greeting(), caller_gives_up())
    dropped = await webhooks.wait_first_for_number(silent.number)
    gone = await webhooks.wait(dropped["voice_id"], "disconnected")
    assert gone["cause"] == "not accepted"
    assert webhooks.states(dropped["voice_id"]) == ["incomingcall", "disconnected"]


async def test_outbound_answered_busy_and_not_answered(
    new_app: NewApp, engine: Engine, webhooks: Webhooks
) -> None:
    app = await new_app()
    heard: dict[str, str] = {}

    async def answers(call: Call) -> None:
        heard["caller_id"] = call.caller_id
        await call.ari.ring(call.id)
        await asyncio.sleep(0.3)
        await call.answer()
        await call.wait_gone(8)  # the engine's prompt plays; the test hangs up

    async def busy(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.3)
        await call.hangup("busy")

    async def rings(call: Call) -> None:
        await call.ari.ring(call.id)
        await call.wait_gone(10)

    numbers = [engine.routes.add(f) for f in (answers, busy, rings)]

    async def place(to: str, **extra: object) -> str:
        status, body = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": to, "owner_ref": f"ref-{to}", "timeout": 3, **extra})
        assert status == 200, body
        assert (body["state"], body["owner_ref"]) == ("initiated", f"ref-{to}")
        return str(body["voice_id"])

    answered, refused, unanswered = await asyncio.gather(
        place(numbers[0], action_on_connect={"play": {"prompt_name": "beep"}}),
        place(numbers[1]), place(numbers[2]))
    await webhooks.wait(answered, "playfinished")
    status, state = await app.request("GET", f"/voice/v1/call/{answered}")
    assert (status, state["state"], state["direction"]) == (200, "connected", "Outbound")
    await app.request("DELETE", f"/voice/v1/call/{answered}")
    results = await asyncio.gather(*(webhooks.wait(v, "disconnected")
                                     for v in (answered, refused, unanswered)))
    assert [r["cause"] for r in results] == ["hangup requested", "busy", "no answer"]
    assert heard["caller_id"] == app.number  # `from`, carried over the trunk
    assert webhooks.states(answered) == ["ringing", "connected", "playfinished", "disconnected"]
    assert webhooks.states(refused) == ["ringing", "disconnected"]
    assert webhooks.states(unanswered) == ["ringing", "disconnected"]
    assert all(e["owner_ref"] == f"ref-{numbers[1]}" for e in webhooks.of(refused))


async def test_shared_number_routes_by_pin(
    new_app: NewApp, caller: Caller, webhooks: Webhooks, engine: Engine
) -> None:
    shared = "5557" + str(next(engine.routes._numbers))  # a number of this test's own
    first = await new_app(shared=shared)
    second = await new_app(shared=shared)
    pin_first, pin_second = first.creds.pins[shared], second.creds.pins[shared]
    assert pin_first != pin_second and len(pin_first) == 6

    async def keyed(pin: str, caller_id: str) -> None:
        leg = await caller.dial(shared, caller_id=caller_id)
        wrong = "0" * 6 if "0" * 6 not in (pin_first, pin_second) else "1" * 6
        await leg.press(wrong + "#")
        await asyncio.sleep(2.5)  # "invalid pin", then the PIN prompt again
        await leg.press(pin + "#")
        await leg.wait_hangup(20)

    calls = [asyncio.create_task(keyed(pin_second, "5550301")),
             asyncio.create_task(keyed(pin_first, "5550302"))]
    for _ in range(200):
        routed = {e["from"]: e["voice_id"] for e in webhooks.events
                  if e.get("state") == "incomingcall" and e.get("to") == shared}
        if len(routed) == 2:
            break
        await asyncio.sleep(0.1)
    assert set(routed) == {"5550301", "5550302"}, webhooks.events[-4:]
    # Each call reached the application whose PIN was keyed: only that one can drive it.
    for app, other, caller_id in ((second, first, "5550301"), (first, second, "5550302")):
        vid = routed[caller_id]
        status, _ = await other.request("GET", f"/voice/v1/call/{vid}")
        assert status == 404
        status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play",
                                         {"prompt_name": "beep"})
        assert status == 200, body
        await webhooks.wait(vid, "playfinished")
        await app.request("DELETE", f"/voice/v1/call/{vid}")
    await asyncio.gather(*calls)
    # A shared number is also a caller id the application may present.
    callee = engine.routes.add(lambda call: call.answer())
    status, body = await first.request("POST", "/voice/v1/call",
                                       {"from": shared, "to": callee, "timeout": 5})
    assert status == 200, body
    await webhooks.wait(body["voice_id"], "disconnected")


async def test_shared_number_three_wrong_pins_end_the_call(
    new_app: NewApp, caller: Caller, engine: Engine
) -> None:
    shared = "5558" + str(next(engine.routes._numbers))
    app = await new_app(shared=shared)
    wrong = "9" * 6 if app.creds.pins[shared] != "9" * 6 else "8" * 6
    leg = await caller.dial(shared)
    for _ in range(3):
        await leg.press(wrong + "#")
        await asyncio.sleep(2.5)
    assert await leg.wait_hangup(10)
