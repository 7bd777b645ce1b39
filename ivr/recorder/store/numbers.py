"""Phone numbers and which recorders they are given to."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ivr.core.db import Conn
from ivr.recorder.models import PhoneNumber


def _number(row: asyncpg.Record) -> PhoneNumber:
    return PhoneNumber(row["id"], row["phone_number_key"], row["number"], row["display_number"],
                       row["country"])


async def insert_number(conn: Conn, key: str, number: str, display: str, country: str,
                        dial_forms: Sequence[str]) -> PhoneNumber:
    row = await conn.fetchrow(
        "INSERT INTO phone_numbers (phone_number_key, number, display_number, country,"
        " dial_forms) VALUES ($1, $2, $3, $4, $5) RETURNING *",
        key, number, display, country, list(dial_forms))
    return _number(row)


async def number_by_forms(conn: Conn, forms: Sequence[str]) -> PhoneNumber | None:
    """The number stored as the first of these forms that is one, else None."""
    row = await conn.fetchrow(
        "SELECT * FROM phone_numbers WHERE number = ANY($1::text[])"
        " ORDER BY array_position($1::text[], number) LIMIT 1", list(forms))
    return None if row is None else _number(row)


async def recorders_on_number(conn: Conn, number_id: int) -> list[tuple[int, str, str, bool]]:
    """(id, key, initiation, has another number) of every recorder given this number."""
    rows = await conn.fetch(
        "SELECT v.id, v.recorder_key, v.initiation, EXISTS (SELECT 1 FROM recorder_numbers o"
        " WHERE o.recorder_id = v.id AND o.phone_number_id <> $1) AS others"
        " FROM recorder_numbers rn JOIN voice_recorders v ON v.id = rn.recorder_id"
        " WHERE rn.phone_number_id = $1 ORDER BY v.id", number_id)
    return [(r["id"], r["recorder_key"], r["initiation"], r["others"]) for r in rows]


async def live_sessions_on_number(conn: Conn, number_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM session_pins p JOIN recording_sessions s ON s.id = p.session_id"
        " WHERE p.phone_number_id = $1 AND p.live"
        " AND s.state IN ('created', 'called', 'recording')", number_id))


async def unassign_number(conn: Conn, number_id: int) -> None:
    await conn.execute("DELETE FROM recorder_numbers WHERE phone_number_id = $1", number_id)


async def delete_number(conn: Conn, number_id: int) -> None:
    """With its sessions' PINs and PIN failures on it (the schema cascades those)."""
    await conn.execute("DELETE FROM phone_numbers WHERE id = $1", number_id)


async def all_numbers(conn: Conn) -> list[tuple[PhoneNumber, int, bool]]:
    """Every number with how many recorders use it and whether one has it dedicated."""
    rows = await conn.fetch(
        "SELECT n.*, count(rn.recorder_id) AS recorders, bool_or(coalesce(rn.dedicated, false))"
        " AS dedicated FROM phone_numbers n LEFT JOIN recorder_numbers rn"
        " ON rn.phone_number_id = n.id GROUP BY n.id ORDER BY n.number")
    return [(_number(r), r["recorders"], r["dedicated"]) for r in rows]


async def lock_numbers(conn: Conn) -> None:
    """Assignments are rare; one lock over the table keeps 'dedicated' and 'shared' apart."""
    await conn.execute("LOCK TABLE recorder_numbers IN SHARE ROW EXCLUSIVE MODE")


async def assign_number(conn: Conn, recorder_id: int, number_id: int, dedicated: bool) -> None:
    await conn.execute(
        "INSERT INTO recorder_numbers (recorder_id, phone_number_id, dedicated)"
        " VALUES ($1, $2, $3)",
        recorder_id, number_id, dedicated)


async def unassign_numbers(conn: Conn, recorder_id: int) -> None:
    await conn.execute("DELETE FROM recorder_numbers WHERE recorder_id = $1", recorder_id)
