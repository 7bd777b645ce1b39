"""One full API-initiated session placed by a real SIP softphone (baresip) over UDP."""

from __future__ import annotations

import asyncio
import audioop
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.audio import audio
from tests.helpers.phone import recordings_of, start_session, when_softphone_recording
from tests.telephony_harness import DATA, Engine, wav_seconds

pytestmark = pytest.mark.asterisk


async def test_a_softphone_voices_a_session(
    engine: Engine, softphone: Any, make_recorder: Any, api: TestClient, tmp_path: Path
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None])
    # The microphone talks the whole call: the take holds whatever it said while recording.
    mic = tmp_path / "talking.wav"
    await (await asyncio.create_subprocess_exec(
        "sox", str(DATA / "speech-fox.wav"), str(DATA / "speech-fox.wav"),
        str(DATA / "speech-fox.wav"), str(DATA / "speech-fox.wav"), str(mic))).wait()
    phone = await softphone(mic)
    await phone.command("dial", f"sip:{rec.number}@127.0.0.1:5060")
    for _ in range(100):
        if any(e.get("type") == "CALL_ESTABLISHED" for e in phone.events):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"baresip's call was not established: {phone.log()}")
    await phone.command("sndcode", s["pin"] + "#")
    await when_softphone_recording(engine)
    await asyncio.sleep(3.0)
    await phone.command("sndcode", "#")
    await asyncio.sleep(0.8)
    await phone.command("sndcode", "9")
    for _ in range(200):
        if any(e.get("type") == "CALL_CLOSED" for e in phone.events):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the engine did not end the call: {phone.log()}")
    r = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert r["recording_state"] == "recorded"
    wav = await audio(api, r["wav_url"])
    assert 2.5 < wav_seconds(wav) < 4.0
    assert audioop.rms(wav[44:], 2) > 200, "the take holds the softphone's speech"
