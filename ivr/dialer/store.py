"""The dialer's SQL: jobs and their calls (the queue), claiming, settling, control."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ivr.core.db import Conn
from ivr.dialer.models import (
    Account,
    CallRecord,
    Content,
    CreatedCall,
    CreatedJob,
    Job,
    JobSpec,
)

ACTIVE_STATES = ("queued", "dialing")
_JOB_COLUMNS = """j.id, j.kind, j.client_job_id, j.state, j.content, j.sender_id,
    j.callback_url, j.enable_menu_response, j.amd, j.max_attempts, j.retry_delay,
    j.ring_timeout, j.meta, j.created_at, j.finished_at,
    a.id AS a_id, a.account_id, a.name, a.webhook_secret, a.timezone, a.hours_from,
    a.hours_until, a.max_destinations, a.test_number"""


def new_message_id() -> str:
    """20 digits: the second it was made, then 10 random digits (as the seed's ids look)."""
    return f"{int(time.time()):010d}{secrets.randbelow(10**10):010d}"


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def job_of(row: asyncpg.Record) -> Job:
    account = Account(pk=row["a_id"], account_id=row["account_id"], name=row["name"],
                      webhook_secret=row["webhook_secret"], timezone=row["timezone"],
                      hours_from=row["hours_from"], hours_until=row["hours_until"],
                      max_destinations=row["max_destinations"],
                      test_number=row["test_number"])
    return Job(id=row["id"], kind=row["kind"], account=account,
               client_job_id=row["client_job_id"], state=row["state"],
               content=Content.from_json(_json(row["content"])), sender_id=row["sender_id"],
               callback_url=row["callback_url"],
               enable_menu_response=row["enable_menu_response"], amd=row["amd"],
               max_attempts=row["max_attempts"], retry_delay=row["retry_delay"],
               ring_timeout=row["ring_timeout"], meta=_json(row["meta"]),
               created_at=row["created_at"], finished_at=row["finished_at"])


def call_of(row: Any) -> CallRecord:
    """From a record or from the claim function's JSON."""
    content = _json(row["content"])
    return CallRecord(
        id=int(row["id"]), job_id=uuid.UUID(str(row["job_id"])), message_id=row["message_id"],
        custom_id=row["custom_id"], number=row["number"],
        content=None if content is None else Content.from_json(content),
        meta=_json(row["meta"]) or {}, state=row["state"], attempts=row["attempts"],
        channel_id=row["channel_id"], started_at=_ts(row["started_at"]),
        ring_at=_ts(row["ring_at"]), answer_at=_ts(row["answer_at"]),
        hang_at=_ts(row["hang_at"]), outcome=row["outcome"], cause=row["cause"],
        cause_name=row["cause_name"], keypress=row["keypress"], amd=row["amd"],
        duration=row["duration"], next_attempt_at=_ts(row["next_attempt_at"]))


async def insert_job(conn: Conn, account: Account, spec: JobSpec, trunk: str,
                     content: Content, overrides: list[Content | None]) -> CreatedJob:
    """The job and all its calls in two statements (the caller holds the transaction)."""
    job_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO dialer_jobs (id, account_pk, kind, client_job_id, content, sender_id,
               callback_url, enable_menu_response, amd, max_attempts, retry_delay,
               ring_timeout, meta)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)""",
        job_id, account.pk, spec.kind, spec.client_job_id, orjson.dumps(content.as_json()).decode(),
        spec.sender_id, spec.callback_url, spec.enable_menu_response, spec.amd,
        spec.max_attempts, float(spec.retry_delay), spec.ring_timeout,
        orjson.dumps(spec.meta).decode())
    message_ids = [new_message_id() for _ in spec.destinations]
    await conn.execute(
        """INSERT INTO dialer_calls (job_id, message_id, custom_id, number, content, meta, trunk,
                                    next_attempt_at)
           SELECT $1, m, c, n, o::jsonb, x::jsonb, $7, greatest(now(), w)
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $8::timestamptz[])
                  WITH ORDINALITY AS d(m, c, n, o, x, w, i) ORDER BY i""",
        job_id, message_ids, [d.custom_id for d in spec.destinations],
        [d.number for d in spec.destinations],
        [None if o is None else orjson.dumps(o.as_json()).decode() for o in overrides],
        [orjson.dumps(d.meta).decode() for d in spec.destinations], trunk,
        [d.not_before for d in spec.destinations])
    return CreatedJob(job_id, [CreatedCall(m, d.number, d.custom_id)
                               for m, d in zip(message_ids, spec.destinations, strict=True)])


async def job(conn: Conn, job_id: uuid.UUID, account_pk: int | None = None) -> Job | None:
    row = await conn.fetchrow(
        f"""SELECT {_JOB_COLUMNS} FROM dialer_jobs j JOIN dialer_accounts a ON a.id = j.account_pk
            WHERE j.id = $1 AND ($2::bigint IS NULL OR j.account_pk = $2)""",
        job_id, account_pk)
    return None if row is None else job_of(row)


async def counts(conn: Conn, job_id: uuid.UUID) -> tuple[dict[str, int], dict[str, int]]:
    rows = await conn.fetch(
        "SELECT state, outcome, count(*) AS n FROM dialer_calls WHERE job_id = $1"
        " GROUP BY state, outcome", job_id)
    by_state: dict[str, int] = {}
    by_outcome: dict[str, int] = {}
    for r in rows:
        by_state[r["state"]] = by_state.get(r["state"], 0) + r["n"]
        if r["state"] == "done" and r["outcome"]:
            by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + r["n"]
    return by_state, by_outcome


async def claim(conn: Conn, *, trunk: str, cps: float, channels: int, worker: str,
                lease: float, prefix: str) -> dict[str, Any] | None:
    value = await conn.fetchval("SELECT dialer_claim($1, $2, $3, $4, $5, $6)",
                                trunk, float(cps), channels, worker, float(lease), prefix)
    return None if value is None else _json(value)


async def heartbeat(conn: Conn, worker: str, lease: float) -> None:
    await conn.execute(
        "UPDATE dialer_calls SET lease_until = clock_timestamp() + make_interval(secs => $2)"
        " WHERE worker = $1 AND state = 'dialing'", worker, float(lease))


async def take_over_lost(conn: Conn, worker: str, lease: float, limit: int = 50
                         ) -> list[CallRecord]:
    """'dialing' calls whose worker stopped renewing its lease, now this worker's to settle."""
    rows = await conn.fetch(
        """UPDATE dialer_calls c SET worker = $1,
               lease_until = clock_timestamp() + make_interval(secs => $2)
           WHERE c.id IN (SELECT id FROM dialer_calls WHERE state = 'dialing'
                          AND lease_until < clock_timestamp()
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING c.*""", worker, float(lease), limit)
    return [call_of(r) for r in rows]


async def settle(conn: Conn, call: CallRecord, worker: str, *, retry_in: float | None
                 ) -> CallRecord | None:
    """Write the call's outcome: final ('done'), or back to 'queued' for another attempt in
    `retry_in` seconds. None when this worker no longer holds the call."""
    row = await conn.fetchrow(
        """UPDATE dialer_calls SET
               state = CASE WHEN $2::double precision IS NULL THEN 'done' ELSE 'queued' END,
               next_attempt_at = CASE WHEN $2::double precision IS NULL THEN next_attempt_at
                   ELSE clock_timestamp() + make_interval(secs => $2) END,
               worker = NULL, lease_until = NULL, ring_at = $4, answer_at = $5, hang_at = $6,
               outcome = $7, cause = $8, cause_name = $9, keypress = $10, amd = $11,
               duration = $12, updated_at = clock_timestamp()
           WHERE id = $1 AND state = 'dialing' AND worker = $3 RETURNING *""",
        call.id, retry_in, worker, call.ring_at, call.answer_at, call.hang_at, call.outcome,
        call.cause, call.cause_name, call.keypress, call.amd, call.duration)
    return None if row is None else call_of(row)


async def finish_job_if_done(conn: Conn, job_id: uuid.UUID) -> bool:
    """Mark the job finished once no call of it is queued or dialing. True the one time it
    happens (the caller then runs the job_finished hook in the same transaction).

    The job's row is locked first, in a statement of its own: the check that follows then
    sees every call settled by a transaction that held the lock before (calls settled at the
    same moment would otherwise each see the others still dialing, and none would finish)."""
    await conn.execute("SELECT 1 FROM dialer_jobs WHERE id = $1 FOR UPDATE", job_id)
    done = await conn.fetchval(
        """UPDATE dialer_jobs SET finished_at = clock_timestamp(),
               state = CASE WHEN state = 'cancelled' THEN 'cancelled' ELSE 'done' END
           WHERE id = $1 AND finished_at IS NULL AND state <> 'paused'
             AND NOT EXISTS (SELECT 1 FROM dialer_calls
                             WHERE job_id = $1 AND state IN ('queued', 'dialing'))
           RETURNING 1""", job_id)
    return bool(done)


async def set_job_state(conn: Conn, account_pk: int, job_id: uuid.UUID, state: str,
                        from_states: tuple[str, ...]) -> bool:
    done = await conn.fetchval(
        "UPDATE dialer_jobs SET state = $3 WHERE id = $1 AND account_pk = $2"
        " AND state = ANY($4::text[]) RETURNING 1", job_id, account_pk, state, list(from_states))
    return bool(done)


async def drop_queued(conn: Conn, job_id: uuid.UUID, state: str) -> int:
    result = await conn.execute(
        "UPDATE dialer_calls SET state = $2, updated_at = clock_timestamp()"
        " WHERE job_id = $1 AND state = 'queued'", job_id, state)
    return int(result.split()[-1])


async def delete_pending(conn: Conn, account_pk: int, message_ids: list[str] | None,
                         custom_ids: list[str] | None, job_id: uuid.UUID | None
                         ) -> list[tuple[str, uuid.UUID]]:
    rows = await conn.fetch(
        """UPDATE dialer_calls c SET state = 'deleted', updated_at = clock_timestamp()
             FROM dialer_jobs j
            WHERE j.id = c.job_id AND j.account_pk = $1 AND c.state = 'queued'
              AND ($4::uuid IS NULL OR c.job_id = $4)
              AND (c.message_id = ANY($2::text[]) OR c.custom_id = ANY($3::text[]))
           RETURNING c.message_id, c.job_id""",
        account_pk, message_ids or [], custom_ids or [], job_id)
    return [(r["message_id"], r["job_id"]) for r in rows]


async def call_by_message_id(conn: Conn, account_pk: int, message_id: str
                             ) -> CallRecord | None:
    row = await conn.fetchrow(
        """SELECT c.* FROM dialer_calls c JOIN dialer_jobs j ON j.id = c.job_id
           WHERE c.message_id = $1 AND j.account_pk = $2""", message_id, account_pk)
    return None if row is None else call_of(row)


async def call_by_custom_id(conn: Conn, account_pk: int, job_id: uuid.UUID, custom_id: str
                            ) -> CallRecord | None:
    row = await conn.fetchrow(
        """SELECT c.* FROM dialer_calls c JOIN dialer_jobs j ON j.id = c.job_id
           WHERE c.job_id = $1 AND c.custom_id = $2 AND j.account_pk = $3""",
        job_id, custom_id, account_pk)
    return None if row is None else call_of(row)


async def calls_of_job(conn: Conn, job_id: uuid.UUID) -> list[CallRecord]:
    rows = await conn.fetch("SELECT * FROM dialer_calls WHERE job_id = $1 ORDER BY id", job_id)
    return [call_of(r) for r in rows]
