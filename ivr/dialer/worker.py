"""The dialer worker: claims due calls from the Postgres queue at the trunk's pace, places each
as its own task, writes an answer or key press as it happens (for kinds that post them live)
and each outcome (with the job kind's postbacks) in one transaction, and settles calls a dead
worker left 'dialing'. Several workers (processes) share one queue.

Why a call is never placed twice: it is marked 'dialing' with its channel id in a committed
transaction before the channel is created; a worker that dies leaves it 'dialing', and the
worker that takes it over (once the lease ran out) only ends what is still up and records
the outcome ('interrupted'); it never dials it again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime

import asyncpg

from ivr.core.errors import IvrError
from ivr.dialer import store
from ivr.dialer.flow import Attempt, Telephone, place_call
from ivr.dialer.hooks import NoHook, OutcomeHook
from ivr.dialer.models import RETRYABLE, CallRecord, Job
from ivr.settings import Settings
from ivr.telephony.rest import AriHttpError

log = logging.getLogger(__name__)

IDLE_POLL = 0.25  # seconds between claims when nothing is due
FULL_POLL = 0.1  # ... when the trunk is at its cap and no call of ours ended
CHANNEL_PREFIX = "dial-"


class DialerWorker:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, tel: Telephone,
                 hooks: dict[str, OutcomeHook]) -> None:
        self.pool = pool
        self.settings = settings
        self.tel = tel
        self.hooks = hooks
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease = settings.dialer_lease
        self.calls: dict[str, asyncio.Task[None]] = {}  # channel id -> its task
        self.placed = 0
        self._jobs: dict[uuid.UUID, Job] = {}
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._freed = asyncio.Event()

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dialer")
        self._sweeper = asyncio.create_task(self._sweep(), name="dialer-sweep")

    async def stop(self, grace: float = 10.0) -> None:
        """Claim nothing more; give calls in progress `grace` seconds, then end them (each
        records its outcome)."""
        self._stopping.set()
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        running = set(self.calls.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)

    # --- claiming -----------------------------------------------------------------------
    async def _run(self) -> None:
        s = self.settings
        while not self._stopping.is_set():
            try:
                async with self.pool.acquire() as conn:
                    got = await store.claim(conn, trunk=s.dialer_trunk, cps=s.dialer_cps,
                                            channels=s.dialer_channels, worker=self.name,
                                            lease=self.lease, prefix=CHANNEL_PREFIX)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("dialer: cannot claim calls: %s", exc)
                await asyncio.sleep(1)
                continue
            if got is None:
                await asyncio.sleep(IDLE_POLL)
            elif "wait" in got:
                await asyncio.sleep(max(0.0, float(got["wait"])))
            elif "full" in got:
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), FULL_POLL)
            else:
                call = store.call_of(got["call"])
                self._spawn(call, dnc=bool(got["dnc"]))

    def _spawn(self, call: CallRecord, dnc: bool) -> None:
        self._track(call, self._one(call, dnc))

    def _track(self, call: CallRecord, work: Coroutine[None, None, None]) -> None:
        assert call.channel_id is not None
        task = asyncio.create_task(work, name=f"dial-{call.channel_id}")
        self.calls[call.channel_id] = task

        def done(_: asyncio.Task[None], channel_id: str = call.channel_id) -> None:
            self.calls.pop(channel_id, None)
            self._freed.set()

        task.add_done_callback(done)

    async def _job(self, job_id: uuid.UUID) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            async with self.pool.acquire() as conn:
                job = await store.job(conn, job_id)
            assert job is not None, f"call of unknown job {job_id}"
            if len(self._jobs) > 1000:
                self._jobs.clear()
            self._jobs[job_id] = job
        return job

    async def _one(self, call: CallRecord, dnc: bool) -> None:
        job = await self._job(call.job_id)
        if dnc:
            log.info("[%s] %s is on the do-not-call list: not dialled", call.channel_id,
                     call.number)
            await self._settle(job, call, Attempt(outcome="dnc", hang_at=_now()))
            return
        self.placed += 1
        log.info("[%s] dialling %s (job %s, attempt %d)", call.channel_id, call.number, job.id,
                 call.attempts)
        hook = self.hooks.get(job.kind) or NoHook()
        live = _Live(self.pool, hook, job, call) if hook.live else None
        try:
            attempt = await place_call(self.tel, job, call, live.note if live else None)
        except asyncio.CancelledError:
            await asyncio.shield(self._settle(job, call, Attempt(outcome="interrupted",
                                                                 hang_at=_now())))
            raise
        except Exception:
            log.exception("[%s] call failed", call.channel_id)
            attempt = Attempt(outcome="failed", hang_at=_now())
        log.info("[%s] %s: %s (%s)", call.channel_id, call.number, attempt.outcome,
                 attempt.cause_name)
        if live is not None:
            await live.written()
        await self._settle(job, call, attempt)

    async def _settle(self, job: Job, call: CallRecord, attempt: Attempt) -> None:
        """The outcome, and the kind's postbacks, in one transaction."""
        attempt.apply(call)
        retry_in = None
        if attempt.outcome in RETRYABLE and call.attempts < job.max_attempts:
            retry_in = job.retry_delay * 2 ** (call.attempts - 1)
        hook = self.hooks.get(job.kind) or NoHook()
        for _ in range(5):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    saved = await store.settle(conn, call, self.name, retry_in=retry_in)
                    if saved is None:
                        log.warning("[%s] no longer ours; outcome not written", call.channel_id)
                        return
                    if retry_in is not None:
                        await hook.call_retrying(conn, job, saved)
                        return
                    await hook.call_finished(conn, job, saved)
                    if await store.finish_job_if_done(conn, job.id):
                        fresh = await store.job(conn, job.id) or job
                        by_state, _ = await store.counts(conn, job.id)
                        await hook.job_finished(conn, fresh, by_state)
                        log.info("dialer: job %s finished: %s", job.id, by_state)
                return
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("[%s] cannot write the outcome yet: %s", call.channel_id, exc)
                await asyncio.sleep(1)
        # Still 'dialing' under this worker's lease: settled as interrupted once it stops.
        log.error("[%s] outcome %s could not be written", call.channel_id, attempt.outcome)

    # --- leases and calls a dead worker left behind -------------------------------------
    async def _sweep(self) -> None:
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await store.heartbeat(conn, self.name, self.lease)
                    lost = await store.take_over_lost(conn, self.name, self.lease)
                for call in lost:
                    self._track(call, self._recover(call))
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("dialer: lease sweep failed: %s", exc)
            await asyncio.sleep(self.lease / 3)

    async def _recover(self, call: CallRecord) -> None:
        """A call its worker did not finish: hang up the channel if it is still there (nobody
        plays it anything) and record it as interrupted. It is not dialled again."""
        job = await self._job(call.job_id)
        attempt = Attempt(outcome="interrupted")
        assert call.channel_id is not None
        try:
            channel = await self.tel.ari.get_channel(call.channel_id)
            if channel.get("state") == "Up":
                attempt.notes.append("answered")
            log.warning("[%s] left by a stopped worker; hanging up", call.channel_id)
            with contextlib.suppress(IvrError):
                await self.tel.ari.hangup(call.channel_id)
        except AriHttpError as exc:
            if exc.status != 404:
                log.warning("[%s] cannot check the channel: %s", call.channel_id, exc.message)
                return  # the lease runs out again; the next sweep retries
            log.warning("[%s] left by a stopped worker; the channel is gone", call.channel_id)
        attempt.hang_at = _now()
        await self._settle(job, call, attempt)


def _now() -> datetime:
    return datetime.now(UTC)


class _Live:
    """What a call reports while it is up (answer, key press), written each in its own
    transaction beside the call, in the order it happened, without holding the call up. A
    write that fails (or never happens: the process died) is left to the outcome's
    transaction: the kind's hook enqueues the same events there, once (by event id)."""

    def __init__(self, pool: asyncpg.Pool, hook: OutcomeHook, job: Job, call: CallRecord
                 ) -> None:
        self.pool, self.hook, self.job, self.call = pool, hook, job, call
        self._last: asyncio.Task[None] | None = None

    def note(self, event: str, key: str | None) -> None:
        self._last = asyncio.create_task(self._write(self._last, event, key))

    async def _write(self, before: asyncio.Task[None] | None, event: str, key: str | None
                     ) -> None:
        if before is not None:
            await asyncio.wait({before})
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self.hook.call_progress(conn, self.job, self.call, event, key)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("[%s] %s not written yet (the outcome will carry it): %s",
                        self.call.channel_id, event, exc)

    async def written(self, timeout: float = 10.0) -> None:
        """Wait (a while) for the writes in flight, so the outcome's events follow them."""
        if self._last is not None:
            await asyncio.wait({self._last}, timeout=timeout)
