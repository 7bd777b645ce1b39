"""The phone side's reads and writes: a dialled number's route, a caller's live session,
PIN failures, takes as they are recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ivr.core.db import Conn
from ivr.recorder.models import PhoneNumber, Recorder, Session
from ivr.recorder.store.recorders import _RECORDER_EXTRAS, _recorder_of
from ivr.recorder.store.sessions import _SESSION_SELECT, _session


async def number_route(conn: Conn, number: str
                       ) -> tuple[PhoneNumber, list[tuple[Recorder, bool]]] | None:
    """A dialled number and (recorder, dedicated) for every recorder assigned to it, in one
    round trip (every call starts with it). The dialled string is matched against each
    number's dial forms (+15125550100, 15125550100, 5125550100: numbers.dial_forms); were two
    numbers of different countries to share a national form, the oldest answers."""
    rows = await conn.fetch(
        "WITH hit AS (SELECT * FROM phone_numbers WHERE dial_forms @> ARRAY[$1::text]"
        " ORDER BY array_position(dial_forms, $1::text), id LIMIT 1)"
        " SELECT hit.id AS number_id, hit.phone_number_key AS number_key, hit.number AS digits,"
        " hit.display_number, hit.country, rn.dedicated, v.*," + _RECORDER_EXTRAS +
        " FROM hit LEFT JOIN recorder_numbers rn ON rn.phone_number_id = hit.id"
        " LEFT JOIN voice_recorders v ON v.id = rn.recorder_id ORDER BY v.id", number)
    if not rows:
        return None
    first = rows[0]
    phone = PhoneNumber(id=first["number_id"], phone_number_key=first["number_key"],
                        number=first["digits"], display_number=first["display_number"],
                        country=first["country"])
    recorders = [(_recorder_of(r), bool(r["dedicated"])) for r in rows if r["id"] is not None]
    return phone, recorders


async def live_session_for_caller(conn: Conn, number_id: int,
                                  caller_id: str) -> Session | None:
    """A live session keyed to this caller id (never a PIN session that happens to match)."""
    row = await conn.fetchrow(
        _SESSION_SELECT + " JOIN session_pins p ON p.session_id = s.id"
        " WHERE p.live AND p.phone_number_id = $1 AND s.caller_id = $2"
        " AND (s.state <> 'created' OR s.expires_at > now())", number_id, caller_id)
    return None if row is None else _session(row)


async def pin_failures_since(conn: Conn, number_id: int, caller_id: str,
                             seconds: int) -> tuple[int, int]:
    """Recent failures (on this number, by this caller id)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS on_number,"
        " count(*) FILTER (WHERE caller_id <> '' AND caller_id = $2) AS by_caller"
        " FROM pin_failures WHERE phone_number_id = $1"
        " AND failed_at > now() - make_interval(secs => $3)",
        number_id, caller_id, float(seconds))
    return int(row["on_number"]), int(row["by_caller"])


async def insert_pin_failure(conn: Conn, number_id: int, caller_id: str) -> None:
    await conn.execute("INSERT INTO pin_failures (phone_number_id, caller_id) VALUES ($1, $2)",
                       number_id, caller_id)


async def insert_pending_take(conn: Conn, recording_id: int, session_id: int,
                              channel_id: str, asterisk_name: str | None,
                              quality: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """A take row for audio about to be stored: (take id, take number)."""
    # One statement: the recording's row lock serializes take numbers; the UNIQUE
    # (recording_id, take_number) constraint backs it.
    row = await conn.fetchrow(
        "WITH lock AS (SELECT id FROM recordings WHERE id = $1 FOR UPDATE)"
        " INSERT INTO takes (recording_id, session_id, take_number, status, channel_id,"
        " asterisk_name, quality) SELECT $1, $2, (SELECT coalesce(max(take_number), 0) + 1"
        " FROM takes WHERE recording_id = (SELECT id FROM lock)), 'pending', $3, $4, $5::jsonb"
        " RETURNING id, take_number", recording_id, session_id, channel_id, asterisk_name,
        None if quality is None else orjson.dumps(quality).decode())
    return int(row["id"]), int(row["take_number"])


async def update_take(conn: Conn, take_id: int, changes: Mapping[str, Any]) -> None:
    assert all(name.isidentifier() for name in changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, 2))
    await conn.execute(f"UPDATE takes SET {sets} WHERE id = $1", take_id, *changes.values())


async def accepted_take_number(conn: Conn, recording_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT t.take_number FROM recordings r JOIN takes t ON t.id = r.accepted_take_id"
        " WHERE r.id = $1", recording_id)
    return None if value is None else int(value)


async def live_session_of_recording(conn: Conn, recording_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT session_id FROM session_recordings WHERE recording_id = $1 AND live",
        recording_id)
    return None if value is None else int(value)


async def live_session_of_list(conn: Conn, list_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT id FROM recording_sessions WHERE list_id = $1"
        " AND state IN ('created', 'called', 'recording') ORDER BY id DESC LIMIT 1", list_id)
    return None if value is None else int(value)


async def lists_for_caller(conn: Conn, recorder_id: int, caller_id: str | None,
                           access_code: str | None) -> list[int]:
    """Lists matching every given identifier, most recently used first."""
    rows = await conn.fetch(
        "SELECT id FROM recording_lists WHERE recorder_id = $1"
        " AND ($2::text IS NULL OR caller_id = $2) AND ($3::text IS NULL OR access_code = $3)"
        " ORDER BY accessed_at DESC, id DESC LIMIT 1", recorder_id, caller_id, access_code)
    return [int(r["id"]) for r in rows]
