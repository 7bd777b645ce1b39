"""Nothing is lost: an event committed while no worker runs waits in the outbox; a worker
process killed (SIGKILL) mid-delivery leaves its row to another worker once the lease runs
out; a worker stopped mid-delivery hands its row back at once. The receiver sees the same
event id again (at least once) and nothing else."""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import Any

import asyncpg

from ivr.delivery import signing
from ivr.delivery.worker import Backoff, DeliveryWorker
from ivr.recorder.service import RecorderService
from ivr.settings import REPO_ROOT, Settings
from tests.delivery.conftest import Receiver, event_of, eventually

WORKER = """
import asyncio, sys
from ivr.core import db
from ivr.delivery.worker import DeliveryWorker

async def main() -> None:
    pool = await db.create_pool(sys.argv[1], min_size=1, max_size=2)
    DeliveryWorker(pool, lease_seconds=1.0, poll_interval=0.05, allow_private=True).start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def session_with_callback(pool: asyncpg.Pool, settings: Settings, number: str,
                                url: str) -> tuple[str, str]:
    """A state change (StartRecordingSession) made while no worker runs: (session, secret)."""
    service = RecorderService(pool, settings.data_dir, open_signup=True,
                              public_url=settings.public_url, allow_private_urls=True)
    dev = await service.create_developer(f"crash{secrets.token_hex(5)}", "a-password-1")
    recorder, generated = await service.create_recorder(dev, None, {}, None)
    lst, _ = await service.create_list(dev, recorder.recorder_key, None, {}, 1)
    (row,) = await pool.fetch("SELECT recording_key FROM recordings WHERE list_id = $1", lst.id)
    view = await service.start_session(dev, recorder.recorder_key, lst.list_key,
                                       [row["recording_key"]], None, False, None,
                                       callback_url=url)
    return view.session.session_key, generated.passwords["callback_secret"]


async def outbox_state(pool: asyncpg.Pool, session_key: str) -> list[str]:
    rows = await pool.fetch("SELECT state FROM outbox WHERE stream = $1 ORDER BY id",
                            f"session:{session_key}")
    return [r["state"] for r in rows]


async def delivered(pool: asyncpg.Pool, session_key: str) -> bool:
    return await outbox_state(pool, session_key) == ["delivered"]


async def test_a_killed_worker_process_loses_nothing(
        pool: asyncpg.Pool, settings: Settings, delivery_number: str,
        receiver: Receiver) -> None:
    receiver.hang_first.add("/slow")
    key, secret = await session_with_callback(pool, settings, delivery_number,
                                              f"{receiver.url}/slow")
    assert await outbox_state(pool, key) == ["pending"]  # committed with the session
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, settings.database_url, cwd=REPO_ROOT)
    try:
        (first,) = await receiver.wait("/slow", 1, timeout=20)  # the post is in flight ...
    finally:
        proc.kill()  # ... when the process dies
        await proc.wait()
    assert await outbox_state(pool, key) == ["pending"]
    worker = DeliveryWorker(pool, lease_seconds=1.0, poll_interval=0.05,
                            backoff=Backoff(0.05, 0.2), allow_private=True)
    worker.start()
    try:
        _, second = await receiver.wait("/slow", 2, timeout=10)
        await eventually(lambda: delivered(pool, key))
    finally:
        await worker.stop()
    assert event_of(first)["event_id"] == event_of(second)["event_id"]
    assert event_of(second)["recording_session_key"] == key
    assert signing.verify(secret, second.headers, second.body)
    assert len(receiver.at("/slow")) == 2


async def test_a_stopped_worker_hands_its_row_back_at_once(
        pool: asyncpg.Pool, settings: Settings, delivery_number: str,
        receiver: Receiver) -> None:
    receiver.hang_first.add("/held")
    key, _ = await session_with_callback(pool, settings, delivery_number,
                                         f"{receiver.url}/held")
    # A long lease: only the hand-back lets the second worker in quickly.
    first_worker = DeliveryWorker(pool, lease_seconds=600, poll_interval=0.05, allow_private=True)
    first_worker.start()
    (first,) = await receiver.wait("/held", 1)
    await first_worker.stop()
    assert await outbox_state(pool, key) == ["pending"]
    second_worker = DeliveryWorker(pool, lease_seconds=600, poll_interval=0.05, allow_private=True)
    second_worker.start()
    try:
        _, second = await receiver.wait("/held", 2, timeout=5)
        await eventually(lambda: delivered(pool, key))
    finally:
        await second_worker.stop()
    assert event_of(first)["event_id"] == event_of(second)["event_id"]
    attempts = await pool.fetchval("SELECT attempts FROM outbox WHERE stream = $1",
                                   f"session:{key}")
    assert attempts == 1, "an attempt cut short by a stop is not counted"


async def test_two_workers_share_the_outbox_and_keep_each_session_in_order(
        pool: asyncpg.Pool, settings: Settings, delivery_number: str,
        receiver: Receiver) -> None:
    keys = []
    for i in range(6):
        key, _ = await session_with_callback(pool, settings, delivery_number,
                                             f"{receiver.url}/shared{i}")
        keys.append(key)
    service_rows: list[Any] = await pool.fetch(
        "SELECT id FROM recording_sessions WHERE session_key = ANY($1::text[])", keys)
    # Each session expires too: two events per stream, which must arrive in order.
    await pool.execute("UPDATE recording_sessions SET expires_at = now() - interval '1 second'"
                       " WHERE id = ANY($1::bigint[])", [r["id"] for r in service_rows])
    service = RecorderService(pool, settings.data_dir, open_signup=True)
    async with pool.acquire() as conn:
        await service._expire_due(conn)
    workers = [DeliveryWorker(pool, poll_interval=0.05, concurrency=2, allow_private=True)
               for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for i, key in enumerate(keys):
            got = await receiver.wait(f"/shared{i}", 2)
            assert [event_of(r)["event_type"] for r in got] == ["session.created",
                                                                 "session.expired"]
            assert all(event_of(r)["recording_session_key"] == key for r in got)
    finally:
        for worker in workers:
            await worker.stop()
    assert sum(w.counts[("callback", "delivered")] for w in workers) == 12
    assert len(receiver.got) == 12
