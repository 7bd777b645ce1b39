"""A call's lines carry its id, in the call's task and in the tasks it starts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.core.logs import for_call

log = logging.getLogger("ivr.test")


async def test_lines_logged_for_a_call_carry_its_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.test")

    async def write_behind() -> None:
        await asyncio.sleep(0)
        log.info("take %d kept", 2)

    async def call_task() -> None:
        for_call("1700000000.42")
        log.info("identified by caller id")
        await asyncio.create_task(write_behind())
        log.info("[other-channel] named by itself")

    await asyncio.create_task(call_task())
    log.info("not about a call")
    assert [r.getMessage() for r in caplog.records] == [
        "[1700000000.42] identified by caller id",
        "[1700000000.42] take 2 kept",
        "[other-channel] named by itself",
        "not about a call",
    ]
