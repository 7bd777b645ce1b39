"""The console dialer section's own SQL: dialer-account sign-ins (its table), and read-only
queries over the dialer's tables that the Dialer's Python interface lacks: an account's jobs
with their counts, and one page of a job's calls. Every write to a job goes through `Dialer`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.core.db import Conn
from ivr.dialer.accounts import account_of
from ivr.dialer.models import Account

CALL_STATES = ("queued", "dialing", "done", "cancelled", "deleted")
SETTLED = ("done", "cancelled", "deleted")


@dataclass(frozen=True, slots=True)
class AccountSignIn:
    account: Account
    csrf_token: str


async def insert_sign_in(conn: Conn, digest: bytes, account_pk: int, csrf_token: str,
                         lifetime_seconds: int) -> None:
    # Sign-ins past their expiry are swept here, on the (rare) path that adds one.
    await conn.execute("DELETE FROM console_dialer_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO console_dialer_sessions (token_hash, account_pk, csrf_token, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        digest, account_pk, csrf_token, float(lifetime_seconds))


async def sign_in_by_digest(conn: Conn, digest: bytes) -> AccountSignIn | None:
    """The sign-in and its account in one round trip (every dialer page asks)."""
    row = await conn.fetchrow(
        """SELECT s.csrf_token, a.id, a.account_id, a.name, a.webhook_secret, a.timezone,
                  a.hours_from, a.hours_until, a.max_destinations, a.test_number
             FROM console_dialer_sessions s JOIN dialer_accounts a ON a.id = s.account_pk
            WHERE s.token_hash = $1 AND s.expires_at > now()""", digest)
    return None if row is None else AccountSignIn(account_of(row), row["csrf_token"])


async def delete_sign_in(conn: Conn, digest: bytes) -> None:
    await conn.execute("DELETE FROM console_dialer_sessions WHERE token_hash = $1", digest)


@dataclass(slots=True)
class JobRow:
    """A line of the jobs page: the job and how many of its calls are in each state."""

    id: uuid.UUID
    kind: str
    client_job_id: str | None
    state: str
    created_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def progress(self) -> float:
        # The same measure as JobStatus.progress: calls no longer queued or dialing.
        settled = sum(n for s, n in self.counts.items() if s in SETTLED)
        return 1.0 if self.total == 0 else settled / self.total


async def jobs_page(conn: Conn, account_pk: int, limit: int, offset: int
                    ) -> tuple[int, list[JobRow]]:
    """The account's jobs, newest first, one page of them, with counts: two round trips."""
    rows = await conn.fetch(
        """SELECT id, kind, client_job_id, state, created_at, finished_at,
                  count(*) OVER () AS all_jobs
             FROM dialer_jobs WHERE account_pk = $1
            ORDER BY created_at DESC, id LIMIT $2 OFFSET $3""", account_pk, limit, offset)
    jobs = [JobRow(r["id"], r["kind"], r["client_job_id"], r["state"], r["created_at"],
                   r["finished_at"]) for r in rows]
    if not jobs:
        total = await conn.fetchval(
            "SELECT count(*) FROM dialer_jobs WHERE account_pk = $1", account_pk)
        return int(total), []
    by_id = {j.id: j for j in jobs}
    for r in await conn.fetch(
            "SELECT job_id, state, outcome, count(*) AS n FROM dialer_calls"
            " WHERE job_id = ANY($1::uuid[]) GROUP BY job_id, state, outcome", list(by_id)):
        job = by_id[r["job_id"]]
        job.counts[r["state"]] = job.counts.get(r["state"], 0) + r["n"]
        if r["state"] == "done" and r["outcome"]:
            job.outcomes[r["outcome"]] = job.outcomes.get(r["outcome"], 0) + r["n"]
    return int(rows[0]["all_jobs"]), jobs


@dataclass(frozen=True, slots=True)
class CallLine:
    """A call as the job page shows it (columns named in the dialer's contract)."""

    message_id: str
    custom_id: str | None
    number: str
    state: str
    attempts: int
    outcome: str | None
    cause: int | None
    cause_name: str | None
    keypress: str | None
    amd: str | None
    duration: int
    ring_at: datetime | None
    answer_at: datetime | None
    hang_at: datetime | None
    next_attempt_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {"message_id": self.message_id, "custom_id": self.custom_id,
                "number": self.number, "state": self.state, "attempts": self.attempts,
                "outcome": self.outcome, "cause": self.cause, "cause_name": self.cause_name,
                "keypress": self.keypress, "amd": self.amd, "duration": self.duration,
                "ring_at": when(self.ring_at), "answer_at": when(self.answer_at),
                "hang_at": when(self.hang_at)}


async def calls_page(conn: Conn, job_id: uuid.UUID, state: str | None, limit: int,
                     offset: int) -> list[CallLine]:
    """One page of a job's calls in the order they were given (the caller has checked that
    the job is the account's)."""
    rows = await conn.fetch(
        """SELECT message_id, custom_id, number, state, attempts, outcome, cause, cause_name,
                  keypress, amd, duration, ring_at, answer_at, hang_at, next_attempt_at
             FROM dialer_calls WHERE job_id = $1 AND ($2::text IS NULL OR state = $2)
            ORDER BY id LIMIT $3 OFFSET $4""", job_id, state, limit, offset)
    return [CallLine(**dict(r)) for r in rows]
