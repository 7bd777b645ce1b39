"""The console's done-when, with a real call: sign in, create a recorder and a list, start a
session, call the number through Asterisk, and watch the live view go called, recording,
recorded; then the take plays in the page."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest

from ivr.recorder.service import RecorderService
from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, new_list_with_recording, sign_in
from tests.console.test_pages import create_recorder
from tests.helpers.phone import new_number, take, when_recording
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

FOX, FOX_S = "speech-fox.wav", 4.27

HISTORY = ("return Array.from(document.querySelectorAll('#state-history .what'))"
           ".map(e => e.textContent)")
ROW_STATE = ("const r = document.querySelector('#session-recordings tr[data-key=\"'"
             " + arguments[0] + '\"]'); return r && r.cells[3].dataset.state")


async def test_live_session_with_a_real_call(
        engine: Engine, caller: Caller, engine_browser: Browser, make_developer: Any,
        pool: asyncpg.Pool, settings: Settings) -> None:
    b = engine_browser
    number = await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    rk = await create_recorder(b, name="Walkthrough", max_take_seconds="60",
                               silence_seconds="0", min_take_seconds="1")
    service = RecorderService(pool, settings.data_dir, open_signup=False)
    developer = await service.authenticate(dev.username, dev.password)
    dial = (await service.get_recorder(developer, rk)).phone_numbers[0].number

    lk, key = await new_list_with_recording(b, "Tour", "Front door")

    await b.submit("#start-session button[type=submit]")
    await b.wait("return document.getElementById('pin')")
    pin = await b.text("#pin")
    assert pin.isdigit() and len(pin) == 6
    assert await b.text("#dial-number") in (number, dial)
    await b.wait("return document.getElementById('live-status').textContent === 'live'")
    assert await b.js(HISTORY) == ["created"]
    await b.screenshot("session-created")

    leg = await caller.dial(dial, caller_id="5557770042")
    await leg.press(pin + "#")
    await when_recording(engine, leg)
    await b.wait("return document.getElementById('session-state').textContent === 'recording'")
    assert await b.js(ROW_STATE, key) == "recording"
    await b.screenshot("session-recording")

    # Operations, in another tab while the call is on: the call is in progress.
    live_tab = b.driver.current_window_handle
    await b._run(b.driver.switch_to.new_window, "tab")
    await b.get("/console/operations")
    assert dial in await b.text("#live-calls")
    await b.screenshot("operations")
    await b._run(b.driver.close)
    await b._run(b.driver.switch_to.window, live_tab)

    await take(engine, leg, FOX, then="9")
    assert await leg.wait_hangup(20), "the engine hangs up after goodbye"
    await b.wait("return document.getElementById('live-status').textContent === 'session over'")
    history = await b.js(HISTORY)
    assert history[:3] == ["created", "called", f"recording ({key})"], history
    assert history[-1] == "ended", history
    assert await b.js(ROW_STATE, key) == "recorded"

    # The take plays in the page: the live view's player loads the recording.
    loaded = ("const a = document.querySelector('#session-recordings audio');"
              "return a && (a.error ? 'error ' + a.error.code :"
              " a.readyState >= 1 && a.duration)")
    duration = await b.wait(loaded)
    assert duration == pytest.approx(FOX_S, abs=1.0), duration
    await b.screenshot("session-ended")

    # The list page: the recording with its player, waveform and takes.
    await b.get(f"/console/recorders/{rk}/lists/{lk}")
    duration = await b.wait("const a = document.querySelector('audio.recording-audio');"
                            "return a.error ? 'error ' + a.error.code :"
                            " a.readyState >= 1 && a.duration")
    assert duration == pytest.approx(FOX_S, abs=1.0), duration
    drawn = await b.wait("return document.querySelector('canvas.waveform').dataset.drawn")
    assert float(drawn) == pytest.approx(FOX_S, abs=1.0), drawn
    takes = await b.js("return Array.from(document.querySelectorAll('tr.take')).map(t =>"
                       " Array.from(t.cells).map(c => c.textContent.trim()).join(' ').trim())")
    assert len(takes) == 1 and re.fullmatch(r"#1 accepted [0-9.]+ s +ok", takes[0]), takes
    assert float(takes[0].split()[2]) == pytest.approx(FOX_S, abs=1.0), takes
    # The take's quality: its verdict as a badge and its figures beside the player.
    assert await b.text(".take-quality .quality") == "ok"
    assert re.fullmatch(r"speech [0-9.]+ s · -?[0-9.]+ LUFS · peak -?[0-9.]+ dBTP · clipped "
                        r"[0-9.]+ % · SNR [0-9.]+ dB", await b.text(".take-quality small")), \
        await b.text(".take-quality small")
    played = await b.js("const a = document.querySelector('audio.recording-audio');"
                        "return a.play().then(() => new Promise(r => setTimeout(r, 400)))"
                        ".then(() => a.currentTime)")
    assert played > 0.1, played
    await b.screenshot("list-recorded")
