"""The FastAGI server: Asterisk's `AGI(agi://host:port/ROUTE[,NUMBER])` connects, and the
route's flow runs over an `AgiCall` exactly as the ARI runner runs it (runner.run_call: the call
log's row, the apology on failure, the state changes drained, the hang-up).

Only the addresses in `allowed` may connect (the engine's own host and its Asterisk's): who
reaches this port drives a call as if it were Asterisk, caller id included."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from ivr.core.errors import ConfigError, TelephonyError
from ivr.telephony.agi import AgiChannel, read_headers
from ivr.telephony.agi_call import AgiCall, AgiTakes
from ivr.telephony.call import Call
from ivr.telephony.call_log import CallLog
from ivr.telephony.runner import Route, run_call

log = logging.getLogger(__name__)

# The route named by agi_network_script ("recorder", "linecheck"), for this call; None: no
# such route.
AgiChoose = Callable[[str, AgiCall], Awaitable[Route | None]]


def route_of(headers: dict[str, str]) -> str:
    """The route an AGI request names: `agi://host:port/recorder?x` -> "recorder"."""
    script = headers.get("agi_network_script") or headers.get("agi_request", "").split(
        "/", 3)[-1]
    return script.split("?", 1)[0].strip("/")


class AgiServer:
    def __init__(self, listen: tuple[str, int], choose: AgiChoose, call_log: CallLog | None,
                 spool: Path, *, allowed: frozenset[str], apology: str | None = None) -> None:
        self.listen = listen
        self._choose = choose
        self._call_log = call_log
        self._takes = AgiTakes(spool)
        self._allowed = frozenset(str(ipaddress.ip_address(a)) for a in allowed)
        self._apology = apology
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: dict[str, AgiCall] = {}
        self.finished = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        host, port = self.listen
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise ConfigError(f"IVR_AGI_LISTEN: cannot listen for FastAGI on {host}:{port}: "
                              f"{exc.strerror or exc}") from exc

    def _allowed_peer(self, peer: object) -> bool:
        if not isinstance(peer, tuple) or not peer:
            return False
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return address.is_loopback or str(mapped or address) in self._allowed

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if not self._allowed_peer(peer):
                log.warning("FastAGI connection from %s refused: only this host and Asterisk's "
                            "may connect", peer)
                return
            try:
                headers = await read_headers(reader)
            except (TelephonyError, TimeoutError, ConnectionError, UnicodeError) as exc:
                log.warning("FastAGI connection from %s dropped: %s", peer,
                            getattr(exc, "message", None) or type(exc).__name__)
                return
            await self._serve(AgiCall(AgiChannel(reader, writer), headers, self._takes),
                              route_of(headers))
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, call: AgiCall, path: str) -> None:
        try:
            route = await self._choose(path, call)
        except Exception:
            log.exception("[%s] FastAGI route %r could not be chosen", call.id, path)
            route = None
        if route is None:
            log.warning("[%s] FastAGI request for route %r: no such route", call.id, path)
            return
        self.calls[call.id] = call
        try:
            # The flows are written against Call's surface, which AgiCall has.
            await run_call(cast(Call, call), route, self._call_log, self._apology)
        finally:
            self.calls.pop(call.id, None)
            self.finished += 1

    async def close(self, grace: float = 0.0) -> None:
        """Take no new connections; let calls in progress finish for up to `grace` seconds,
        then cancel them (each hangs up in its `finally`)."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        if self._server is not None:
            await self._server.wait_closed()
