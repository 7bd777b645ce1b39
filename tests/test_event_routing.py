"""The event layer's own logic, without Asterisk: which Stasis apps an engine listens on, how
a second copy of an event (one per subscribed app) is told from a new event, and the socket
per app (a loopback websocket server standing in for Asterisk's /ari/events)."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.telephony.events import Dedup, EventStreams, Router, _Coalesced, stasis_apps


def test_one_shard_is_the_app_alone_and_more_add_numbered_apps() -> None:
    assert stasis_apps("ivr", 1) == ["ivr"]
    assert stasis_apps("ivr", 3) == ["ivr", "ivr-0", "ivr-1", "ivr-2"]


def _entered(app: str, channel: str, ts: str = "2026-11-30T14:00:00.000+0000") -> dict:
    return {"type": "ChannelEnteredBridge", "application": app, "timestamp": ts,
            "channel": {"id": channel}, "bridge": {"id": "b1"}}


def test_a_copy_from_another_app_is_dropped_once() -> None:
    dedup = Dedup()
    assert not dedup.is_copy(_entered("ivr-2", "c1"))
    assert dedup.is_copy(_entered("ivr", "c1"))
    assert dedup.dropped == 1
    # Another channel entering the same bridge in the same millisecond is a new event.
    assert not dedup.is_copy(_entered("ivr", "c2"))


def test_events_of_one_app_are_never_dropped() -> None:
    dedup = Dedup()
    digit = {"type": "ChannelDtmfReceived", "application": "ivr-1", "digit": "1",
             "timestamp": "2026-11-30T14:00:00.000+0000", "channel": {"id": "c1"}}
    assert not dedup.is_copy(digit)
    assert not dedup.is_copy(dict(digit))  # the same key again, from the same app: a new event
    assert not dedup.is_copy({**digit, "digit": "2", "application": "ivr"})


def test_the_window_is_bounded() -> None:
    dedup = Dedup(window=4)
    for i in range(10):
        dedup.is_copy(_entered("ivr-0", f"c{i}"))
    assert not dedup.is_copy(_entered("ivr", "c0"))  # long forgotten


def test_router_hands_each_event_to_its_channel_and_the_rest_to_unrouted() -> None:
    unrouted: list[dict] = []
    router = Router(unrouted.append)
    got: list[dict] = []
    router.register("c1", got.append)
    router.dispatch(_entered("ivr", "c1"))
    router.dispatch(_entered("ivr", "c9"))
    assert [e["channel"]["id"] for e in got] == ["c1"]
    assert [e["channel"]["id"] for e in unrouted] == ["c9"]


async def test_overlapping_resyncs_run_once_more_not_once_each() -> None:
    runs: list[int] = []
    gate = asyncio.Event()

    async def resync() -> None:
        runs.append(len(runs))
        await gate.wait()

    coalesced = _Coalesced(resync)
    first = asyncio.create_task(coalesced())
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalesced()) for _ in range(4)]  # four sockets reconnect
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *rest)
    assert runs == [0, 1]
    await coalesced()  # a later reconnection resynchronises again
    assert runs == [0, 1, 2]


async def test_a_socket_per_app_and_a_copy_sent_to_two_apps_dispatched_once() -> None:
    ts = "2026-11-30T14:00:00.000+0000"
    sent = {"a": [_entered("a", "c1", ts), {"type": "StasisStart", "application": "a",
                                              "timestamp": ts, "channel": {"id": "c2"}}],
            "b": [_entered("b", "c1", ts), {"type": "StasisStart", "application": "b",
                                              "timestamp": ts, "channel": {"id": "c3"}}]}
    sockets: list[str] = []

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        app = request.query["app"]
        sockets.append(app)
        for event in sent[app]:
            await ws.send_str(orjson.dumps(event).decode())
        async for _ in ws:
            pass
        return ws

    server_app = web.Application()
    server_app.router.add_get("/ari/events", events)
    got: list[dict] = []
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    async with TestServer(server_app) as server, aiohttp.ClientSession() as session:
        streams = EventStreams(session, str(server.make_url("/ari/events")), ["a", "b"],
                               got.append, resync)
        streams.start()
        await streams.wait_connected(5)
        for _ in range(100):
            if streams.events == 4:
                break
            await asyncio.sleep(0.01)
        await streams.stop()
    assert sorted(sockets) == ["a", "b"] and streams.connections == 2
    assert streams.events == 4  # read: both copies ...
    assert sorted((e["type"], e["channel"]["id"]) for e in got) == [  # ... dispatched: one
        ("ChannelEnteredBridge", "c1"), ("StasisStart", "c2"), ("StasisStart", "c3")]
    assert 1 <= len(resyncs) <= 2
