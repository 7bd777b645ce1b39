"""What call control hears on a real call: answering-machine detection (Asterisk's AMD() over
the ivr-amd dialplan) telling a long recorded greeting from a person saying hello."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.callcontrol.models import Media
from ivr.callcontrol.service import CallControl
from ivr.telephony.call import Call
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

GREETING = ("Hello, you have reached the voice mailbox of Alex Morgan. I cannot take your call "
            "right now. Please leave your name and number after the tone.")


async def spoken(control: CallControl, text: str) -> str:
    return await control.media.resolve(Media(text=text, language="en-US", voice="male"))


async def test_outbound_voicemail_detection_machine_and_human(
    new_app: NewApp, engine: Engine, webhooks: Webhooks, control: CallControl
) -> None:
    app = await new_app()
    greeting, hello = await asyncio.gather(spoken(control, GREETING), spoken(control, "Hello?"))

    async def machine(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.answer()
        await asyncio.sleep(0.4)
        await call.play(greeting, "sound:beep")
        await call.wait_gone(20)

    async def person(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.answer()
        await asyncio.sleep(0.6)  # people take a moment to speak up
        await call.play(hello)
        await call.wait_gone(20)

    to_machine, to_person = engine.routes.add(machine), engine.routes.add(person)

    async def place(to: str, **extra: object) -> str:
        status, body = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": to, "timeout": 5, "voicemail_detection": True,
            "action_on_connect": {"play": {"prompt_name": "beep"}}, **extra})
        assert status == 200, body
        return str(body["voice_id"])

    status, body = await app.request("POST", "/voice/v1/call", {
        "from": app.number, "to": to_person, "voicemail_detection": "yes"})
    assert (status, body["param"]) == (400, "voicemail_detection")

    at_machine, at_person = await asyncio.gather(place(to_machine), place(to_person))
    found = await webhooks.wait(at_machine, "voicemail", timeout=15)
    assert found["cause"].split("-")[0] in ("LONGGREETING", "MAXWORDS", "TOOLONG"), found
    # The prompt plays once the verdict is in, for the person as for the machine.
    await asyncio.gather(webhooks.wait(at_machine, "playfinished", timeout=15),
                         webhooks.wait(at_person, "playfinished", timeout=15))
    for vid in (at_machine, at_person):
        await app.request("DELETE", f"/voice/v1/call/{vid}")
    await asyncio.gather(*(webhooks.wait(v, "disconnected") for v in (at_machine, at_person)))
    assert webhooks.states(at_machine) == [
        "ringing", "connected", "voicemail", "playfinished", "disconnected"]
    assert webhooks.states(at_person) == ["ringing", "connected", "playfinished", "disconnected"]


PHRASES = ["pay my bill", "talk to an agent", "check my balance"]


async def test_speech_recognition_with_phrases(
    new_app: NewApp, caller: Caller, webhooks: Webhooks, control: CallControl
) -> None:
    """A caller saying one of the expected phrases is `recognized` with it; silence is a
    `timeout`; other speech matches no phrase: `unrecognized`."""
    app = await new_app()
    bill, weather = await asyncio.gather(
        spoken(control, "Pay my bill."), spoken(control, "The weather is lovely in spring."))

    # Bad asr requests answer 400 before anything plays.
    async def call_with(answer: str | None) -> dict[str, Any]:
        app = await new_app()  # a number of its own: its first call is this one
        dialing = asyncio.create_task(caller.dial(app.number))
        incoming = await webhooks.wait_first_for_number(app.number)
        vid = incoming["voice_id"]
        await app.request("POST", f"/voice/v1/call/{vid}/accept")
        leg = await dialing
        status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play", {
            "prompt_name": "beep", "asr": True, "asr_phrases": PHRASES, "start_timeout": 3,
            "recognizer_timeout": 1, "prompt_ref": "ask"})
        assert (status, body["playstate"]) == (200, "initiated"), body
        if answer is not None:
            await asyncio.sleep(0.8)  # the beep
            # Then silence (a Local channel sends no frames when idle; a SIP one would).
            await leg.call.play(answer, "sound:silence/2")
        for _ in range(150):
            got = [e for e in webhooks.of(vid)
                   if e.get("state") in ("recognized", "unrecognized", "timeout")]
            if got:
                break
            await asyncio.sleep(0.1)
        await app.request("DELETE", f"/voice/v1/call/{vid}")
        assert got, webhooks.states(vid)
        return got[0]

    for body, param in (({"asr_phrases": ["pay my bill"]}, "asr_phrases"),
                        ({"asr": True, "dtmf": True}, "asr"),
                        ({"asr": True, "asr_phrases": ["pay my zzyzxq"]}, "asr_phrases"),
                        ({"asr": True, "asr_phrases": "pay"}, "asr_phrases"),
                        ({"asr": True, "start_timeout": 11}, "start_timeout")):
        status, got = await app.request("POST", "/voice/v1/call", {
            "from": app.number, "to": "123",
            "action_on_connect": {"play": {"prompt_name": "beep", **body}}})
        assert (status, got["param"]) == (400, param), (body, got)

    recognized, silent, other = await asyncio.gather(
        call_with(bill), call_with(None), call_with(weather))
    assert (recognized["state"], recognized["recognised_phrase"]) == ("recognized",
                                                                      "pay my bill")
    assert recognized["result"] == {"reason": "RecognizedSpeech"}
    assert recognized["prompt_ref"] == "ask" and recognized["asr_id"]
    assert (silent["state"], silent["result"]["reason"]) == ("timeout",
                                                             "InitialSilenceTimeout")
    assert other["state"] == "unrecognized", other
