"""The console's own SQL: its sign-in sessions and the call log it shows. Recorder data is read
and written only through the recorder service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.core.db import Conn


@dataclass(frozen=True, slots=True)
class SignIn:
    developer_id: int
    csrf_token: str


async def insert_sign_in(conn: Conn, digest: bytes, developer_id: int, csrf_token: str,
                         lifetime_seconds: int) -> None:
    # Sign-ins past their expiry are swept here, on the (rare) path that adds one.
    await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO console_sessions (token_hash, developer_id, csrf_token, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        digest, developer_id, csrf_token, float(lifetime_seconds))


async def sign_in_by_digest(conn: Conn, digest: bytes) -> SignIn | None:
    row = await conn.fetchrow(
        "SELECT s.developer_id, s.csrf_token FROM console_sessions s"
        " JOIN developers d ON d.id = s.developer_id"
        " WHERE s.token_hash = $1 AND s.expires_at > now()"
        " AND s.created_at >= d.password_changed_at", digest)
    return None if row is None else SignIn(row["developer_id"], row["csrf_token"])


async def delete_sign_in(conn: Conn, digest: bytes) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE token_hash = $1", digest)


async def delete_other_sign_ins(conn: Conn, developer_id: int, keep: bytes) -> int:
    """Every other browser signed in as the developer is signed out (a new password)."""
    result = await conn.execute(
        "DELETE FROM console_sessions WHERE developer_id = $1 AND token_hash <> $2",
        developer_id, keep)
    return int(result.split()[-1])


@dataclass(frozen=True, slots=True)
class CallRow:
    """A row of the engine's call log (`calls`); the console's call log adds to it."""

    channel_id: str
    direction: str
    caller_id: str
    dialed: str
    flow: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None


def _call(row: Any) -> CallRow:
    return CallRow(row["channel_id"], row["direction"], row["caller_id"], row["dialed"],
                   row["flow"], row["started_at"], row["ended_at"], row["outcome"])


async def calls_to(conn: Conn, numbers: Sequence[str], *, live: bool,
                   limit: int) -> list[CallRow]:
    """Calls dialled to these numbers: those in progress (newest first), or the last ended."""
    if live:
        sql = ("SELECT * FROM calls WHERE ended_at IS NULL AND dialed = ANY($1::text[])"
               " ORDER BY started_at DESC LIMIT $2")
    else:
        sql = ("SELECT * FROM calls WHERE ended_at IS NOT NULL AND dialed = ANY($1::text[])"
               " ORDER BY ended_at DESC LIMIT $2")
    return [_call(r) for r in await conn.fetch(sql, list(numbers), limit)]
