"""What a real-call test may not leave behind, checked after each one as Asterisk's testsuite
does: channels, bridges, live recordings and playbacks in Asterisk; call tasks in the engine;
database connections out of the engine's pool; open file descriptors; and failures nobody
looked at (asyncio's "exception was never retrieved").

Several test sessions may share one Asterisk, so only what this session made is judged: the
channels and bridges that appeared during the test and are this session's (its callers' ids;
with the engine's Stasis app held, anything but another session's callers), and the
recordings and playbacks this session's ARI clients started."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from ivr.telephony.rest import AriClient, AriHttpError

# Keep-alive sockets (aiohttp's connectors, a database pool growing under a test) come and go
# between tests and are not counted (open_fds); of the others a test may leave this many
# more (a log file opened, a resolver's socket) before it counts as a leak.
FD_SLACK = 3
# A test ends when its caller hears the hang-up; the engine may still be logging the call's
# end, and Asterisk destroying the far half of a Local channel pair.
SETTLE_SECONDS = 5.0


_LISTEN = "0A"


def _tcp_ports() -> dict[str, tuple[int, int]]:
    """Socket inode -> (local port, remote port), for this machine's TCP sockets (a listening
    one's remote port is 0)."""
    ports: dict[str, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                cols = line.split()
                local, remote = cols[1], cols[2]
                ports[cols[9]] = (int(local.rsplit(":", 1)[1], 16),
                                  0 if cols[3] == _LISTEN else int(remote.rsplit(":", 1)[1], 16))
    return ports


def _described(target: str, ports: dict[str, tuple[int, int]]) -> str:
    tcp = ports.get(target[8:-1]) if target.startswith("socket:[") else None
    return target if tcp is None else f"{target} (tcp port {tcp[0]} to {tcp[1]})"


def open_fds(pooled_ports: frozenset[int] = frozenset()) -> dict[int, str]:
    """This process's open files (fd -> what it is), less the TCP sockets that may be pooled:
    those to or on `pooled_ports`, and both ends of a connection to a server of this very
    process (the web app, a test's webhook receiver: the product's HTTP clients keep
    connections to them alive)."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    ports = _tcp_ports()
    inodes = {t[8:-1]: fd for fd, t in fds.items() if t.startswith("socket:[")}
    ours = {ports[i][0] for i in inodes if i in ports and ports[i][1] == 0}
    pooled = pooled_ports | ours
    for inode, fd in inodes.items():
        if not pooled.isdisjoint(ports.get(inode, ())) and ports[inode][1] != 0:
            del fds[fd]
    return fds


class Started:
    """The playbacks and live recordings an ARI client asked Asterisk for (it wraps the
    client's `request`), so a test's leftovers can be looked up by id: ARI lists neither."""

    def __init__(self) -> None:
        self.playbacks: set[str] = set()
        self.recordings: set[str] = set()

    def watch(self, ari: AriClient) -> None:
        inner = ari.request

        async def request(name: str, path_args: Any = None, params: Any = None,
                          body: Any = None, **kw: Any) -> Any:
            result = await inner(name, path_args, params, body, **kw)
            if name in ("play", "bridge_play") and path_args:
                self.playbacks.add(path_args["playbackId"])
            elif name in ("record", "bridge_record"):
                pairs = params.items() if isinstance(params, dict) else params or ()
                self.recordings.update(str(v) for k, v in pairs if k == "name")
            return result

        ari.request = request  # type: ignore[method-assign]

    def take(self) -> tuple[set[str], set[str]]:
        started = (self.playbacks, self.recordings)
        self.playbacks, self.recordings = set(), set()
        return started


async def _still_there(get: Callable[[str], Any], ids: set[str]) -> list[str]:
    async def alive(i: str) -> bool:
        try:
            await get(i)
        except AriHttpError as exc:
            return exc.status != 404
        return True

    found = await asyncio.gather(*(alive(i) for i in sorted(ids)))
    return [i for i, there in zip(sorted(ids), found, strict=True) if there]


class LeakCheck:
    """Snapshot before a test (`before`), then `after` lists what leaked (empty: nothing)."""

    def __init__(self, ari: AriClient | None, ours: Callable[[str], bool],
                 started: Started, engine: Any | None, pooled_ports: frozenset[int]) -> None:
        self.ari = ari
        self.pooled_ports = pooled_ports
        self.ours = ours
        self.started = started
        self.engine = engine
        self.channels: set[str] = set()
        self.bridges: set[str] = set()
        self.fds: dict[int, str] = {}
        self.unretrieved: list[str] = []
        self.calls: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_use = 0
        self._handler: Any = None

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if "never retrieved" in message:
            self.unretrieved.append(f"{message}: {context.get('exception')!r}")
        if self._handler is not None:
            self._handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def before(self) -> None:
        loop = asyncio.get_running_loop()
        self._handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_exception)
        self.started.take()
        if self.ari is not None:
            self.channels = {c["id"] for c in await self.ari.list_channels()}
            self.bridges = {b["id"] for b in await self.ari.request("list_bridges")}
        self.fds = open_fds(self.pooled_ports)
        if self.engine is not None:
            # What an earlier test left is reported there, once.
            runner = self.engine.tel.runner
            self.calls = set(runner.calls)
            self.tasks = {t for t in runner._tasks if not t.done()}
            self.in_use = self.engine.pool.get_size() - self.engine.pool.get_idle_size()

    async def after(self) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            leaks = await self._leaks()
            if not leaks or loop.time() > deadline:
                break
            await asyncio.sleep(0.1)
        loop.set_exception_handler(self._handler)
        leaks += self.unretrieved
        playbacks, recordings = self.started.take()
        if self.ari is not None and not leaks:
            # With their channels and bridges gone these are gone too, unless Asterisk lost
            # track of one: one GET each, only for what this test started.
            left = await _still_there(self.ari.get_playback, playbacks)
            leaks += [f"playback {p}" for p in left]
            left = await _still_there(self.ari.get_live_recording, recordings)
            leaks += [f"live recording {r}" for r in left]
        return leaks

    async def _leaks(self) -> list[str]:
        leaks: list[str] = []
        if self.ari is not None:
            channels = await self.ari.list_channels()
            leaks += [f"channel {c['name']} ({c['state']})" for c in channels
                      if c["id"] not in self.channels and self.ours(c["id"])]
            bridges = await self.ari.request("list_bridges")
            leaks += [f"bridge {b['id']} with {len(b.get('channels') or [])} channel(s)"
                      for b in bridges if b["id"] not in self.bridges and self._our_bridge(b)]
        if self.engine is not None:
            runner = self.engine.tel.runner
            leaks += [f"engine call {cid}" for cid in runner.calls if cid not in self.calls]
            leaks += [f"engine task {t.get_name()}" for t in runner._tasks
                      if not t.done() and t not in self.tasks]
            pool = self.engine.pool
            in_use = pool.get_size() - pool.get_idle_size()
            if in_use > self.in_use:
                leaks.append(f"database connections in use: {in_use} of {pool.get_size()}")
        now = open_fds(self.pooled_ports)
        if len(now) > len(self.fds) + FD_SLACK:
            ports = _tcp_ports()
            new = sorted({_described(target, ports) for fd, target in now.items()
                          if self.fds.get(fd) != target})
            leaks.append(f"{len(now) - len(self.fds)} more open files: {new}")
        return leaks

    def _our_bridge(self, bridge: dict[str, Any]) -> bool:
        channels = bridge.get("channels") or []
        if channels:
            return any(self.ours(c) for c in channels)
        return self.ours(bridge["id"])
