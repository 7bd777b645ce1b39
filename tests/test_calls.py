"""Real calls through the real Asterisk into the engine's telephony worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import pytest
from prometheus_client import REGISTRY

from ivr.core.errors import CallHungUp
from ivr.media.transcode import wav_to_mp3
from ivr.recorder.phone import RecorderPhone
from ivr.recorder.takes import TakeStore, take_name
from ivr.settings import Settings
from ivr.telephony.call import Call, RecordingResult
from ivr.telephony.rest import AriClient
from tests.telephony_harness import DATA, Caller, Engine, wav_seconds

pytestmark = pytest.mark.asterisk

SPEECH = "speech-fox.wav"
SPEECH_SECONDS = 4.27


@dataclass
class Seen:
    """What a test flow observed, for the test to check."""

    digits: list[str] = field(default_factory=list)
    takes: list[RecordingResult] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    hung_up_at: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)


def digits_then_record(seen: Seen, name: str, *, digits_first: bool = True):  # type: ignore[no-untyped-def]
    """Answer; collect DTMF up to `#`; record until `#`; fetch the WAV over ARI; hang up."""

    async def flow(call: Call) -> None:
        try:
            await call.answer()
            if digits_first:
                seen.digits.append(await call.collect_digits(10, timeout=10, terminators="#"))
            take = await call.record(name, max_duration=20, terminate_on="#")
            seen.takes.append(take)
            if not digits_first:
                seen.digits.append(await call.collect_digits(10, timeout=10, terminators="#"))
            seen.audio.append(await call.ari.stored_recording_file(name))
            await call.play("sound:beep")
        finally:
            seen.done.set()

    return flow


async def test_dtmf_in_order_and_a_recording_as_long_as_the_speech(
    engine: Engine, caller: Caller, stored_recordings: list[str], pool: asyncpg.Pool
) -> None:
    seen = Seen()
    name = "test-dtmf-record"
    stored_recordings.append(name)
    number = engine.routes.add(digits_then_record(seen, name))

    leg = await caller.dial(number, caller_id="5550001")
    await leg.press("1234#")
    await leg.say(SPEECH)
    await leg.press("#")
    await asyncio.wait_for(seen.done.wait(), 30)
    assert await leg.wait_hangup(10), "the engine should hang up after its flow"

    assert seen.digits == ["1234"]
    (take,) = seen.takes
    assert take.ok and not take.hung_up
    stored = wav_seconds(seen.audio[0])
    assert abs(stored - SPEECH_SECONDS) < 0.5, f"stored {stored:.2f}s for {SPEECH_SECONDS}s"
    row = await pool.fetchrow("SELECT * FROM calls WHERE caller_id = '5550001'")
    assert row is not None and row["dialed"] == number
    for _ in range(20):  # the runner closes the record right after the flow
        row = await pool.fetchrow("SELECT * FROM calls WHERE caller_id = '5550001'")
        if row["ended_at"] is not None:
            break
        await asyncio.sleep(0.1)
    assert row["outcome"] == "completed"


async def test_concurrent_calls_keep_their_own_digits(
    engine: Engine, caller: Caller, ari: AriClient, settings: Settings
) -> None:
    results: dict[str, str] = {}
    apps: list[str] = []

    async def flow(call: Call) -> None:
        apps.append(str(call.channel["dialplan"]["app_data"]).split(",", 1)[0])
        await call.answer()
        results[call.caller_id] = await call.collect_digits(6, timeout=10)
        await call.play("sound:beep")

    # The engine tells the dialplan its shard count once connected (IVR_SHARDS).
    for _ in range(50):
        if await ari.get_global_var("IVR_SHARDS") == str(settings.ari_shards):
            break
        await asyncio.sleep(0.1)
    def observed() -> dict[str, float]:
        return {name: REGISTRY.get_sample_value(name) or 0.0 for name in (
            "ivr_key_event_delay_seconds_count", "ivr_key_event_delay_seconds_sum",
            "ivr_keypress_to_prompt_seconds_count")}

    before = observed()
    number = engine.routes.add(flow)
    legs = await asyncio.gather(
        *(caller.dial(number, caller_id=f"55510{i:02d}") for i in range(8)))
    await asyncio.gather(*(leg.press(f"{i}{i}{i}{(i + 1) % 10}#") for i, leg in enumerate(legs)))
    await asyncio.gather(*(leg.wait_hangup(15) for leg in legs))
    assert results == {f"55510{i:02d}": f"{i}{i}{i}{(i + 1) % 10}" for i in range(8)}
    # /metrics: every key's delay from Asterisk's timestamp (same host, same clock: a parsing
    # or time zone mistake would show as hours), and each call's prompt after its keys.
    seen = {k: v - before[k] for k, v in observed().items()}
    assert seen["ivr_key_event_delay_seconds_count"] >= 8 * 5
    assert 0 <= seen["ivr_key_event_delay_seconds_sum"] / seen[
        "ivr_key_event_delay_seconds_count"] < 5
    assert seen["ivr_keypress_to_prompt_seconds_count"] >= 8
    # Spread over the engine's apps at random: all 8 in one of 4 happens 1 time in 16384.
    assert set(apps) <= set(engine.tel.runner.apps)
    if settings.ari_shards > 1:
        assert settings.ari_app not in apps and len(set(apps)) > 1, apps


async def test_barge_in_stops_the_prompt_and_keeps_the_digit(
    engine: Engine, caller: Caller
) -> None:
    seen = Seen()

    async def flow(call: Call) -> None:
        await call.answer()
        playback = await call.play("sound:silence/10", barge_in=True)
        seen.steps.append(f"interrupted by {playback.interrupted_by}")
        seen.digits.append(await call.collect_digits(3, timeout=5))
        seen.done.set()

    number = engine.routes.add(flow)
    leg = await caller.dial(number)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await leg.press("7", between_ms=100)
    await leg.press("89")
    await asyncio.wait_for(seen.done.wait(), 8)
    assert loop.time() - started < 5, "the 10 s prompt should have been cut short"
    assert seen.steps == ["interrupted by 7"]
    assert seen.digits == ["789"]
    await leg.wait_hangup(5)


async def test_a_takes_hash_key_says_what_follows_unless_the_take_is_too_short(
    engine: Engine, caller: Caller, stored_recordings: list[str]
) -> None:
    """start_recording(on_terminator=...): the `#` that ends a take says the next prompt at
    once (Asterisk plays it as the take ends) when the take has run `on_terminator_after`
    seconds by Asterisk's clock; a take ended sooner leaves the choice to the flow."""
    seen = Seen()
    names = ["test-then-long", "test-then-short"]
    stored_recordings.extend(names)

    async def flow(call: Call) -> None:
        try:
            await call.answer()
            for name in names:
                live = await call.start_recording(
                    name, max_duration=20, terminate_on="#",
                    on_terminator=["sound:silence/1", "sound:beep"], on_terminator_after=2.0)
                take = await live.finished()
                seen.takes.append(take)
                if take.followed is None:
                    seen.steps.append("nothing said")
                    continue
                await take.followed
                seen.steps.append(f"heard, typed ahead: {call.typed_ahead}")
        finally:
            seen.done.set()

    number = engine.routes.add(flow)
    leg = await caller.dial(number)
    await leg.say(SPEECH)
    await leg.press("#")
    await asyncio.sleep(3.0)  # what followed plays out, the second take starts
    await leg.press("#")  # the second take: ended at once
    await asyncio.wait_for(seen.done.wait(), 20)
    assert [t.ok for t in seen.takes] == [True, True]
    assert seen.steps == ["heard, typed ahead: False", "nothing said"]
    await leg.wait_hangup(5)


async def test_caller_hanging_up_mid_take_returns_the_partial_take(
    engine: Engine, caller: Caller, stored_recordings: list[str], pool: asyncpg.Pool,
    ari: AriClient,
) -> None:
    seen = Seen()
    name = "test-hangup-mid-take"
    stored_recordings.append(name)

    async def flow(call: Call) -> None:
        await call.answer()
        take = await call.record(name, max_duration=30)
        seen.takes.append(take)
        try:
            await call.play("sound:beep")
        except CallHungUp:
            seen.hung_up_at = "play after take"
            raise
        finally:
            seen.done.set()

    number = engine.routes.add(flow)
    leg = await caller.dial(number, caller_id="5550002")
    await leg.say("speech-short.wav")
    await leg.hangup()
    await asyncio.wait_for(seen.done.wait(), 15)
    (take,) = seen.takes
    assert take.hung_up and take.ok
    # What the caller said before hanging up is in the stored file.
    assert wav_seconds(await ari.stored_recording_file(name)) > 1.2
    assert seen.hung_up_at == "play after take"
    for _ in range(30):
        outcome = await pool.fetchval("SELECT outcome FROM calls WHERE caller_id = '5550002'")
        if outcome:
            break
        await asyncio.sleep(0.1)
    assert outcome == "caller hung up"


@pytest.mark.parametrize("step", ["answer", "play", "collect", "record"])
async def test_hanging_up_at_each_step_ends_the_flow_cleanly(
    engine: Engine, caller: Caller, ari: AriClient, step: str
) -> None:
    seen = Seen()
    reached = asyncio.Event()

    async def flow(call: Call) -> None:
        try:
            if step == "answer":
                reached.set()
                await asyncio.sleep(0.5)
            await call.answer()
            if step == "play":
                reached.set()
            await call.play("sound:silence/3")
            if step == "collect":
                reached.set()
            await call.collect_digits(4, timeout=0.5)
            if step == "record":
                reached.set()
            await call.record(f"test-step-{call.id}", max_duration=5)
            await call.play("sound:beep")
            seen.steps.append("finished")
        except CallHungUp:
            seen.hung_up_at = step
            raise
        finally:
            seen.done.set()

    number = engine.routes.add(flow)
    if step == "answer":
        dialing = asyncio.create_task(caller.dial(number))
        await asyncio.wait_for(reached.wait(), 10)
        # The caller gives up while the engine has not answered yet.
        for channel in await ari.list_channels():
            if channel["name"].startswith(f"Local/{number}@") and channel["name"].endswith(";1"):
                await ari.hangup(channel["id"])
        with pytest.raises(AssertionError):
            await dialing
    else:
        leg = await caller.dial(number)
        await asyncio.wait_for(reached.wait(), 10)
        await asyncio.sleep(0.3)
        await leg.hangup()
    await asyncio.wait_for(seen.done.wait(), 15)
    assert seen.steps == []
    assert seen.hung_up_at == step


async def test_event_socket_drop_mid_call_the_call_still_completes(
    engine: Engine, caller: Caller
) -> None:
    """The event socket is cut while a prompt plays and stays down until the prompt has ended
    (its PlaybackFinished is lost): after the reconnect the runner resynchronises, the flow
    moves on, and the call completes."""
    seen = Seen()

    async def flow(call: Call) -> None:
        await call.answer()
        seen.steps.append("answered")
        await call.play("sound:silence/2")
        seen.steps.append("prompt done")
        seen.digits.append(await call.collect_digits(4, timeout=15))
        await call.play("sound:beep")
        seen.steps.append("finished")
        seen.done.set()

    number = engine.routes.add(flow)
    before = engine.tel.events.connections
    leg = await caller.dial(number)
    await asyncio.sleep(0.5)
    # One socket per Stasis app (EventStreams): all are cut.
    assert engine.proxy.drop_events(refuse_for=3.0) == len(engine.tel.runner.apps)
    for _ in range(100):
        if engine.tel.events.connections > before and engine.tel.events.connected:
            break
        await asyncio.sleep(0.1)
    assert engine.tel.events.connections == before + len(engine.tel.runner.apps)
    await asyncio.sleep(0.3)
    await leg.press("42#")
    await asyncio.wait_for(seen.done.wait(), 15)
    assert seen.steps == ["answered", "prompt done", "finished"]
    assert seen.digits == ["42"]
    assert await leg.wait_hangup(10)


async def test_softphone_over_sip_dtmf_and_recording(
    engine: Engine, softphone, stored_recordings: list[str]  # type: ignore[no-untyped-def]
) -> None:
    """baresip, a real SIP user agent, calls the softphone account on 127.0.0.1:5060 with the
    speech file as its microphone, keys # to end the take, then 1234#."""
    seen = Seen()
    name = "test-baresip"
    stored_recordings.append(name)
    number = engine.routes.add(digits_then_record(seen, name, digits_first=False))
    phone = await softphone(DATA / SPEECH)
    await phone.command("dial", f"sip:{number}@127.0.0.1:5060")
    for _ in range(100):
        if any(e.get("type") == "CALL_ESTABLISHED" for e in phone.events):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"baresip's call was not established; events {phone.events}; "
                    f"log {phone.log()}")
    await asyncio.sleep(SPEECH_SECONDS)
    await phone.command("sndcode", "#")
    await asyncio.sleep(0.6)
    await phone.command("sndcode", "1234#")
    await asyncio.wait_for(seen.done.wait(), 20)
    assert seen.digits == ["1234"], phone.log()
    (take,) = seen.takes
    assert take.ok
    stored = wav_seconds(seen.audio[0])
    assert abs(stored - SPEECH_SECONDS) < 0.5, f"stored {stored:.2f}s for {SPEECH_SECONDS}s"


async def test_takes_are_read_from_the_spool_here_and_over_ari_elsewhere(
    engine: Engine, caller: Caller, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The project's own Asterisk: the take is read and deleted in its spool. Another
    Asterisk (no spool): over ARI's HTTP. Both give the same WAV Asterisk wrote."""
    spool = settings.asterisk_root / "var/spool/asterisk/recording"
    phone = RecorderPhone(pool, settings.data_dir)
    here = TakeStore(phone, settings.data_dir, wav_to_mp3, spool)
    elsewhere = TakeStore(phone, settings.data_dir, wav_to_mp3, None)
    names = [take_name(1, 1), take_name(1, 2)]
    got: dict[str, object] = {}
    done = asyncio.Event()

    async def flow(call: Call) -> None:
        try:
            await call.answer()
            for name in names:
                await call.record(name, max_duration=10, terminate_on="#")
            assert (spool / f"{names[0]}.wav").is_file()
            got["here"] = await here.download(call.ari, names[0], call.id)
            await here.forget(call.ari, names[0])
            got["here gone"] = not (spool / f"{names[0]}.wav").exists()
            got["elsewhere"] = await elsewhere.download(call.ari, names[1], call.id)
            await elsewhere.forget(call.ari, names[1])
            stored = {r["name"] for r in await call.ari.list_stored_recordings()}
            got["elsewhere gone"] = names[1] not in stored
        finally:
            done.set()

    leg = await caller.dial(engine.routes.add(flow))
    for _ in names:
        await leg.say("speech-short.wav")
        await leg.press("#")
    await asyncio.wait_for(done.wait(), 30)
    assert got["here gone"] is True and got["elsewhere gone"] is True
    for key in ("here", "elsewhere"):
        audio = got[key]
        assert isinstance(audio, bytes) and wav_seconds(audio) > 0.5, key
