"""The outbox table's SQL. A feature calls `enqueue_*` on the connection of the transaction that
makes the state change, so the event exists exactly when the change does; the worker claims,
settles and retries rows through the functions below.

Order: rows of one stream are handed out in id order, and a row is claimable only while no
earlier row of its stream is still pending. Writers of one stream hold that stream's row lock
(a session row FOR UPDATE) while they insert, so ids of one stream follow commit order."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ivr.core.db import Conn

# Workers LISTEN on this channel; an enqueue wakes them when its transaction commits.
CHANNEL = "ivr_outbox"
DEFAULT_RETRY_FOR = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    event_id: uuid.UUID
    kind: str
    event_type: str
    stream: str
    owner: str
    subject: str | None
    url: str
    method: str
    content_type: str
    body: bytes | None
    file_path: str | None
    headers: dict[str, str]
    signing_secret: str | None
    attempts: int
    give_up_at: datetime


def _row(r: asyncpg.Record) -> Row:
    return Row(
        id=r["id"], event_id=r["event_id"], kind=r["kind"], event_type=r["event_type"],
        stream=r["stream"], owner=r["owner"], subject=r["subject"], url=r["url"],
        method=r["method"], content_type=r["content_type"],
        body=None if r["body"] is None else bytes(r["body"]), file_path=r["file_path"],
        headers=orjson.loads(r["headers"]), signing_secret=r["signing_secret"],
        attempts=r["attempts"], give_up_at=r["give_up_at"],
    )


async def enqueue_callback(conn: Conn, *, event_id: uuid.UUID, event_type: str, stream: str,
                           owner: str, url: str, body: bytes, content_type: str,
                           secret: str, retry_for: float = DEFAULT_RETRY_FOR,
                           once: bool = False) -> int | None:
    """A signed POST of `body` to `url`, retried for `retry_for` seconds. With `once`, an
    event whose id is already in the outbox is not added again (None)."""
    row_id = await conn.fetchval(
        "INSERT INTO outbox (event_id, kind, event_type, stream, owner, url, method,"
        " content_type, body, signing_secret, give_up_at)"
        " VALUES ($1, 'callback', $2, $3, $4, $5, 'POST', $6, $7, $8,"
        "         now() + make_interval(secs => $9))"
        + (" ON CONFLICT (event_id) DO NOTHING" if once else "") + " RETURNING id",
        event_id, event_type, stream, owner, url, content_type, body, secret, float(retry_for))
    if row_id is None:
        return None
    await conn.execute(f"NOTIFY {CHANNEL}")
    return int(row_id)


async def enqueue_upload(conn: Conn, *, event_type: str, stream: str, owner: str,
                         subject: str | None, url: str, method: str, path: str,
                         content_type: str, headers: Mapping[str, str],
                         retry_for: float = DEFAULT_RETRY_FOR) -> uuid.UUID:
    """An upload of the file at `path` (PUT as the body, or POST as multipart `file`)."""
    event_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO outbox (event_id, kind, event_type, stream, owner, subject, url, method,"
        " content_type, file_path, headers, give_up_at)"
        " VALUES ($1, 'upload', $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        "         now() + make_interval(secs => $11))",
        event_id, event_type, stream, owner, subject, url, method.upper(), content_type, path,
        orjson.dumps(dict(headers)).decode(), float(retry_for))
    await conn.execute(f"NOTIFY {CHANNEL}")
    return event_id


def host_of(url: str) -> str:
    """What deliveries are shared out by, and what logs name (a URL's path or query may carry
    a developer's token): a URL's host[:port], as split_part(url, '/', 3)."""
    return url.split("/")[2] if url.count("/") >= 2 else url


async def claim(conn: Conn, limit: int, lease_seconds: float, worker: str, *,
                per_host: int = 1_000_000, busy: Mapping[str, int] | None = None) -> list[Row]:
    """Up to `limit` due rows, each the oldest pending row of its stream, leased to `worker`,
    and at most `per_host` in flight to one host counting `busy` (the worker's own, by
    host): a receiver that hangs holds that many of the worker's slots, never all of them.
    SKIP LOCKED lets several workers (and processes) claim side by side."""
    busy = busy or {}
    full = [h for h, n in busy.items() if n >= per_host]
    rows = await conn.fetch(
        "WITH due AS ("
        " SELECT o.id, split_part(o.url, '/', 3) AS host FROM outbox o"
        "  WHERE o.state = 'pending' AND o.next_attempt_at <= now()"
        "    AND (o.lease_until IS NULL OR o.lease_until < now())"
        "    AND NOT (split_part(o.url, '/', 3) = ANY($4::text[]))"
        "    AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.stream = o.stream AND e.id < o.id"
        "                    AND e.state = 'pending')"
        "  ORDER BY o.id LIMIT $1 * 4 FOR UPDATE OF o SKIP LOCKED),"
        " ready AS ("
        "  SELECT id FROM (SELECT d.id, row_number() OVER (PARTITION BY d.host ORDER BY d.id)"
        "                         + coalesce(b.n, 0) AS n"
        "                    FROM due d LEFT JOIN unnest($5::text[], $6::int[]) AS b(host, n)"
        "                      ON b.host = d.host) ranked"
        "   WHERE n <= $7 ORDER BY id LIMIT $1)"
        " UPDATE outbox o SET lease_until = now() + make_interval(secs => $2), leased_by = $3,"
        "   attempts = o.attempts + 1"
        " FROM ready WHERE o.id = ready.id RETURNING o.*",
        limit, float(lease_seconds), worker, full, list(busy), list(busy.values()), per_host)
    return sorted((_row(r) for r in rows), key=lambda r: r.id)


async def extend_lease(conn: Conn, row_id: int, lease_seconds: float, worker: str) -> bool:
    done = await conn.fetchval(
        "UPDATE outbox SET lease_until = now() + make_interval(secs => $2)"
        " WHERE id = $1 AND leased_by = $3 AND state = 'pending' RETURNING 1",
        row_id, float(lease_seconds), worker)
    return bool(done)


async def release(conn: Conn, row_ids: Sequence[int], worker: str) -> None:
    """A stopping worker hands its rows back at once (the attempt did not count)."""
    await conn.execute(
        "UPDATE outbox SET lease_until = NULL, leased_by = NULL, attempts = attempts - 1"
        " WHERE id = ANY($1::bigint[]) AND leased_by = $2 AND state = 'pending'",
        list(row_ids), worker)


async def delivered(conn: Conn, row_id: int, worker: str, status: int, sent: int) -> bool:
    """True when this worker still held the row (else another worker settled it)."""
    done = await conn.fetchval(
        "UPDATE outbox SET state = 'delivered', settled_at = now(), lease_until = NULL,"
        " last_status = $3, last_error = NULL, bytes_sent = $4"
        " WHERE id = $1 AND leased_by = $2 AND state = 'pending' RETURNING 1",
        row_id, worker, status, sent)
    return bool(done)


async def attempt_failed(conn: Conn, row_id: int, worker: str, status: int | None, error: str,
                         retry_in: float) -> str | None:
    """Schedule the next attempt, or mark the row failed once that would be past give_up_at.
    Returns the row's new state (None when another worker holds it now)."""
    state = await conn.fetchval(
        "UPDATE outbox SET lease_until = NULL, last_status = $3, last_error = $4,"
        " next_attempt_at = now() + make_interval(secs => $5),"
        " state = CASE WHEN now() + make_interval(secs => $5) > give_up_at THEN 'failed'"
        "              ELSE 'pending' END,"
        " settled_at = CASE WHEN now() + make_interval(secs => $5) > give_up_at THEN now() END"
        " WHERE id = $1 AND leased_by = $2 AND state = 'pending' RETURNING state",
        row_id, worker, status, error[:1000], float(retry_in))
    return None if state is None else str(state)


async def retry(conn: Conn, owner: str, event_id: uuid.UUID,
                retry_for: float = DEFAULT_RETRY_FOR) -> bool:
    """A failed row becomes pending again, with a fresh retry window."""
    return await _again(conn, owner, event_id, retry_for, "state = 'failed'")


async def redeliver(conn: Conn, owner: str, event_id: uuid.UUID,
                    retry_for: float = DEFAULT_RETRY_FOR) -> bool:
    """A delivered callback is sent again (same event id: a receiver that de-duplicates
    ignores it), in its place in its stream's order, with a fresh retry window. Uploads are
    not: their take's upload state follows their rows."""
    return await _again(conn, owner, event_id, retry_for,
                        "state = 'delivered' AND kind = 'callback'")


async def _again(conn: Conn, owner: str, event_id: uuid.UUID, retry_for: float,
                 which: str) -> bool:
    done = await conn.fetchval(
        "UPDATE outbox SET state = 'pending', settled_at = NULL, next_attempt_at = now(),"
        " give_up_at = now() + make_interval(secs => $3), attempts = 0, leased_by = NULL"
        f" WHERE owner = $1 AND event_id = $2 AND {which} RETURNING 1",
        owner, event_id, float(retry_for))
    if done:
        await conn.execute(f"NOTIFY {CHANNEL}")
    return bool(done)


async def retry_now(conn: Conn, owner: str, event_id: uuid.UUID) -> bool:
    """A pending row waiting out its backoff is due now (one in flight is already being
    tried: its outcome schedules what comes next)."""
    done = await conn.fetchval(
        "UPDATE outbox SET next_attempt_at = least(next_attempt_at, now())"
        " WHERE owner = $1 AND event_id = $2 AND state = 'pending' RETURNING 1",
        owner, event_id)
    if done:
        await conn.execute(f"NOTIFY {CHANNEL}")
    return bool(done)


async def of_owner(conn: Conn, owner: str, state: str | None, limit: int) -> list[dict[str, Any]]:
    """Deliveries for the API, newest first (secrets and bodies left out)."""
    rows = await conn.fetch(
        "SELECT event_id, kind, event_type, url, state, attempts, last_status, last_error,"
        " bytes_sent, created_at, next_attempt_at, settled_at FROM outbox"
        " WHERE owner = $1 AND ($2::text IS NULL OR state = $2) ORDER BY id DESC LIMIT $3",
        owner, state, limit)
    return [dict(r) for r in rows]


async def subject_states(conn: Conn, subject: str) -> list[str]:
    rows = await conn.fetch("SELECT state FROM outbox WHERE subject = $1", subject)
    return [str(r["state"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: dict[str, int]
    failed: dict[str, int]
    delivered: dict[str, int]
    oldest_pending_seconds: float


async def backlog(conn: Conn) -> Backlog:
    rows = await conn.fetch(
        "SELECT kind, state, count(*) AS n,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
        " FROM outbox GROUP BY kind, state")
    found: dict[str, dict[str, int]] = {"pending": {}, "failed": {}, "delivered": {}}
    oldest = 0.0
    for r in rows:
        found[r["state"]][r["kind"]] = int(r["n"])
        if r["state"] == "pending":
            oldest = max(oldest, float(r["age"]))
    for counts in found.values():
        for kind in ("callback", "upload"):
            counts.setdefault(kind, 0)
    return Backlog(found["pending"], found["failed"], found["delivered"], oldest)


async def purge_settled(conn: Conn, older_than_seconds: float, limit: int = 1000) -> int:
    """Delivered rows are kept a while for the API, then removed in bounded batches; failed
    rows stay until retried or their owner is gone."""
    result = await conn.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state = 'delivered'"
        " AND settled_at < now() - make_interval(secs => $1) LIMIT $2)",
        float(older_than_seconds), limit)
    return int(result.split()[-1])
