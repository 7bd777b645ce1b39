"""The recorder's conversation, scripted: the flow against a real database and real take
storage, with the caller's side a script (tests/helpers/scripted_call.py) instead of a call
through Asterisk. Each runs in well under a second; tests/phone's other files run the same
conversations as real calls."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ivr.app import recorder_phone
from ivr.core.errors import CallHungUp
from ivr.media.prompts import PromptCatalog
from ivr.media.quality import analyse
from ivr.media.transcode import wav_to_mp3
from ivr.media.tts import EspeakTts
from ivr.recorder.flow import RecorderFlow
from ivr.recorder.models import ORIGINAL, take_path
from ivr.recorder.takes import TakeStore
from ivr.settings import Settings
from tests.helpers.audio import padded
from tests.helpers.phone import recordings_of, start_session
from tests.helpers.scripted_call import HANG_UP, ScriptedCall, Take

DATA = Path(__file__).parent.parent / "data"
FOX = Take.of(DATA / "speech-fox.wav")
SHORT = Take.of(DATA / "speech-short.wav")


@pytest.fixture
def flow(settings: Settings, pool: asyncpg.Pool) -> RecorderFlow:
    phone = recorder_phone(settings, pool)
    return RecorderFlow(phone, PromptCatalog(settings.prompts_dir, settings.data_dir,
                                             settings.public_url),
                        EspeakTts(settings.data_dir, settings.public_url),
                        TakeStore(phone, settings.data_dir, wav_to_mp3))


async def converse(flow: RecorderFlow, number: str, script: list[Any],
                   caller_id: str = "") -> ScriptedCall:
    catalog = flow.prompts
    assert isinstance(catalog, PromptCatalog)
    call = ScriptedCall(script, caller_id=caller_id, dialed=number,
                        prompts={catalog.default_media(n): n for n in catalog.entries})
    route = await flow.phone.route(number)
    assert route is not None
    try:
        await flow.api_initiated(call, route)  # type: ignore[arg-type]
    except CallHungUp:
        pass  # the runner's part
    finally:
        with contextlib.suppress(CallHungUp):
            await call.written()
    return call


def takes_said(names: list[str]) -> int:
    return names.count("record_after_tone")


async def test_pin_takes_listen_again_keep_and_done(
    flow: RecorderFlow, make_recorder: Any, pool: asyncpg.Pool
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None, None])
    k1, k2 = s["keys"]
    call = await converse(flow, rec.number, [
        "0000#",                  # a wrong PIN first
        s["pin"] + "#",
        FOX, "2", "", "3",        # listen, say nothing once, record again
        SHORT, "1",               # keep: on to the second recording
        FOX, "9",                 # keep and done
    ])
    names = call.names()
    assert names[:4] == ["welcome", "enter_pin", "invalid_pin", "enter_pin"], names
    assert "playback_intro" in names and names.count("review_menu") >= 3
    assert "recording_saved" in names and names[-1] == "goodbye", names
    assert takes_said(names) == 3
    recordings = await recordings_of(rec, s["list_key"])
    assert [recordings[k]["recording_state"] for k in (k1, k2)] == ["recorded", "recorded"]
    takes = await pool.fetch(
        "SELECT t.status FROM takes t JOIN recordings r ON r.id = t.recording_id"
        " WHERE r.recording_key = $1 ORDER BY take_number", k1)
    assert [t["status"] for t in takes] == ["discarded", "accepted"]
    state = await pool.fetchval(
        "SELECT state FROM recording_sessions WHERE session_key = $1", s["session_key"])
    assert state == "ended"


async def test_a_hang_up_at_the_review_menu_keeps_the_take(
    flow: RecorderFlow, make_recorder: Any
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None])
    call = await converse(flow, rec.number, [s["pin"] + "#", FOX, HANG_UP])
    assert call.names()[-1] == "review_menu"
    (recording,) = (await recordings_of(rec, s["list_key"])).values()
    assert recording["recording_state"] == "recorded"
    assert recording["kept_on_hangup"] is True


async def test_a_take_too_short_is_asked_again_and_three_wrong_pins_end_the_call(
    flow: RecorderFlow, make_recorder: Any
) -> None:
    rec = await make_recorder(min_take_seconds=3)
    s = await start_session(rec, [None])
    call = await converse(flow, rec.number, [s["pin"] + "#", SHORT, FOX, "9"])
    names = call.names()
    assert "too_short" in names and takes_said(names) == 2, names
    assert (await recordings_of(rec, s["list_key"]))[s["keys"][0]]["recording_state"] == \
        "recorded"

    call = await converse(flow, rec.number, ["1#", "2#", "3#"])
    assert call.names()[-2:] == ["too_many_attempts", "goodbye"], call.names()


async def test_a_kept_take_is_trimmed_and_normalised_with_the_original_beside_it(
    flow: RecorderFlow, make_recorder: Any, pool: asyncpg.Pool, settings: Settings
) -> None:
    rec = await make_recorder()  # trim_silence and normalize_lufs -16: the defaults
    s = await start_session(rec, [None])
    recorded = padded(1.5, 1.5, gain_db=-10)
    await converse(flow, rec.number, [s["pin"] + "#", Take(recorded), "9"])
    row = await pool.fetchrow(
        "SELECT r.play_key, t.take_number, t.length_seconds FROM recordings r"
        " JOIN takes t ON t.id = r.accepted_take_id WHERE r.recording_key = $1", s["keys"][0])
    wav = take_path(settings.data_dir, row["play_key"], row["take_number"], "wav")
    original = take_path(settings.data_dir, row["play_key"], row["take_number"], ORIGINAL)
    assert original.read_bytes() == recorded
    before, after = analyse(recorded), analyse(wav.read_bytes())
    assert before is not None and after is not None
    assert after.duration_seconds < before.duration_seconds - 2
    assert after.loudness_lufs is not None and before.loudness_lufs is not None
    assert after.loudness_lufs > before.loudness_lufs + 3
    assert row["length_seconds"] == round(after.duration_seconds)
