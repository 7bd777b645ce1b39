"""The webhook inspector's SQL, read-only: the outbox rows of a developer's recorders (their
callbacks and uploads) with what each waits behind, and one row with its request. Each
attempt's exchange is in delivery's attempts table; changes go through delivery.outbox."""

from __future__ import annotations

import uuid
from typing import Any

from ivr.core.db import Conn

STATES = ("pending", "delivered", "failed")

# The earliest pending row of the same stream before a pending row: the worker hands out a
# stream's rows in id order, so this row waits until that one is settled.
_BLOCKER = """(SELECT e.event_id FROM outbox e WHERE e.stream = o.stream AND e.id < o.id
                  AND e.state = 'pending' AND o.state = 'pending' ORDER BY e.id LIMIT 1)"""

_ROWS = f"""
SELECT o.id, o.event_id, o.kind, o.event_type, o.stream, o.url, o.method, o.state, o.attempts,
       o.last_status, o.last_error, o.created_at, o.next_attempt_at, o.settled_at,
       o.give_up_at, o.lease_until, v.recorder_key, {_BLOCKER} AS blocked_by
  FROM voice_recorders v JOIN outbox o ON o.owner = 'recorder:' || v.id
 WHERE v.developer_id = $1"""


async def page(conn: Conn, developer_id: int, state: str | None, limit: int,
               offset: int) -> tuple[int, list[dict[str, Any]]]:
    """One page of the developer's deliveries, newest first, and how many match in all."""
    rows = await conn.fetch(
        f"""SELECT q.*, count(*) OVER () AS found FROM ({_ROWS}
               AND ($2::text IS NULL OR o.state = $2)) q
             ORDER BY q.id DESC LIMIT $3 OFFSET $4""", developer_id, state, limit, offset)
    return (int(rows[0]["found"]) if rows else 0), [dict(r) for r in rows]


async def one(conn: Conn, developer_id: int, event_id: uuid.UUID) -> dict[str, Any] | None:
    """One delivery with its request (the body of a callback; an upload's file is named, not
    read), what it waits behind and how many of its stream's later events wait behind it."""
    row = await conn.fetchrow(
        f"""SELECT q.*, b.event_type AS blocked_by_type, x.body, x.file_path, x.content_type,
                   x.bytes_sent,
                   (SELECT count(*) FROM outbox w WHERE w.stream = q.stream AND w.id > q.id
                       AND w.state = 'pending' AND q.state = 'pending') AS waiting
              FROM ({_ROWS} AND o.event_id = $2) q
              JOIN outbox x ON x.id = q.id
              LEFT JOIN outbox b ON b.event_id = q.blocked_by""", developer_id, event_id)
    return None if row is None else dict(row)


async def failing(conn: Conn, developer_id: int, limit: int) -> list[dict[str, Any]]:
    """The developer's deliveries that failed, or are being retried after a failed attempt,
    newest first, each with when its last attempt started."""
    rows = await conn.fetch(
        f"""SELECT q.*, (SELECT max(a.started_at) FROM outbox_attempts a
                          WHERE a.outbox_id = q.id) AS tried_at
              FROM ({_ROWS} AND (o.state = 'failed' OR (o.state = 'pending'
                    AND o.attempts > 0 AND coalesce(o.last_error, '') <> ''))) q
             ORDER BY q.id DESC LIMIT $2""", developer_id, limit)
    return [dict(r) for r in rows]
