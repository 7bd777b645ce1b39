"""Killing `ivr serve` between a state change and its callback post loses nothing: the event is
delivered, with the same id, by the next `ivr serve` once the dead one's lease runs out."""

from __future__ import annotations

import dataclasses
import signal

import asyncpg

from ivr.delivery import signing
from ivr.settings import Settings
from tests.conftest import free_port, start_serve
from tests.delivery.conftest import Receiver, event_of, eventually
from tests.delivery.test_crash import delivered, outbox_state, session_with_callback


async def test_killing_ivr_serve_mid_post_loses_nothing(
    pool: asyncpg.Pool, settings: Settings, delivery_number: str, receiver: Receiver,
    asterisk: object,
) -> None:
    port = free_port()
    served = dataclasses.replace(settings, http_port=port, public_url=f"http://127.0.0.1:{port}")
    env = {"IVR_ARI_APP": f"ivr-dkill-{port}", "IVR_DELIVERY_LEASE": "2",
           "IVR_DELIVERY_BACKOFF": "0.1"}
    receiver.hang_first.add("/cb")
    key, secret = await session_with_callback(pool, settings, delivery_number,
                                              f"{receiver.url}/cb")
    assert await outbox_state(pool, key) == ["pending"]  # committed with the state change
    first = await start_serve(served, **env)
    try:
        (held,) = await receiver.wait("/cb", 1, timeout=20)  # posted, not yet answered ...
    finally:
        first.send_signal(signal.SIGKILL)  # ... when the process dies
        await first.wait()
    assert await outbox_state(pool, key) == ["pending"]
    second = await start_serve(served, **env)
    try:
        _, again = await receiver.wait("/cb", 2, timeout=20)
        await eventually(lambda: delivered(pool, key), timeout=10)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    assert event_of(held)["event_id"] == event_of(again)["event_id"]
    assert signing.verify(secret, again.headers, again.body)
