"""The outbox worker: claims due rows, posts callbacks and uploads files, and settles each row.

At least once: a row is settled only after the receiver answered 2xx, and a row whose worker
died stays pending with a lease that runs out, so another worker delivers it (same event id).
One failing endpoint delays only its own stream: other sessions' rows are claimed past it;
and one host has at most `per_host` of the worker's slots, so a receiver that hangs (each
attempt waiting out its timeouts) cannot take the slots every other receiver needs.
Each attempt: 5 s to connect, 15 s between reads; a failure retries after an exponential
backoff with jitter until the row's retry window closes, then the row is `failed`. What each
attempt sent and got back is recorded with its outcome (attempts.py: the console's inspector)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from ivr import __version__
from ivr.core.urls import guarded_connector
from ivr.delivery import attempts, outbox
from ivr.delivery.signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    signed_headers,
)

log = logging.getLogger(__name__)

# Called in the transaction that settles a row (state "delivered" or "failed"), so what a
# feature records about it (a take's upload state) changes together with the row.
Settled = Callable[[outbox.Conn, outbox.Row, str], Awaitable[None]]
FILENAME_HEADER = "X-IVR-Filename"
CONTENT_SHA256_HEADER = "X-IVR-Content-SHA256"
_GIVE_UP_NOW = 10.0**9  # a retry this far out is past any window: the row fails at once


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt n waits a random time in [d/2, d], d = min(cap, base * 2^(n-1)) seconds."""

    base: float = 2.0
    cap: float = 600.0

    def delay(self, attempt: int) -> float:
        full = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        return random.uniform(full / 2, full)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""
    sent: int = 0
    permanent: bool = False
    trace: attempts.Trace | None = None  # what the inspector shows of this attempt


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, *, database_url: str | None = None,
                 concurrency: int = 16, per_host: int = 4, lease_seconds: float = 30.0,
                 poll_interval: float = 1.0, backoff: Backoff | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 15.0,
                 on_settled: Mapping[str, Settled] | None = None,
                 keep_delivered_seconds: float = 7 * 86400,
                 allow_private: bool = False) -> None:
        self.pool = pool
        # Clients name the URLs delivered to: each connection's address is checked
        # (core/urls.py), private ones only where the operator allows them (development).
        self.allow_private = allow_private
        self.database_url = database_url  # for LISTEN; without it the worker only polls
        self.concurrency = concurrency
        self.per_host = per_host
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                             sock_read=read_timeout)
        self.on_settled = dict(on_settled or {})
        self.keep_delivered_seconds = keep_delivered_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Counts since start, by (kind, outcome): delivered, retried, failed.
        self.counts: Counter[tuple[str, str]] = Counter()
        self.upload_bytes = 0
        self.last_error = ""
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._hosts: Counter[str] = Counter()  # rows in flight, by host
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        """Stop claiming, abandon attempts in flight and hand their rows back at once (an
        attempt cut short may still have reached the receiver: it de-duplicates by id)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    # --- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=self.timeout, headers={"User-Agent": f"ivr-delivery/{__version__}"},
            connector=guarded_connector(self.allow_private))
        listener: asyncpg.Connection | None = None
        try:
            listener = await self._listen()
            next_purge = 0.0
            loop = asyncio.get_running_loop()
            while True:
                claimed = await self._claim()
                if loop.time() >= next_purge:
                    await self._purge()
                    next_purge = loop.time() + 3600
                if claimed and len(self._inflight) < self.concurrency:
                    continue  # there may be more due right now
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            held, tasks = list(self._inflight), list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._release(held)
            self._inflight.clear()
            self._hosts.clear()
            if listener is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.close(), 2)
            await self._http.close()

    async def _listen(self) -> asyncpg.Connection | None:
        if self.database_url is None:
            return None
        try:
            conn = await asyncpg.connect(self.database_url, timeout=10)
            await conn.add_listener(outbox.CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("delivery: no LISTEN connection (%s); polling every %.1fs", exc,
                        self.poll_interval)
            return None

    async def _claim(self) -> int:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        try:
            async with self.pool.acquire() as conn:
                rows = await outbox.claim(conn, free, self.lease_seconds, self.name,
                                          per_host=self.per_host, busy=self._hosts)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.last_error = f"claiming: {exc}"
            log.warning("delivery: cannot claim rows: %s", exc)
            return 0
        for row in rows:
            task = asyncio.get_running_loop().create_task(self._deliver(row))
            self._inflight[row.id] = task
            host = outbox.host_of(row.url)
            self._hosts[host] += 1
            task.add_done_callback(partial(self._done, row.id, host))
        return len(rows)

    def _done(self, row_id: int, host: str, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(row_id, None)
        self._hosts[host] -= 1
        if self._hosts[host] <= 0:
            del self._hosts[host]
        self._wake.set()

    async def _release(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        try:
            async with asyncio.timeout(5), self.pool.acquire() as conn:
                await outbox.release(conn, row_ids, self.name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("delivery: %d leased rows left to expire: %s", len(row_ids), exc)

    async def _purge(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                await outbox.purge_settled(conn, self.keep_delivered_seconds)
                await attempts.purge(conn, self.keep_delivered_seconds)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("delivery: purge failed: %s", exc)

    # --- one row -----------------------------------------------------------------------------
    async def _deliver(self, row: outbox.Row) -> None:
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(row.id))
        try:
            result = await self._send(row)
        finally:
            heartbeat.cancel()
        try:
            await self._settle(row, result)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The lease runs out and the row is tried again: at least once, never lost.
            self.last_error = f"settling {row.event_id}: {exc}"
            log.warning("delivery: could not record the outcome of %s: %s", row.event_id, exc)

    async def _heartbeat(self, row_id: int) -> None:
        """Long uploads keep their lease; a dead process stops renewing it."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self.pool.acquire() as conn:
                    await outbox.extend_lease(conn, row_id, self.lease_seconds, self.name)

    async def _settle(self, row: outbox.Row, result: Outcome) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if result.trace is not None:
                await attempts.record(conn, row.id, row.attempts, result.trace, result.error)
            if result.ok:
                if await outbox.delivered(conn, row.id, self.name, result.status or 0,
                                          result.sent):
                    self.counts[(row.kind, "delivered")] += 1
                    if row.kind == "upload":
                        self.upload_bytes += result.sent
                    log.info("delivery: %s %s to %s delivered (attempt %d)", row.kind,
                             row.event_type, outbox.host_of(row.url), row.attempts)
                    await self._hook(conn, row, "delivered")
                return
            retry_in = _GIVE_UP_NOW if result.permanent else self.backoff.delay(row.attempts)
            state = await outbox.attempt_failed(conn, row.id, self.name, result.status,
                                                result.error, retry_in)
            if state == "failed":
                self.counts[(row.kind, "failed")] += 1
                log.warning("delivery: %s %s to %s failed after %d attempts: %s", row.kind,
                            row.event_type, outbox.host_of(row.url), row.attempts, result.error)
                await self._hook(conn, row, "failed")
            elif state == "pending":
                self.counts[(row.kind, "retried")] += 1
                if retry_in < self.poll_interval:  # due before the next poll: wake for it
                    asyncio.get_running_loop().call_later(retry_in, self._wake.set)
                log.info("delivery: %s %s to %s: %s; retrying in %.1fs", row.kind,
                         row.event_type, outbox.host_of(row.url), result.error, retry_in)

    async def _hook(self, conn: outbox.Conn, row: outbox.Row, state: str) -> None:
        hook = self.on_settled.get(row.kind)
        if hook is not None:
            await hook(conn, row, state)

    async def _send(self, row: outbox.Row) -> Outcome:
        assert self._http is not None
        trace = attempts.Trace()
        try:
            if row.kind == "upload":
                result = await self._upload(row, trace)
            else:
                assert row.body is not None and row.signing_secret is not None
                headers = {"Content-Type": row.content_type,
                           EVENT_ID_HEADER: str(row.event_id),
                           EVENT_TYPE_HEADER: row.event_type, ATTEMPT_HEADER: str(row.attempts),
                           **signed_headers(row.signing_secret, row.body)}
                trace.sent(headers.items())
                async with self._http.post(row.url, data=row.body, headers=headers,
                                           allow_redirects=False) as resp:
                    _answered(trace, resp, await resp.read())
                    result = _answer(resp.status, len(row.body))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            result = Outcome(False, error=_describe(exc))
        return dataclasses.replace(result, trace=trace.finish())

    async def _upload(self, row: outbox.Row, trace: attempts.Trace) -> Outcome:
        assert self._http is not None and row.file_path is not None
        path = Path(row.file_path)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return Outcome(False, error=f"the stored file {path.name} is gone", permanent=True)
        headers = {**row.headers, EVENT_ID_HEADER: str(row.event_id),
                   EVENT_TYPE_HEADER: row.event_type, ATTEMPT_HEADER: str(row.attempts),
                   CONTENT_SHA256_HEADER: hashlib.sha256(data).hexdigest()}
        filename = headers.get(FILENAME_HEADER, path.name)
        payload: Any
        if row.method == "PUT":
            headers["Content-Type"] = row.content_type
            payload = data
        else:
            payload = aiohttp.FormData()
            payload.add_field("file", data, filename=filename, content_type=row.content_type)
        trace.sent(headers.items(), attempts.secret_names(row.headers))
        async with self._http.request(row.method, row.url, data=payload, headers=headers,
                                      allow_redirects=False) as resp:
            _answered(trace, resp, await resp.read(), attempts.secret_names(row.headers))
            return _answer(resp.status, len(data))


def _answered(trace: attempts.Trace, resp: aiohttp.ClientResponse, body: bytes,
              secret: set[str] | frozenset[str] = frozenset()) -> None:
    # The headers as they went out (the session's User-Agent, Content-Length, Host included).
    trace.sent(resp.request_info.headers.items(), secret)
    trace.answered(resp.status, resp.headers.items(), body)


def _answer(status: int, sent: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, status, sent=sent)
    return Outcome(False, status, error=f"HTTP {status}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
