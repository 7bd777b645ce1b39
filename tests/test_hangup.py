"""A caller hanging up fails every step waiting on the call with CallHungUp, including steps
the flow had asked for and never got to wait on (a prompt queued behind the one playing):
asyncio must not then report a "Future exception was never retrieved" for each of them."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from ivr.core.errors import CallHungUp
from ivr.telephony.call import Call
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


async def test_a_hang_up_leaves_no_exception_unretrieved(
    engine: Engine, caller: Caller
) -> None:
    ended: list[str] = []
    playing = asyncio.Event()

    async def flow(call: Call) -> None:
        await call.answer()
        first = await call.queue_play("sound:silence/10")
        await call.queue_play("sound:silence/10")  # never waited for: the caller hangs up
        playing.set()
        try:
            await first.finished()
        except CallHungUp:
            ended.append("hung up")
            raise

    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    try:
        leg = await caller.dial(engine.routes.add(flow))
        await asyncio.wait_for(playing.wait(), 5)
        await leg.hangup()
        assert await leg.wait_hangup(5)
        for _ in range(50):
            if not engine.tel.runner.calls:
                break
            await asyncio.sleep(0.05)
        del leg
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert ended == ["hung up"]
    assert [c.get("message") for c in unretrieved] == []
