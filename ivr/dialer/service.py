"""`Dialer`: what the faces (the broadcast REST API, XML campaigns) call to create and control
jobs. Job management needs only Postgres; the worker (worker.py) places the calls."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from ivr.core.db import Conn
from ivr.dialer import store
from ivr.dialer.audio import store_audio
from ivr.dialer.errors import InvalidJob
from ivr.dialer.hooks import NoHook, OutcomeHook
from ivr.dialer.kinds import load_hooks
from ivr.dialer.models import (
    AMD_MODES,
    NUMBER_RE,
    Account,
    CallRecord,
    Content,
    CreatedJob,
    JobSpec,
    JobStatus,
)
from ivr.media.errors import MediaError
from ivr.settings import Settings
from ivr.telephony import toll


class Dialer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings,
                 hooks: dict[str, OutcomeHook] | None = None) -> None:
        self.pool = pool
        self.settings = settings
        # The kinds' outcome hooks (cancel / delete may end a job: its job_finished runs).
        self.hooks = hooks if hooks is not None else load_hooks(settings)

    def _hook(self, kind: str) -> OutcomeHook:
        return self.hooks.get(kind) or NoHook()

    async def _prepared(self, content: Content) -> Content:
        if content.text is not None:
            if not content.text.strip():
                raise InvalidJob("the text to say is empty", "content")
            return content
        if content.audio is not None:
            return content
        if content.source is None:
            raise InvalidJob("content needs text or an audio file", "content")
        try:
            digest = await store_audio(self.settings.data_dir, Path(content.source))
        except MediaError as exc:
            raise InvalidJob(f"the audio file cannot be used: {exc.message}", "content") from None
        return Content(audio=digest)

    async def create_job(self, account: Account, spec: JobSpec,
                         conn: Conn | None = None) -> CreatedJob:
        if spec.amd not in AMD_MODES:
            raise InvalidJob(f"amd must be one of {', '.join(AMD_MODES)}", "amd")
        if not spec.destinations:
            raise InvalidJob("a job needs destinations", "destinations")
        if len(spec.destinations) > account.max_destinations:
            raise InvalidJob(f"at most {account.max_destinations} destinations per job",
                             "destinations")
        seen: set[str] = set()
        for d in spec.destinations:
            if not NUMBER_RE.match(d.number):
                raise InvalidJob(f"destination {d.number!r} must be 7 to 15 digits", "number")
            if d.custom_id is not None:
                if d.custom_id in seen:
                    raise InvalidJob(f"custom id {d.custom_id!r} is not unique", "custom_id")
                seen.add(d.custom_id)
        if not 1 <= spec.max_attempts <= 10:
            raise InvalidJob("max_attempts must be 1 to 10", "max_attempts")
        # The toll-fraud guard: every destination allowed, the day's calls within the limit.
        # Calls at once are the trunk's pace (IVR_DIALER_CHANNELS), not counted here.
        await toll.admit(self.pool, self.settings.security, "dialer", account.account_id,
                         [d.number for d in spec.destinations], active=0)
        content = await self._prepared(spec.content)
        overrides = [None if d.content is None else await self._prepared(d.content)
                     for d in spec.destinations]
        trunk = self.settings.dialer_trunk
        if conn is not None:
            return await store.insert_job(conn, account, spec, trunk, content, overrides)
        async with self.pool.acquire() as own, own.transaction():
            return await store.insert_job(own, account, spec, trunk, content, overrides)

    async def job(self, account: Account, job_id: uuid.UUID) -> JobStatus | None:
        async with self.pool.acquire() as conn:
            job = await store.job(conn, job_id, account.pk)
            if job is None:
                return None
            by_state, by_outcome = await store.counts(conn, job_id)
        return JobStatus(job, by_state, by_outcome)

    async def pause(self, account: Account, job_id: uuid.UUID) -> bool:
        async with self.pool.acquire() as conn:
            return await store.set_job_state(conn, account.pk, job_id, "paused", ("active",))

    async def resume(self, account: Account, job_id: uuid.UUID) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await store.set_job_state(conn, account.pk, job_id, "active", ("paused",))
            if done:
                await self._maybe_finished(conn, job_id)
            return done

    async def cancel(self, account: Account, job_id: uuid.UUID) -> int:
        """Queued calls are dropped ('cancelled'); calls in progress finish."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.set_job_state(conn, account.pk, job_id, "cancelled",
                                             ("active", "paused")):
                return 0
            dropped = await store.drop_queued(conn, job_id, "cancelled")
            await self._maybe_finished(conn, job_id)
            return dropped

    async def delete_pending(self, account: Account, *, message_ids: list[str] | None = None,
                             custom_ids: list[str] | None = None,
                             job_id: uuid.UUID | None = None) -> list[str]:
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = await store.delete_pending(conn, account.pk, message_ids, custom_ids,
                                                 job_id)
            for jid in {j for _, j in deleted}:
                await self._maybe_finished(conn, jid)
            return [m for m, _ in deleted]

    async def _maybe_finished(self, conn: Conn, job_id: uuid.UUID) -> None:
        if await store.finish_job_if_done(conn, job_id):
            job = await store.job(conn, job_id)
            assert job is not None
            by_state, _ = await store.counts(conn, job_id)
            await self._hook(job.kind).job_finished(conn, job, by_state)

    async def call(self, account: Account, message_id: str) -> CallRecord | None:
        async with self.pool.acquire() as conn:
            return await store.call_by_message_id(conn, account.pk, message_id)

    async def call_by_custom_id(self, account: Account, job_id: uuid.UUID, custom_id: str
                                ) -> CallRecord | None:
        async with self.pool.acquire() as conn:
            return await store.call_by_custom_id(conn, account.pk, job_id, custom_id)
