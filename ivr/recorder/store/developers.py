"""Developers, their API tokens and /v1 idempotency keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from ivr.core.db import Conn
from ivr.recorder.models import Developer
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
    row = await conn.fetchrow(
        "SELECT d.* FROM developer_tokens t JOIN developers d ON d.id = t.developer_id"
        " WHERE t.token_hash = $1", digest)
    return None if row is None else _developer(row)


async def insert_token(conn: Conn, developer_id: int, digest: bytes) -> None:
    await conn.execute("INSERT INTO developer_tokens (token_hash, developer_id) VALUES ($1, $2)",
                       digest, developer_id)


async def update_developer(conn: Conn, developer_id: int, changes: Mapping[str, Any]) -> Developer:
    sets, values = _assignments(changes)
    row = await conn.fetchrow(f"UPDATE developers SET {sets} WHERE id = $1 RETURNING *",
                              developer_id, *values)
    return _developer(row)


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
