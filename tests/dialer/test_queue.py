"""The queue in Postgres alone: concurrent claims never hand out one call twice, and calls
settled at the same moment still finish their job (each outcome transaction sees the others)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import asyncpg

from ivr.dialer import store
from ivr.dialer.flow import Attempt
from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from ivr.settings import Settings
from tests.dialer.conftest import Account, drop_queued, long_number

TRUNK = "queue-test"  # no worker dials this trunk


async def claim(pool: asyncpg.Pool, worker: str) -> dict[str, object] | None:
    async with pool.acquire() as conn:
        return await store.claim(conn, trunk=TRUNK, cps=1000, channels=100, worker=worker,
                                 lease=30, prefix="q-")


async def settle(pool: asyncpg.Pool, call: store.CallRecord, worker: str) -> None:
    """What a worker does with an outcome (without a hook)."""
    Attempt(outcome="answered", hang_at=datetime.now(UTC)).apply(call)
    async with pool.acquire() as conn, conn.transaction():
        assert await store.settle(conn, call, worker, retry_in=None) is not None
        await store.finish_job_if_done(conn, call.job_id)


async def test_concurrent_claims_and_outcomes(account: Account, settings: Settings,
                                             pool: asyncpg.Pool) -> None:
    dialer = Dialer(pool, dataclasses.replace(settings, dialer_trunk=TRUNK), {})
    try:
        for _ in range(3):
            created = await dialer.create_job(account.made.account, JobSpec(
                kind="broadcast", content=Content.tts("Hello from the queue test"),
                destinations=[Destination(long_number()) for _ in range(6)]))
            got: list[dict[str, object]] = []
            while len(got) < 6:  # six workers claim at once; the pace may ask one to wait
                answers = await asyncio.gather(*(claim(pool, f"w{i}") for i in range(6)))
                got += [a for a in answers if a is not None and "call" in a]
                await asyncio.sleep(0.01)
            calls = [store.call_of(a["call"]) for a in got]
            assert len({c.id for c in calls}) == 6  # never one call to two workers
            assert {c.job_id for c in calls} == {created.job_id}
            job = await store.job(pool, created.job_id)
            assert job is not None

            await asyncio.gather(*(settle(pool, c, str(a["call"]["worker"]))  # type: ignore[index]
                                   for c, a in zip(calls, got, strict=True)))
            assert await pool.fetchval(
                "SELECT state FROM dialer_jobs WHERE id = $1", created.job_id) == "done"
    finally:
        await drop_queued(pool)
