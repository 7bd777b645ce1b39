"""The supervised ARI event websockets (one per Stasis app), and the router that hands each
event, in order, to the call it concerns.

Routing is a dict lookup and a synchronous hand-off on the reader task: no task per event, no
lock, nothing that can stall the reader (Asterisk drops a websocket whose reader stalls)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from ivr.core.errors import IvrError

log = logging.getLogger(__name__)

Event = dict[str, Any]
Sink = Callable[[Event], None]

# Event types no part of the engine reads; Asterisk is told not to send them (the app's event
# filter, set on every connection). Half of a recorder call's events were of these types: one
# per media item started, one per step to the next item, and variables set in the dialplan.
UNUSED_EVENTS = ("PlaybackStarted", "PlaybackContinuing", "ChannelVarset", "ChannelDialplan")


def stasis_apps(app: str, shards: int) -> list[str]:
    """The engine's Stasis apps: `app` itself (calls placed over ARI, a test's direct calls) and,
    with more than one shard, `app-0` .. `app-(shards-1)`, among which the dialplan spreads
    incoming calls at random (IVR_SHARDS, set by the engine). Asterisk sends each app's events
    through a thread of its own (the app's message router): with one app, that one thread
    serialises every call's events, and on a busy machine it falls behind (seen at 400 calls
    on 2 cores: 178 events queued, events 0.2-0.5 s late) while the engine sits idle."""
    if shards <= 1:
        return [app]
    return [app, *(f"{app}-{i}" for i in range(shards))]


def _copy_key(event: Event) -> tuple[Any, ...]:
    """What two copies of one event share: an object several of our apps are subscribed to (a
    bridge holding channels of two apps) has each event sent once per app, differing only in
    `application`."""
    ids = []
    for key in ("channel", "bridge", "playback", "recording", "peer"):
        obj = event.get(key)
        if obj is not None:
            ids.append(obj.get("id") or obj.get("name"))
    return (event.get("type"), event.get("timestamp"), event.get("digit"), *ids)


class Dedup:
    """Drops the second copy of an event that reached the engine once per subscribed app. A
    copy is recognised by the key above arriving from a different app within the last
    `window` events; an event is never dropped for repeating one of its own app."""

    def __init__(self, window: int = 2048) -> None:
        self._seen: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._window = window
        self.dropped = 0

    def is_copy(self, event: Event) -> bool:
        key = _copy_key(event)
        app = event.get("application", "")
        first = self._seen.get(key)
        if first is not None and first != app:
            self.dropped += 1
            return True
        self._seen[key] = app
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)
        return False


def event_channel_id(event: Event) -> str | None:
    """The channel an event concerns (or, for a bridge's playback or recording, the bridge),
    or None for events about no channel of ours."""
    channel = event.get("channel")
    if channel is not None:
        return channel["id"]
    for key in ("playback", "recording"):
        target = event.get(key)
        if target is not None:
            uri: str = target.get("target_uri", "")
            if uri.startswith("channel:"):
                return uri[8:]
            # A bridge's playbacks and recordings go to whoever registered the bridge id.
            return uri[7:] if uri.startswith("bridge:") else None
    peer = event.get("peer")  # Dial events
    if peer is not None:
        return peer["id"]
    return None


class Router:
    """channel id -> sink. Events for a channel nobody owns go to `on_unrouted` (a StasisStart
    there means a new call)."""

    def __init__(self, on_unrouted: Sink) -> None:
        self._sinks: dict[str, Sink] = {}
        self._on_unrouted = on_unrouted
        self.routed = 0
        self.unrouted = 0

    def register(self, channel_id: str, sink: Sink) -> None:
        self._sinks[channel_id] = sink

    def unregister(self, channel_id: str) -> None:
        self._sinks.pop(channel_id, None)

    def __contains__(self, channel_id: str) -> bool:
        return channel_id in self._sinks

    def __len__(self) -> int:
        return len(self._sinks)

    def dispatch(self, event: Event) -> None:
        channel_id = event_channel_id(event)
        sink = self._sinks.get(channel_id) if channel_id is not None else None
        if sink is None:
            self.unrouted += 1
            self._on_unrouted(event)
            return
        self.routed += 1
        try:
            sink(event)
        except Exception:  # one call's bug must not take the reader down
            log.exception("[%s] event handler failed for %s", channel_id, event.get("type"))


class EventStream:
    """Connects to /ari/events for `apps`, reconnecting at once, then with capped exponential
    backoff and jitter. `on_connect` runs (as its own task) after every (re)connection to
    resynchronise state lost while the socket was down; events keep flowing while it runs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        apps: list[str],
        dispatch: Sink,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        *,
        heartbeat: float = 10.0,
        max_backoff: float = 1.0,
        dedup: Dedup | None = None,
    ) -> None:
        self._session = session
        self._url = ws_url
        self._apps = ",".join(apps)
        # One app cannot receive an event twice; several can (see Dedup, which EventStreams
        # shares among the sockets of its apps).
        self._dedup = dedup
        self._dispatch = dispatch
        self._on_connect = on_connect
        self._heartbeat = heartbeat
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        self.connections = 0
        self.events = 0
        self.last_error = ""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ari-events")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._resync, self._task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def _run(self) -> None:
        # While the socket is down, Asterisk has no such Stasis app and refuses every new call
        # to it (SIP 503): the first retry goes at once, the next ones a jittered, doubling
        # delay apart, at most `max_backoff`, so a socket back from a blip of any length is
        # used within that long.
        backoff = 0.0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("ARI event websocket: %s", self.last_error)
            finally:
                self._connected.clear()
            if self._stopping:
                return
            if time.monotonic() - started > 30:
                backoff = 0.0  # it had been up a while: this is a fresh failure
            delay = random.uniform(backoff / 2, backoff)
            log.info("ARI event websocket down; reconnecting in %.2fs", delay)
            await asyncio.sleep(delay)
            backoff = min(max(backoff * 2, 0.1), self._max_backoff)

    async def _connect_once(self) -> None:
        async with self._session.ws_connect(
            self._url,
            params={"app": self._apps, "subscribeAll": "false"},
            heartbeat=self._heartbeat,
            max_msg_size=0,
            compress=0,
        ) as ws:
            self.connections += 1
            self.last_error = ""
            self._connected.set()
            log.info("ARI event websocket connected (apps %s)", self._apps)
            if self._on_connect is not None:
                self._resync = asyncio.create_task(self._run_resync(), name="ari-resync")
            loads = orjson.loads
            dispatch = self._dispatch
            dedup = self._dedup
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.events += 1
                    event = loads(msg.data)
                    if dedup is None or not dedup.is_copy(event):
                        dispatch(event)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
            self.last_error = f"closed ({ws.close_code})"

    async def _run_resync(self) -> None:
        assert self._on_connect is not None
        try:
            await self._on_connect()
        except asyncio.CancelledError:
            raise
        except IvrError as exc:
            # Asterisk or the socket went away again meanwhile: the next connection resyncs.
            log.warning("ARI resynchronisation interrupted: %s", exc.message)
        except Exception:
            log.exception("ARI resynchronisation failed")


class EventStreams:
    """One EventStream per Stasis app, seen as one. Asterisk routes each app's events on a
    thread of its own, but writes every event of a websocket under that websocket's lock
    (res/ari/ari_websockets.c, ari_websocket_send_event: the filter, the JSON text and the
    write all inside it): apps sharing one socket share one lock, and on a busy machine a
    router thread that loses the CPU while holding it stalls the others. A socket per app
    keeps them apart. Copies of one event sent once per app (an object two of our apps are
    subscribed to) are dropped by a Dedup the sockets share; reconnections that overlap run
    `on_connect` once more after the one running, not once each."""

    def __init__(self, session: aiohttp.ClientSession, ws_url: str, apps: list[str],
                 dispatch: Sink, on_connect: Callable[[], Awaitable[None]] | None = None,
                 **options: float) -> None:
        dedup = Dedup() if len(apps) > 1 else None
        resync = _Coalesced(on_connect) if on_connect is not None else None
        self.streams = [EventStream(session, ws_url, [app], dispatch, resync, dedup=dedup,
                                    **options) for app in apps]

    @property
    def connected(self) -> bool:
        return all(s.connected for s in self.streams)

    @property
    def connections(self) -> int:
        return sum(s.connections for s in self.streams)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.streams)

    @property
    def last_error(self) -> str:
        return next((s.last_error for s in self.streams if s.last_error), "")

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.gather(*(s.wait_connected(timeout) for s in self.streams))

    def start(self) -> None:
        for stream in self.streams:
            stream.start()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.streams))


class _Coalesced:
    """`fn` run once per burst of calls: a call while it runs makes one more run after it."""

    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._fn = fn
        self._lock = asyncio.Lock()
        self._wanted = False

    async def __call__(self) -> None:
        self._wanted = True
        async with self._lock:
            if not self._wanted:
                return
            self._wanted = False
            await self._fn()
