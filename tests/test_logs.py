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


def test_asyncpg_refilling_its_pool_while_the_database_is_down_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import ivr.core.db  # noqa: F401  (installs the filter)

    caplog.set_level(logging.WARNING, logger="asyncpg.pool")
    try:
        raise ConnectionRefusedError("connect call failed")
    except ConnectionRefusedError:
        logging.getLogger("asyncpg.pool").warning(
            "Failed to restore the pool connection floor; retrying", exc_info=True)
    (record,) = caplog.records
    assert record.exc_info is None
    assert record.getMessage() == ("Failed to restore the pool connection floor; retrying: "
                                   "ConnectionRefusedError: connect call failed")
