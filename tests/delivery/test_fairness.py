"""One receiver that hangs (each attempt waits out the read timeout) must not hold back
everyone else's callbacks: a host gets at most IVR_DELIVERY_PER_HOST of the worker's slots."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from ivr.settings import Settings
from tests.delivery.conftest import Receiver, event_of, eventually, new_session, receiving


async def test_a_hanging_receiver_holds_only_its_share_of_the_slots(
        app: TestClient, make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    assert fast_settings.delivery_per_host < fast_settings.delivery_concurrency
    async with receiving() as stuck:
        stuck.hang_all.add("/hang")
        slow = await make_recorder(callback_url=f"{stuck.url}/hang", callback_format="json")
        # More sessions (each its own stream) than the worker has slots.
        for _ in range(fast_settings.delivery_concurrency + 4):
            await new_session(slow)
        await stuck.wait("/hang", fast_settings.delivery_per_host)
        fine = await make_recorder(callback_url=f"{receiver.url}/ok", callback_format="json")
        session = await new_session(fine)
        (got,) = await receiver.wait("/ok", 1, timeout=3)
        assert event_of(got)["recording_session_key"] == session["session_key"]
        # The stuck host never had more than its share in flight.
        await asyncio.sleep(0.5)
        assert len(stuck.at("/hang")) == fast_settings.delivery_per_host
        # The receiver recovers: its events are settled (none left for later tests).
        stuck.hang_all.clear()
        stuck.release.set()

        async def all_settled() -> bool:
            return not await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE url = $1 AND state = 'pending'",
                f"{stuck.url}/hang")

        await eventually(all_settled, 10, "the stuck receiver's events settled")
