"""action_on_connect's other actions on real outbound calls: `bridge` (and `connect` with from/to,
EnableX's own clients' form) dials one more participant once the called party answers and
bridges them; `"connect": true` only connects the call."""

from __future__ import annotations

import asyncio

import pytest

from ivr.telephony.call import Call
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.telephony_harness import Engine

pytestmark = pytest.mark.asterisk


async def test_bridge_on_connect_joins_a_third_party(
    new_app: NewApp, engine: Engine, webhooks: Webhooks
) -> None:
    app = await new_app()
    bridged = asyncio.Event()
    agent_heard: list[str] = []
    agent_caller_ids: list[str] = []

    async def callee(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.answer()
        await bridged.wait()
        await asyncio.sleep(0.3)
        await call.send_dtmf("4")  # through the bridge to the agent
        await call.wait_gone(20)

    async def agent(call: Call) -> None:
        agent_caller_ids.append(call.caller_id)
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.answer()
        agent_heard.append(await call.collect_digits(1, timeout=15))
        await call.wait_gone(20)

    async def leaves(call: Call) -> None:
        await call.answer()
        await asyncio.sleep(0.5)
        await call.hangup()

    async def busy(call: Call) -> None:
        await call.hangup("busy")

    async def stays(call: Call) -> None:
        await call.answer()
        await call.wait_gone(20)

    callee_number, agent_number, leaving, busy_number, plain = (
        engine.routes.add(f) for f in (callee, agent, leaves, busy, stays))

    async def place(action: object, to: str = plain) -> str:
        status, body = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": to, "timeout": 5, "action_on_connect": action})
        assert status == 200, body
        return str(body["voice_id"])

    with_agent = await place({"bridge": {"from": app.number, "to": agent_number}},
                             to=callee_number)
    left_alone = await place({"connect": {"from": app.number, "to": leaving}})
    refused = await place({"bridge": {"from": app.number, "to": busy_number}})
    connected = await place({"connect": True})

    event = await webhooks.wait(with_agent, "bridged")
    assert event["to"] == agent_number and event["bridge_id"]
    assert agent_caller_ids == [app.number]
    bridged.set()
    for _ in range(100):
        if agent_heard:
            break
        await asyncio.sleep(0.1)
    assert agent_heard == ["4"], "the callee's key reached the agent: they are bridged"
    status, state = await app.request("GET", f"/voice/v1/call/{with_agent}")
    assert (status, state["state"], state["bridged"]) == (200, "connected", True)
    status, err = await app.request("PUT", f"/voice/v1/call/{with_agent}/play",
                                    {"prompt_name": "beep"})
    assert (status, err["result"]) == (405, 6112)

    # The third party hangs up: the call goes on, unbridged; a busy one is reported.
    await webhooks.wait(left_alone, "bridge_disconnected")
    failed = await webhooks.wait(refused, "bridge_failed")
    assert failed["to"] == busy_number
    for vid in (left_alone, refused, connected):
        status, state = await app.request("GET", f"/voice/v1/call/{vid}")
        assert (status, state["state"], state["bridged"]) == (200, "connected", False), vid
    status, body = await app.request("PUT", f"/voice/v1/call/{connected}/play",
                                     {"prompt_name": "beep"})
    assert status == 200, body  # `connect: true` left the call to the application
    await webhooks.wait(connected, "playfinished")

    for vid in (with_agent, left_alone, refused, connected):
        await app.request("DELETE", f"/voice/v1/call/{vid}")
        await webhooks.wait(vid, "disconnected")
    assert webhooks.states(with_agent)[:4] == ["ringing", "connected", "bridging", "bridged"]

    def answered(vid: str) -> list[str]:  # whether a leg answered at once rang is Asterisk's
        return [s for s in webhooks.states(vid) if s != "ringing"]

    assert answered(left_alone) == ["connected", "bridged", "bridge_disconnected",
                                    "disconnected"]
    assert answered(refused) == ["connected", "bridge_failed", "disconnected"]
    assert answered(connected) == ["connected", "playfinished", "disconnected"]
