"""auto_record: an outbound call recorded from connect to the end, both directions in one file,
with the recording's events and its GET like an on-demand recording."""

from __future__ import annotations

import asyncio

import pytest

from ivr.callcontrol.models import Media
from ivr.callcontrol.service import CallControl
from ivr.telephony.call import Call
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.helpers.audio import loudness
from tests.telephony_harness import Engine, wav_seconds

pytestmark = pytest.mark.asterisk


async def test_outbound_auto_record_whole_call(
    new_app: NewApp, engine: Engine, webhooks: Webhooks, control: CallControl,
    stored_recordings: list[str],
) -> None:
    app = await new_app()
    hello = await control.media.resolve(
        Media(text="Hello, this is Sam.", language="en-US", voice="female"))

    async def callee(call: Call) -> None:
        await call.answer()
        await call.play(hello)  # the called party speaks first ...
        await call.wait_gone(20)

    status, body = await app.request("POST", "/voice/v1/call", {
        "from": app.number, "to": engine.routes.add(callee), "auto_record": True,
        "timeout": 5})
    assert status == 200, body
    vid = body["voice_id"]
    started = await webhooks.wait(vid, "started")
    recording_id = started["recording_id"]
    status, err = await app.request("PUT", f"/voice/v1/call/{vid}/recording", {"start": True})
    assert (status, err["msg"]) == (408, "Call is already recording")
    await asyncio.sleep(2.0)
    # ... then the application's prompt: the other direction of the call.
    status, body = await app.request("PUT", f"/voice/v1/call/{vid}/play", {
        "text": "Thank you for taking our call.", "language": "en-US", "voice": "male"})
    assert status == 200, body
    await webhooks.wait(vid, "playfinished")
    await app.request("DELETE", f"/voice/v1/call/{vid}")
    await webhooks.wait(vid, "disconnected")
    states = webhooks.states(vid)
    assert "completed" in states, states
    assert states.index("connected") < states.index("started") < states.index("completed")
    assert states[-1] == "disconnected"
    completed = next(e for e in webhooks.of(vid) if e.get("state") == "completed")
    assert completed["recording_id"] == recording_id

    resp = await app.client.get(f"/voice/v1/recording/{recording_id}", headers=app.headers)
    assert resp.status == 200 and resp.content_type == "audio/wav"
    audio = await resp.read()
    stored_recordings.append(f"cc-{recording_id.replace('-', '')}")
    seconds = wav_seconds(audio)
    assert seconds > 3.5, seconds
    # The callee's hello opens the file; the prompt (about 1.5 s) ends it.
    callee_part = loudness(audio, 0.1, 1.0)
    prompt_part = loudness(audio, seconds - 1.6, seconds - 0.4)
    gap = loudness(audio, 1.6, 2.0)
    assert callee_part > 300 and prompt_part > 300, (callee_part, prompt_part)
    assert gap < callee_part / 3, (gap, callee_part)
