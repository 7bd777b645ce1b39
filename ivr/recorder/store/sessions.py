"""Recording sessions: their PINs, their recordings, their states, and the takes they
record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ivr.core.db import Conn
from ivr.recorder.models import Recording, Session
from ivr.recorder.store.recordings import _RECORDING_SELECT, _recording

_SESSION_SELECT = """
    SELECT s.*, v.recorder_key, l.list_key
      FROM recording_sessions s
      JOIN voice_recorders v ON v.id = s.recorder_id
      JOIN recording_lists l ON l.id = s.list_id"""


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id=row["id"], session_key=row["session_key"], recorder_id=row["recorder_id"],
        recorder_key=row["recorder_key"], list_id=row["list_id"], list_key=row["list_key"],
        caller_id=row["caller_id"], state=row["state"],
        current_recording_id=row["current_recording_id"], created_at=row["created_at"],
        expires_at=row["expires_at"], called_at=row["called_at"], ended_at=row["ended_at"],
        callback_url=row["callback_url"], failure_code=row["failure_code"],
        failure_reason=row["failure_reason"],
    )


async def expire_due(conn: Conn, limit: int | None = None) -> list[int]:
    """Sessions whose PIN was not used in time become "expired" (the trigger releases their
    PINs and recordings). Rows another transaction holds are left for the next sweep.
    Returns the ids expired (at most `limit`), in id order."""
    rows = await conn.fetch(
        "UPDATE recording_sessions SET state = 'expired', ended_at = now() WHERE id IN ("
        " SELECT id FROM recording_sessions WHERE state = 'created' AND expires_at <= now()"
        " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id", limit)
    return sorted(int(r["id"]) for r in rows)


async def insert_session(conn: Conn, key: str, recorder_id: int, list_id: int, pin: str,
                         caller_id: str | None, ttl_seconds: int,
                         callback_url: str | None = None) -> int:
    return int(await conn.fetchval(
        "INSERT INTO recording_sessions (session_key, recorder_id, list_id, pin, caller_id,"
        " expires_at, callback_url) VALUES ($1, $2, $3, $4, $5,"
        " now() + make_interval(secs => $6), $7) RETURNING id",
        key, recorder_id, list_id, pin, caller_id, float(ttl_seconds), callback_url))


async def insert_pin(conn: Conn, session_id: int, number_id: int, pin: str) -> None:
    await conn.execute(
        "INSERT INTO session_pins (session_id, phone_number_id, pin) VALUES ($1, $2, $3)",
        session_id, number_id, pin)


async def live_sessions_with_pin(conn: Conn, number_ids: Sequence[int], pin: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT session_id FROM session_pins WHERE live AND pin = $1"
        " AND phone_number_id = ANY($2::bigint[])", pin, list(number_ids))
    return [r["session_id"] for r in rows]


async def locked_recording_ids(conn: Conn, recording_ids: Sequence[int]) -> set[int]:
    rows = await conn.fetch(
        "SELECT recording_id FROM session_recordings WHERE live"
        " AND recording_id = ANY($1::bigint[])", list(recording_ids))
    return {r["recording_id"] for r in rows}


async def add_session_recordings(conn: Conn, session_id: int, ids: Sequence[int]) -> None:
    await conn.execute(
        "INSERT INTO session_recordings (session_id, recording_id)"
        " SELECT $1, unnest($2::bigint[])", session_id, list(ids))


async def mark_rerecord(conn: Conn, ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE recordings SET state = 'rerecord', updated_at = now()"
        " WHERE id = ANY($1::bigint[]) AND (has_wav_file OR has_mp3_file)", list(ids))


async def session_by_key(conn: Conn, key: str, *, for_update: bool = False) -> Session | None:
    row = await conn.fetchrow(
        _SESSION_SELECT + " WHERE s.session_key = $1"
        + (" FOR UPDATE OF s" if for_update else ""), key)
    return None if row is None else _session(row)


async def session_by_id(conn: Conn, session_id: int, *, for_update: bool = False) -> Session:
    return _session(await conn.fetchrow(
        _SESSION_SELECT + " WHERE s.id = $1" + (" FOR UPDATE OF s" if for_update else ""),
        session_id))


async def session_recording_ids(conn: Conn, session_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT r.id FROM session_recordings sr JOIN recordings r ON r.id = sr.recording_id"
        " WHERE sr.session_id = $1 ORDER BY r.sequence, r.id", session_id)
    return [r["id"] for r in rows]


async def session_recordings(conn: Conn, session_id: int) -> list[Recording]:
    rows = await conn.fetch(
        _RECORDING_SELECT + " JOIN session_recordings s ON s.recording_id = r.id"
        " WHERE s.session_id = $1 ORDER BY r.sequence, r.id", session_id)
    return [_recording(r) for r in rows]


async def set_session_state(conn: Conn, session_id: int, state: str,
                            channel_id: str | None = None) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET state = $2,"
        " called_at = CASE WHEN $2 IN ('called', 'recording') THEN coalesce(called_at, now())"
        "                  ELSE called_at END,"
        " ended_at = CASE WHEN $2 IN ('ended', 'expired') THEN coalesce(ended_at, now())"
        "                 ELSE ended_at END,"
        " current_recording_id = CASE WHEN $2 = 'recording' THEN current_recording_id END,"
        " channel_id = coalesce($3, channel_id)"
        " WHERE id = $1", session_id, state, channel_id)


# The phone side's two per-take session changes, each one statement (the hot path: see
# bench/README.md). The row comes back as _SESSION_SELECT shows it.
_SESSION_OF = """
    SELECT u.*, v.recorder_key, l.list_key FROM u
      JOIN voice_recorders v ON v.id = u.recorder_id
      JOIN recording_lists l ON l.id = u.list_id"""


async def start_recording(conn: Conn, session_id: int, recording_id: int) -> Session | None:
    """The session in a call records this recording of its own; None when the session is not
    in a call or the recording is not (any more) one of its recordings."""
    row = await conn.fetchrow(
        "WITH u AS (UPDATE recording_sessions SET state = 'recording',"
        " called_at = coalesce(called_at, now()), current_recording_id = $2"
        " WHERE id = $1 AND state IN ('called', 'recording') AND EXISTS ("
        "  SELECT 1 FROM session_recordings WHERE session_id = $1 AND recording_id = $2)"
        " RETURNING *)" + _SESSION_OF, session_id, recording_id)
    return None if row is None else _session(row)


async def leave_recording_state(conn: Conn, session_id: int) -> Session:
    """A take settled: a `recording` session is back to `called` (other states stay)."""
    row = await conn.fetchrow(
        "WITH u AS (UPDATE recording_sessions SET"
        " state = CASE WHEN state = 'recording' THEN 'called' ELSE state END,"
        " current_recording_id = CASE WHEN state = 'recording' THEN NULL"
        "                        ELSE current_recording_id END"
        " WHERE id = $1 RETURNING *)" + _SESSION_OF, session_id)
    return _session(row)


# The same changes, for a call whose changes send nothing (no callback URL, no uploads): one
# statement each, no transaction around it (see RecorderPhone's `quiet`).
async def mark_called_quiet(conn: Conn, session_id: int, channel_id: str | None) -> bool:
    """A live session is `called` (if it was `created`) on this channel; False if not live."""
    state = await conn.fetchval(
        "UPDATE recording_sessions SET"
        " state = CASE WHEN state = 'created' THEN 'called' ELSE state END,"
        " called_at = coalesce(called_at, now()), channel_id = coalesce($2, channel_id)"
        " WHERE id = $1 AND state IN ('created', 'called', 'recording') RETURNING state",
        session_id, channel_id)
    return state is not None


async def start_take_quiet(conn: Conn, session_id: int, recording_id: int) -> bool:
    """`start_recording` and the recording's state, at once; False when either did not apply
    (the caller then takes the transactional way, which tells why)."""
    return bool(await conn.fetchval(
        "WITH u AS (UPDATE recording_sessions SET state = 'recording',"
        " called_at = coalesce(called_at, now()), current_recording_id = $2"
        " WHERE id = $1 AND state IN ('called', 'recording') AND EXISTS ("
        "  SELECT 1 FROM session_recordings WHERE session_id = $1 AND recording_id = $2)"
        " RETURNING id),"
        " r AS (UPDATE recordings SET state = 'recording', updated_at = now()"
        "  WHERE id = $2 AND EXISTS (SELECT 1 FROM u) RETURNING id)"
        " SELECT EXISTS (SELECT 1 FROM r)", session_id, recording_id))


async def accept_take_quiet(conn: Conn, session_id: int, recording_id: int, take_id: int,
                            take: Mapping[str, Any], recording: Mapping[str, Any]) -> bool:
    """The take accepted, the recording pointing at it and the session out of `recording`;
    False (the take alone updated) when the recording was deleted meanwhile."""
    assert all(name.isidentifier() for name in (*take, *recording))
    n = len(take)
    take_sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(take, 4))
    rec_sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(recording, 4 + n))
    return bool(await conn.fetchval(
        f"WITH t AS (UPDATE takes SET {take_sets} WHERE id = $3 RETURNING id),"
        f" r AS (UPDATE recordings SET {rec_sets}, updated_at = now() WHERE id = $2"
        "  RETURNING id),"
        " s AS (UPDATE recording_sessions SET"
        "  state = CASE WHEN state = 'recording' THEN 'called' ELSE state END,"
        "  current_recording_id = CASE WHEN state = 'recording' THEN NULL"
        "                         ELSE current_recording_id END"
        "  WHERE id = $1 AND EXISTS (SELECT 1 FROM r) RETURNING id)"
        " SELECT EXISTS (SELECT 1 FROM r)",
        session_id, recording_id, take_id, *take.values(), *recording.values()))


async def set_session_failure(conn: Conn, session_id: int, code: str, reason: str) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET failure_code = $2, failure_reason = $3 WHERE id = $1",
        session_id, code, reason)


async def end_session_quiet(conn: Conn, session_id: int) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET state = 'ended', ended_at = coalesce(ended_at, now()),"
        " current_recording_id = NULL"
        " WHERE id = $1 AND state IN ('created', 'called', 'recording')", session_id)


async def set_current_recording(conn: Conn, session_id: int, recording_id: int | None) -> None:
    await conn.execute("UPDATE recording_sessions SET current_recording_id = $2 WHERE id = $1",
                       session_id, recording_id)


async def live_session_for_pin(conn: Conn, number_id: int, pin: str) -> int | None:
    value = await conn.fetchval(
        "SELECT p.session_id FROM session_pins p JOIN recording_sessions s ON s.id = p.session_id"
        " WHERE p.live AND p.phone_number_id = $1 AND p.pin = $2 AND s.expires_at > now()"
        " OR p.live AND p.phone_number_id = $1 AND p.pin = $2 AND s.state <> 'created'",
        number_id, pin)
    return None if value is None else int(value)


async def next_take_number(conn: Conn, recording_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT coalesce(max(take_number), 0) + 1 FROM takes WHERE recording_id = $1",
        recording_id))


async def insert_take(conn: Conn, recording_id: int, session_id: int | None, number: int,
                      length: int, has_wav: bool, has_mp3: bool, caller_id: str | None,
                      touchtone: str | None) -> int:
    return int(await conn.fetchval(
        "INSERT INTO takes (recording_id, session_id, take_number, length_seconds, has_wav_file,"
        " has_mp3_file, caller_id, touchtone_input) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " RETURNING id", recording_id, session_id, number, length, has_wav, has_mp3, caller_id,
        touchtone))
