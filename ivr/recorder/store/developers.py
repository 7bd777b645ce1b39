"""Developers, their API tokens and /v1 idempotency keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from ivr.core.db import Conn
from ivr.recorder.models import ApiToken, Developer
from ivr.recorder.store.sql import _assignments


def _developer(row: asyncpg.Record) -> Developer:
    return Developer(row["id"], row["username"], row["email"], row["name"], row["created_at"],
                     row["updated_at"])


async def insert_developer(conn: Conn, username: str, password_hash: str, email: str,
                           name: str) -> Developer:
    row = await conn.fetchrow(
        "INSERT INTO developers (username, password_hash, email, name) VALUES ($1, $2, $3, $4)"
        " RETURNING *", username, password_hash, email, name)
    return _developer(row)


async def developer_credentials(conn: Conn, username: str) -> tuple[Developer, str] | None:
    row = await conn.fetchrow("SELECT * FROM developers WHERE username = $1", username)
    return None if row is None else (_developer(row), row["password_hash"])


async def developer_by_token(conn: Conn, digest: bytes) -> Developer | None:
    """The developer of a token that is neither revoked nor expired; its last use is noted
    at most once a minute (so a busy client costs no write per request)."""
    row = await conn.fetchrow(
        "SELECT d.*, t.last_used_at > now() - interval '1 minute' AS fresh"
        " FROM developer_tokens t JOIN developers d ON d.id = t.developer_id"
        " WHERE t.token_hash = $1 AND t.expires_at > now()"
        " AND t.created_at >= d.password_changed_at", digest)
    if row is None:
        return None
    if not row["fresh"]:
        await conn.execute("UPDATE developer_tokens SET last_used_at = now()"
                           " WHERE token_hash = $1", digest)
    return _developer(row)


async def insert_token(conn: Conn, developer_id: int, digest: bytes, name: str,
                       lifetime_seconds: float) -> None:
    await conn.execute(
        "INSERT INTO developer_tokens (token_hash, developer_id, name, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        digest, developer_id, name, float(lifetime_seconds))


async def tokens_of(conn: Conn, developer_id: int) -> list[ApiToken]:
    """The developer's tokens still in force, newest first; expired ones are swept here."""
    await conn.execute("DELETE FROM developer_tokens WHERE developer_id = $1"
                       " AND expires_at <= now()", developer_id)
    rows = await conn.fetch(
        "SELECT id, name, created_at, expires_at, last_used_at FROM developer_tokens"
        " WHERE developer_id = $1 ORDER BY created_at DESC, id DESC", developer_id)
    return [ApiToken(**dict(r)) for r in rows]


async def delete_token(conn: Conn, developer_id: int, token_id: int) -> bool:
    done = await conn.fetchval("DELETE FROM developer_tokens WHERE developer_id = $1"
                               " AND id = $2 RETURNING 1", developer_id, token_id)
    return bool(done)


async def delete_tokens(conn: Conn, developer_id: int) -> int:
    result = await conn.execute("DELETE FROM developer_tokens WHERE developer_id = $1",
                                developer_id)
    return int(result.split()[-1])


async def update_developer(conn: Conn, developer_id: int, changes: Mapping[str, Any]) -> Developer:
    sets, values = _assignments(changes)
    row = await conn.fetchrow(f"UPDATE developers SET {sets} WHERE id = $1 RETURNING *",
                              developer_id, *values)
    return _developer(row)


async def set_password(conn: Conn, developer_id: int, password_hash: str) -> None:
    """A new password; every sign-in and token made before now stops opening the account."""
    await conn.execute("UPDATE developers SET password_hash = $2, password_changed_at = now()"
                       " WHERE id = $1", developer_id, password_hash)


async def recorder_count(conn: Conn, developer_id: int) -> int:
    """How many voice recorders the developer has, with the developer's row locked until the
    transaction ends (so two concurrent creations cannot both pass a quota)."""
    await conn.execute("SELECT 1 FROM developers WHERE id = $1 FOR UPDATE", developer_id)
    return int(await conn.fetchval("SELECT count(*) FROM voice_recorders"
                                   " WHERE developer_id = $1", developer_id))


async def delete_developer(conn: Conn, developer_id: int) -> None:
    await conn.execute("DELETE FROM developers WHERE id = $1", developer_id)


async def claim_idempotency_key(conn: Conn, developer_id: int, key: str,
                                request_hash: bytes) -> asyncpg.Record | None:
    """None when the key is new (and now claimed); otherwise the earlier request's row."""
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (developer_id, idem_key, request_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", developer_id, key, request_hash)
    if inserted:
        return None
    return await conn.fetchrow(
        "SELECT * FROM idempotency_keys WHERE developer_id = $1 AND idem_key = $2",
        developer_id, key)


async def save_idempotent_response(conn: Conn, developer_id: int, key: str, status: int,
                                   body: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4"
        " WHERE developer_id = $1 AND idem_key = $2", developer_id, key, status, body)


async def release_idempotency_key(conn: Conn, developer_id: int, key: str) -> None:
    await conn.execute("DELETE FROM idempotency_keys WHERE developer_id = $1 AND idem_key = $2",
                       developer_id, key)


async def developer_by_id(conn: Conn, developer_id: int) -> Developer | None:
    row = await conn.fetchrow("SELECT * FROM developers WHERE id = $1", developer_id)
    return None if row is None else _developer(row)
