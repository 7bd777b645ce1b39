"""The ARI event sockets cut for a while (a network blip, Asterisk restarting): while they are
down Asterisk has no Stasis app of ours and refuses new calls, so the engine must be back on
them as soon as they can be had, and resynchronise without tripping over the apps whose
socket is not back yet."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.telephony.call import Call
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk


async def test_new_calls_get_through_within_a_second_of_the_event_sockets_coming_back(
    engine: Engine, caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(call: Call) -> None:
        await call.answer()
        await call.play("sound:beep")

    number = engine.routes.add(flow)
    loop = asyncio.get_running_loop()
    down_for = 8.0
    with caplog.at_level(logging.INFO, logger="ivr.telephony"):
        assert engine.proxy.drop_events(refuse_for=down_for) == len(engine.tel.runner.apps)
        back = loop.time() + down_for
        for _ in range(500):  # until the engine has seen the cut
            if not engine.tel.events.connected:
                break
            await asyncio.sleep(0.01)
        while not engine.tel.events.connected:
            assert loop.time() < back + 5, "the event sockets did not come back"
            await asyncio.sleep(0.02)
        waited = loop.time() - back
        leg = await caller.dial(number, timeout=5)
        assert await leg.wait_hangup(10)
        await asyncio.sleep(0.2)  # the last socket's resynchronisation
    # Every socket retries at once, then at most a second apart (with jitter).
    assert waited < 1.2, f"reconnected {waited:.2f}s after the sockets were back"
    # Each app's socket resyncs once it is back; none trips over another's still down.
    trouble = [r.getMessage() for r in caplog.records
               if "resynchronisation" in r.getMessage() and r.levelno >= logging.WARNING]
    assert trouble == []
