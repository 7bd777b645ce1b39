"""The Call schedules what the caller hears: `say` queues and merges, a key stops what was
said before it, `next_digit`'s timer starts once everything said was heard, `hush` stops it
all. Real calls through the real Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ivr.telephony.call import Call
from ivr.telephony.rest import ARI_REQUESTS
from tests.telephony_harness import Caller, CallerLeg, Engine

pytestmark = pytest.mark.asterisk

Seen = dict[str, Any]


async def conversation(engine: Engine, caller: Caller,
                       engine_side: Callable[[Call, Seen, float], Awaitable[None]],
                       caller_side: Callable[[CallerLeg], Awaitable[None]] | None = None) -> Seen:
    """Call a flow that answers and runs `engine_side(call, seen, answered_at)`; the caller
    does `caller_side(leg)` meanwhile. Returns what the flow saw."""
    seen: Seen = {}
    done = asyncio.Event()

    async def flow(call: Call) -> None:
        try:
            await call.answer()
            await engine_side(call, seen, asyncio.get_running_loop().time())
        finally:
            done.set()

    leg = await caller.dial(engine.routes.add(flow))
    if caller_side is not None:
        await caller_side(leg)
    await asyncio.wait_for(done.wait(), 15)
    await leg.wait_hangup(5)
    return seen


def since(began: float) -> float:
    return asyncio.get_running_loop().time() - began


async def test_said_in_one_tick_is_one_playback_and_a_key_stops_all_of_it(
    engine: Engine, caller: Caller
) -> None:
    async def engine_side(call: Call, seen: Seen, began: float) -> None:
        ended: set[str] = set()
        call.add_listener(lambda e: ended.add(e["playback"]["id"])
                          if e["type"] == "PlaybackFinished" else None)
        call.say("sound:silence/10")
        call.say("sound:silence/10", "sound:beep")
        seen["digit"] = await call.next_digit(5)
        await call.heard()
        seen["seconds"] = since(began)
        await asyncio.sleep(0.5)  # Asterisk reports the stopped playback ended
        seen["playbacks"] = len(ended)

    async def caller_side(leg: CallerLeg) -> None:
        await asyncio.sleep(1.0)
        await leg.press("4")

    seen = await conversation(engine, caller, engine_side, caller_side)
    assert seen["digit"] == "4"
    assert seen["seconds"] < 4, "the key should have stopped 20 s of prompts"
    assert seen["playbacks"] == 1


async def test_the_key_timer_starts_once_everything_said_was_heard(
    engine: Engine, caller: Caller
) -> None:
    async def engine_side(call: Call, seen: Seen, began: float) -> None:
        call.say("sound:silence/2")
        seen["digit"] = await call.next_digit(1.0)
        seen["seconds"] = since(began)

    seen = await conversation(engine, caller, engine_side)
    assert seen["digit"] is None
    assert 2.5 <= seen["seconds"] < 5, seen  # 2 s heard, then 1 s waited


async def test_hush_and_a_key_typed_ahead_stop_what_was_said(
    engine: Engine, caller: Caller
) -> None:
    async def engine_side(call: Call, seen: Seen, began: float) -> None:
        pressed = asyncio.Event()
        call.add_listener(lambda e: pressed.set()
                          if e["type"] == "ChannelDtmfReceived" else None)
        call.say("sound:silence/10")
        await asyncio.sleep(0.5)
        call.hush()
        await call.heard()
        seen["hushed after"] = since(began)
        await pressed.wait()
        # Said after the key was pressed: reading the key answers it.
        began = asyncio.get_running_loop().time()
        call.say("sound:silence/10")
        seen["digit"] = await call.next_digit(5)
        await call.heard()
        seen["answered after"] = since(began)
        await call.say("sound:beep")  # heard to its end
        seen["beep after"] = since(began)

    async def caller_side(leg: CallerLeg) -> None:
        await asyncio.sleep(1.5)
        await leg.press("7")

    seen = await conversation(engine, caller, engine_side, caller_side)
    assert seen["hushed after"] < 2
    assert seen["digit"] == "7"
    assert seen["answered after"] < 1.5
    assert 0.3 < seen["beep after"] - seen["answered after"] < 3


async def test_said_just_before_a_takes_prompt_is_one_playback_with_it(
    engine: Engine, caller: Caller
) -> None:
    """"Saved" and the next take's prompt: one play request, heard in order, and a key during
    it still starts the recording at once."""
    async def engine_side(call: Call, seen: Seen, began: float) -> None:
        plays = ARI_REQUESTS.labels("play")
        before = plays._value.get()
        said = call.say("sound:silence/10")
        live = await call.start_recording("saying-test-take", prompt=["sound:silence/10"],
                                          max_duration=3)
        seen["recording after"] = since(began)
        seen["said heard"] = said._batch.ended.done()
        await live.finished()
        seen["playbacks"] = plays._value.get() - before

    async def caller_side(leg: CallerLeg) -> None:
        await asyncio.sleep(1.0)
        await leg.press("5")

    seen = await conversation(engine, caller, engine_side, caller_side)
    assert seen["playbacks"] == 1, seen
    assert seen["recording after"] < 4, "the key should have cut 20 s of prompts short"
    assert seen["said heard"]
