"""A call's state changes written behind the conversation (no Asterisk needed)."""

from __future__ import annotations

import asyncio

import pytest

from ivr.telephony.write_behind import WriteBehind


async def test_changes_run_in_order_and_a_failure_stops_the_rest_and_is_raised_once() -> None:
    writes = WriteBehind()
    done: list[str] = []

    async def change(name: str, delay: float, fail: bool = False) -> str:
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} failed")
        done.append(name)
        return name

    first = writes(change, "first", 0.05)
    second = writes(change, "second", 0.0)
    assert await second == "second" and await first == "first"
    assert done == ["first", "second"]  # the quick one waited for the slow one
    await writes.written()

    failing = writes(change, "third", 0.0, fail=True)
    after = writes(change, "fourth", 0.0)
    with pytest.raises(RuntimeError, match="third failed"):
        await writes.written()
    await writes.written()  # raised once
    with pytest.raises(RuntimeError, match="third failed"):
        await after  # built on state that is not there: not run
    assert failing.done() and done == ["first", "second"]
