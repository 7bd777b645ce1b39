"""Takes checked during the call (issue #27), on real calls: a take of silence or of very quiet
speech is met with its reason and the offer to record again; speech is ok. (Clipping is
heard from a real SIP phone, baresip: the harness's Local channels lower what they carry.)

What the caller hears is told by the prompts the engine asks Asterisk to play (the suite's
prompts are all the same tone). tests/data/speech-fox-quiet.wav is speech-fox.wav
through `sox -D -R ... gain -22`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ivr.telephony.rest import AriClient
from tests.helpers.phone import (
    recordings_of,
    start_session,
    take,
    when_not_recording,
    when_recording,
    when_softphone_recording,
)
from tests.telephony_harness import DATA, Caller, Engine

pytestmark = pytest.mark.asterisk

FOX, SHORT = "speech-fox.wav", "speech-short.wav"


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The prompts each channel was asked to play (by name), in order; the requests go on to
    Asterisk as they were."""
    played: dict[str, list[str]] = {}
    play = AriClient.play

    async def spy(self: AriClient, channel_id: str, playback_id: str, media: Iterable[str],
                  lang: str | None = None) -> dict[str, Any]:
        media = list(media)
        played.setdefault(channel_id, []).extend(
            m.split("?")[0].rsplit("/", 1)[-1].removesuffix(".wav") for m in media)
        return await play(self, channel_id, playback_id, media, lang)

    monkeypatch.setattr(AriClient, "play", spy)
    return played


async def silent_take(engine: Engine, leg: Any) -> None:
    """A take of nothing, long enough to be kept by length alone."""
    await when_recording(engine, leg)
    await asyncio.sleep(2.5)
    await leg.press("#")
    await when_not_recording(engine, leg)


async def takes_of(pool: asyncpg.Pool, recording_key: str) -> list[tuple[str, str | None]]:
    rows = await pool.fetch(
        "SELECT t.status, t.quality->>'verdict' AS verdict FROM takes t"
        " JOIN recordings r ON r.id = t.recording_id WHERE r.recording_key = $1"
        " ORDER BY t.take_number", recording_key)
    return [(r["status"], r["verdict"]) for r in rows]


async def test_silence_is_told_and_asked_again_then_speech_is_kept(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool,
    heard: dict[str, list[str]],
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None], caller_id="5557773001")
    leg = await caller.dial(rec.number, caller_id="5557773001")
    # Asterisk keeps no audio of silence, so there is nothing to keep: the reason, and the
    # next take at once.
    await silent_take(engine, leg)
    await take(engine, leg, FOX, then="1")
    assert await leg.wait_hangup(20)
    played = heard[leg.id + ";2"]
    assert played.count("quality_no_speech") == 1, played
    after = played[played.index("quality_no_speech"):]
    assert after[1:3] == ["record_after_tone", "sound:beep"], after
    key = s["keys"][0]
    # Asterisk trims a silent take's silence: what is left, if anything, is kept as history.
    takes = await takes_of(pool, key)
    assert takes[-1] == ("accepted", "ok") and set(takes[:-1]) <= {("discarded", "no_speech")}
    recording = (await recordings_of(rec, s["list_key"]))[key]
    assert recording["recording_state"] == "recorded"
    assert recording["quality_verdict"] == "ok"
    q = recording["quality"]
    assert q["speech_seconds"] > 2 and -35 < q["loudness_lufs"] < -10, q


async def test_a_recorder_that_keeps_no_poor_take_records_again_at_once(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool,
    heard: dict[str, list[str]],
) -> None:
    rec = await make_recorder(quality_keep_anyway="false")
    s = await start_session(rec, [None], caller_id="5557773002")
    leg = await caller.dial(rec.number, caller_id="5557773002")
    # Very quiet, then silence: each told, and recorded again without a key; then speech.
    await take(engine, leg, "speech-fox-quiet.wav", then="")
    await silent_take(engine, leg)
    await take(engine, leg, SHORT, then="1")
    assert await leg.wait_hangup(20)
    played = heard[leg.id + ";2"]
    reasons = [p for p in played if p.startswith("quality_")]
    assert reasons == ["quality_too_quiet", "quality_no_speech"], played
    for reason in reasons:  # straight to the next take, not to the review menu
        assert played[played.index(reason) + 1] == "record_after_tone", played
    assert await takes_of(pool, s["keys"][0]) == [
        ("discarded", "too_quiet"), ("discarded", "no_speech"), ("accepted", "ok")]


async def test_a_poor_take_can_be_kept_when_the_caller_insists(
    engine: Engine, caller: Caller, make_recorder: Any, pool: asyncpg.Pool,
    heard: dict[str, list[str]],
) -> None:
    rec = await make_recorder()
    s = await start_session(rec, [None], caller_id="5557773003")
    leg = await caller.dial(rec.number, caller_id="5557773003")
    await take(engine, leg, "speech-fox-quiet.wav", then="")
    # The reason, then the review menu (the one queued on `#` was stopped for it).
    await asyncio.sleep(0.8)
    await leg.press("1")
    assert await leg.wait_hangup(20)
    played = heard[leg.id + ";2"]
    assert played[played.index("quality_too_quiet") + 1] == "review_menu", played
    assert await takes_of(pool, s["keys"][0]) == [("accepted", "too_quiet")]
    recording = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert recording["recording_state"] == "recorded"
    assert recording["quality_verdict"] == "too_quiet"


async def test_clipped_speech_from_a_softphone_is_told_too_loud(
    engine: Engine, softphone: Any, make_recorder: Any, pool: asyncpg.Pool,
    heard: dict[str, list[str]], tmp_path: Path,
) -> None:
    """Shouted into a real SIP phone (baresip, G.711 over RTP): a fifth of the samples at full
    scale (tests/data/speech-fox-clipped.wav is speech-fox.wav through `sox -D -R ... gain
    24`). The test harness's Local channels lower what they carry by ~6 dB, so clipping is
    heard only from a SIP caller."""
    rec = await make_recorder(quality_keep_anyway="false")
    s = await start_session(rec, [None])
    mic = tmp_path / "shouting.wav"
    clipped = str(DATA / "speech-fox-clipped.wav")
    await (await asyncio.create_subprocess_exec("sox", *[clipped] * 4, str(mic))).wait()
    phone = await softphone(mic)
    await phone.command("dial", f"sip:{rec.number}@127.0.0.1:5060")
    assert await phone.wait_for("CALL_ESTABLISHED", 10), phone.log()
    await phone.command("sndcode", s["pin"] + "#")
    await when_softphone_recording(engine)
    await asyncio.sleep(3.0)
    await phone.command("sndcode", "#")
    for _ in range(100):  # told, and recording again at once
        if "quality_too_loud_clipped" in [p for ps in heard.values() for p in ps]:
            break
        await asyncio.sleep(0.1)
    await phone.command("hangup")
    assert await phone.wait_for("CALL_CLOSED", 10), phone.log()
    played = next(ps for ps in heard.values() if "welcome" in ps)
    reasons = [p for p in played if p.startswith("quality_")]
    assert reasons == ["quality_too_loud_clipped"], played
    assert played[played.index(reasons[0]) + 1] == "record_after_tone", played
    takes = await takes_of(pool, s["keys"][0])
    assert takes[0] == ("discarded", "too_loud_clipped"), takes
