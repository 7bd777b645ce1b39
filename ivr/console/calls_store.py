"""The console call log's SQL, read-only, over rows the engine writes anyway: `calls` (each
call's start, end, outcome and failure), the recording session its caller voiced (linked by
`recording_sessions.channel_id`, set when the caller gets in), that call's takes, the PIN
failures of its caller on the recorder's numbers, and the session's outbox rows. Nothing here
is written on a call's way; a call that never reached a session (a PIN that never matched, a
caller hanging up during the welcome) is linked to no developer and is not listed."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ivr.console import other_calls, store
from ivr.core.db import Conn

# How a call ended, as the list filters it: `failed` wins over how the line was dropped.
STATES = ("in_progress", "completed", "caller_hung_up", "failed", "lost", "cancelled")

_STATE = """CASE WHEN c.ended_at IS NULL THEN 'in_progress'
                 WHEN c.outcome = 'error'
                      OR coalesce(c.failure_code, s.failure_code) IS NOT NULL THEN 'failed'
                 WHEN c.outcome = 'caller hung up' THEN 'caller_hung_up'
                 ELSE coalesce(c.outcome, 'completed') END"""

_CALLS = f"""
SELECT c.id, c.channel_id, c.direction, c.caller_id, c.dialed, c.flow, c.started_at,
       c.ended_at, c.outcome, {_STATE} AS state,
       coalesce(c.failure_code, s.failure_code) AS failure_code,
       coalesce(c.failure_reason, s.failure_reason) AS failure_reason,
       s.id AS session_id, s.session_key, s.state AS session_state, s.created_at AS session_created,
       s.called_at, s.ended_at AS session_ended, v.id AS recorder_id, v.recorder_key,
       v.name AS recorder_name, l.list_key, l.access_password_hash IS NOT NULL AS list_locked
  FROM voice_recorders v
  JOIN recording_sessions s ON s.recorder_id = v.id AND s.channel_id IS NOT NULL
  JOIN calls c ON c.channel_id = s.channel_id
  JOIN recording_lists l ON l.id = s.list_id
 WHERE v.developer_id = $1"""


@dataclass(frozen=True, slots=True)
class Filters:
    number: str | None = None  # digits (and +) found in the caller id or the dialled number
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallRow(store.CallRow):
    """A call of the developer's: its `calls` row, how it ended, its session and recorder."""

    id: int
    state: str
    failure_code: str | None
    failure_reason: str | None
    session_id: int
    session_key: str
    session_state: str
    session_created: datetime
    called_at: datetime | None
    session_ended: datetime | None
    recorder_id: int
    recorder_key: str
    recorder_name: str
    list_key: str
    list_locked: bool


_CALL_FIELDS = tuple(f.name for f in fields(CallRow))


def _row(r: Any) -> CallRow:
    return CallRow(**{k: r[k] for k in _CALL_FIELDS})


@dataclass(frozen=True, slots=True)
class ListRow:
    """A call in the list, whichever part of the product it was: a recorder's (`calls` and
    its session), a call-control application's (`cc_calls`) or a dialer job's
    (`dialer_calls`) of an application or account linked to the developer."""

    kind: str  # "recorder", "callcontrol" or "dialer"
    ref: str  # its id in its page's URL: 12, cc-<voice id>, dialer-<id>
    started_at: datetime
    ended_at: datetime | None
    caller_id: str
    dialed: str
    state: str
    failure_code: str | None
    failure_reason: str | None
    owner: str  # the recorder, application or job it belongs to
    detail: str  # its session, direction or message id


async def calls_page(conn: Conn, developer_id: int, f: Filters, limit: int,
                     offset: int) -> tuple[int, list[ListRow]]:
    """One page of the developer's calls of every kind, newest first, and how many match."""
    rows = await conn.fetch(
        f"""SELECT q.*, count(*) OVER () AS found FROM (
              SELECT 'recorder' AS kind, c.id::text AS ref, c.started_at, c.ended_at,
                     c.caller_id, c.dialed, {_STATE} AS state,
                     coalesce(c.failure_code, s.failure_code) AS failure_code,
                     coalesce(c.failure_reason, s.failure_reason) AS failure_reason,
                     'recorder ' || v.recorder_key AS owner, s.session_key AS detail, c.id AS n
                FROM voice_recorders v
                JOIN recording_sessions s ON s.recorder_id = v.id AND s.channel_id IS NOT NULL
                JOIN calls c ON c.channel_id = s.channel_id
               WHERE v.developer_id = $1
              UNION ALL {other_calls.CC_LIST}
              UNION ALL {other_calls.DIALER_LIST}) q
             WHERE ($2::text IS NULL OR q.caller_id LIKE $2 OR q.dialed LIKE $2)
               AND ($4::timestamptz IS NULL OR q.started_at >= $4)
               AND ($5::timestamptz IS NULL OR q.started_at < $5)
               AND ($3::text IS NULL OR q.state = $3)
             ORDER BY q.started_at DESC, q.n DESC LIMIT $6 OFFSET $7""",
        developer_id, None if f.number is None else f"%{f.number}%", f.state, f.since,
        f.until, limit, offset)
    return (int(rows[0]["found"]) if rows else 0), [
        ListRow(**{k: r[k] for k in _LIST_FIELDS}) for r in rows]


_LIST_FIELDS = tuple(f.name for f in fields(ListRow))


async def call(conn: Conn, developer_id: int, call_id: int) -> CallRow | None:
    row = await conn.fetchrow(_CALLS + " AND c.id = $2", developer_id, call_id)
    return None if row is None else _row(row)


@dataclass(frozen=True, slots=True)
class TakeRow:
    id: int
    take_number: int
    status: str
    duration_ms: int
    kept_on_hangup: bool
    created_at: datetime
    has_wav_file: bool
    has_mp3_file: bool
    audio_deleted_at: datetime | None
    touchtone_input: str | None
    upload_state: str | None
    recording_key: str
    recording_name: str | None
    play_key: str
    locked: bool  # the list or the recording has an access password: no player
    accepted: bool


_TAKES = """
SELECT t.id, t.take_number, t.status, t.duration_ms, t.kept_on_hangup, t.created_at,
       t.has_wav_file, t.has_mp3_file, t.audio_deleted_at, t.touchtone_input, t.upload_state,
       r.recording_key, r.name AS recording_name, r.play_key,
       (r.access_password_hash IS NOT NULL OR l.access_password_hash IS NOT NULL) AS locked,
       coalesce(r.accepted_take_id = t.id, false) AS accepted
  FROM recordings r
  JOIN recording_lists l ON l.id = r.list_id
  JOIN voice_recorders v ON v.id = l.recorder_id
  JOIN takes t ON t.recording_id = r.id"""


async def takes_of_call(conn: Conn, session_id: int, channel_id: str) -> list[TakeRow]:
    rows = await conn.fetch(
        _TAKES + """ JOIN session_recordings sr ON sr.recording_id = r.id
         WHERE sr.session_id = $1 AND t.session_id = $1 AND t.channel_id = $2
         ORDER BY t.created_at, t.id""", session_id, channel_id)
    return [TakeRow(**dict(r)) for r in rows]


async def take(conn: Conn, developer_id: int, take_id: int) -> TakeRow | None:
    row = await conn.fetchrow(_TAKES + " WHERE t.id = $1 AND v.developer_id = $2",
                              take_id, developer_id)
    return None if row is None else TakeRow(**dict(row))


async def pin_failures(conn: Conn, c: CallRow) -> list[datetime]:
    """When this call's caller had a PIN or password refused on the recorder's numbers before
    getting in. Withheld caller ids are not matched: two anonymous callers look alike."""
    if not c.caller_id:
        return []
    rows = await conn.fetch(
        """SELECT failed_at FROM pin_failures
            WHERE caller_id = $1 AND failed_at >= $2 AND failed_at <= $3
              AND phone_number_id IN (SELECT phone_number_id FROM recorder_numbers
                                       WHERE recorder_id = $4)
            ORDER BY failed_at""",
        c.caller_id, c.started_at, c.called_at or c.ended_at or datetime.now().astimezone(),
        c.recorder_id)
    return [r["failed_at"] for r in rows]


async def deliveries(conn: Conn, c: CallRow, take_ids: list[int]) -> list[dict[str, Any]]:
    """The session's callbacks (its stream, session.created included: a failing one holds
    back every later event of the session) and the uploads of this call's takes, oldest
    first; bodies and secrets left out."""
    rows = await conn.fetch(
        """SELECT event_id, kind, event_type, stream, url, state, attempts, last_status,
                  last_error, created_at, next_attempt_at, settled_at
             FROM outbox
            WHERE owner = $1 AND (stream = $2 OR subject = ANY($3::text[]))
            ORDER BY id""",
        f"recorder:{c.recorder_id}", f"session:{c.session_key}",
        [f"take:{t}" for t in take_ids])
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class SessionTake:
    take_number: int
    status: str
    created_at: datetime
    recording_key: str


async def session_takes(conn: Conn, session_id: int) -> list[SessionTake]:
    """Every take of a session, in the order they were stored (its state history)."""
    rows = await conn.fetch(
        """SELECT t.take_number, t.status, t.created_at, r.recording_key
             FROM session_recordings sr
             JOIN recordings r ON r.id = sr.recording_id
             JOIN takes t ON t.recording_id = r.id AND t.session_id = sr.session_id
            WHERE sr.session_id = $1 ORDER BY t.created_at, t.id""", session_id)
    return [SessionTake(**dict(r)) for r in rows]


async def call_of_session(conn: Conn, session_id: int) -> int | None:
    """The call log's id of the call the session's caller is (or was) on."""
    value = await conn.fetchval(
        "SELECT c.id FROM recording_sessions s JOIN calls c ON c.channel_id = s.channel_id"
        " WHERE s.id = $1", session_id)
    return None if value is None else int(value)
