"""The console call log's SQL for calls that are not a recorder's: a call-control application's
(`cc_calls`) and a dialer job's (`dialer_calls`), listed for the developer the application or
dialer account belongs to (`developer_id`, migration 0036), with a stable code and a reason when
the call failed (error_codes.py). Read-only, over rows the engine writes anyway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.core.db import Conn

# Why a call-control call failed: not placed (its trunk down, refused), or an outbound call
# that ended unanswered (busy or not answered, by its Asterisk hang-up cause).
_CC_CODE = """CROSS JOIN LATERAL (SELECT CASE
      WHEN k.state = 'failed' AND k.cause = 'trunk down' THEN 'call_trunk_down'
      WHEN k.state = 'failed' THEN 'call_failed'
      WHEN k.direction = 'outbound' AND k.ended_at IS NOT NULL AND k.answered_at IS NULL
           THEN CASE WHEN k.cause ILIKE '%busy%' THEN 'call_busy' ELSE 'call_not_answered' END
      END AS code) x"""
_CC_STATE = """CASE WHEN k.ended_at IS NULL THEN 'in_progress' WHEN x.code IS NOT NULL THEN 'failed'
                    WHEN k.cause = 'lost' THEN 'lost' ELSE 'completed' END"""
CC_LIST = f"""
SELECT 'callcontrol', 'cc-' || k.voice_id, k.created_at, k.ended_at, k.from_number,
       k.to_number, {_CC_STATE}, x.code, CASE WHEN x.code IS NOT NULL THEN k.cause END,
       'app ' || coalesce(nullif(a.name, ''), a.app_id), k.direction, 0::bigint
  FROM cc_applications a JOIN cc_calls k ON k.application_id = a.id {_CC_CODE}
 WHERE a.developer_id = $1"""

# A dialer call is listed once it has been dialled; busy, unanswered and failed ones are
# failures (the account's job goes on; a call with attempts left is dialled again later).
_DIALER_CODE = """CROSS JOIN LATERAL (SELECT CASE WHEN d.state = 'dialing' THEN NULL
      WHEN d.outcome = 'busy' THEN 'call_busy' WHEN d.outcome = 'no_answer' THEN 'call_not_answered'
      WHEN d.outcome = 'failed' THEN 'call_failed' END AS code) x"""
_DIALER_STATE = """CASE WHEN d.state = 'dialing' THEN 'in_progress' WHEN x.code IS NOT NULL
                        THEN 'failed' WHEN d.state = 'cancelled' THEN 'cancelled'
                        ELSE 'completed' END"""
_DIALER_REASON = """CASE WHEN x.code IS NOT NULL THEN replace(d.outcome, '_', ' ')
      || coalesce(': Q.850 ' || d.cause || coalesce(' ' || d.cause_name, ''), '') END"""
DIALER_LIST = f"""
SELECT 'dialer', 'dialer-' || d.id, d.started_at,
       CASE WHEN d.state <> 'dialing' THEN coalesce(d.hang_at, d.updated_at) END,
       coalesce(j.sender_id, ''), d.number, {_DIALER_STATE}, x.code, {_DIALER_REASON},
       'dialer job ' || coalesce(j.client_job_id, left(j.id::text, 8)), d.message_id, d.id
  FROM dialer_accounts a JOIN dialer_jobs j ON j.account_pk = a.id
  JOIN dialer_calls d ON d.job_id = j.id {_DIALER_CODE}
 WHERE a.developer_id = $1 AND d.started_at IS NOT NULL"""


@dataclass(frozen=True, slots=True)
class OtherCall:
    """One call-control or dialer call of the developer's, for its page."""

    kind: str
    ref: str
    state: str
    failure_code: str | None
    failure_reason: str | None
    caller_id: str
    dialed: str
    owner: str
    direction: str
    started_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    cause: str  # the hang-up cause as stored
    stream: str  # its webhooks' (postbacks') outbox stream
    recordings: list[dict[str, Any]]


async def cc_call(conn: Conn, developer_id: int, voice_id: uuid.UUID) -> OtherCall | None:
    row = await conn.fetchrow(
        f"""SELECT k.*, {_CC_STATE} AS shown, x.code,
                   'app ' || coalesce(nullif(a.name, ''), a.app_id) AS owner
              FROM cc_applications a JOIN cc_calls k ON k.application_id = a.id {_CC_CODE}
             WHERE a.developer_id = $1 AND k.voice_id = $2""", developer_id, voice_id)
    if row is None:
        return None
    recordings = await conn.fetch(
        "SELECT recording_name, state, duration, created_at, ended_at FROM cc_recordings"
        " WHERE voice_id = $1 ORDER BY created_at", voice_id)
    return OtherCall(
        "callcontrol", f"cc-{voice_id}", row["shown"], row["code"],
        row["cause"] if row["code"] else None, row["from_number"], row["to_number"],
        row["owner"], row["direction"], row["created_at"], None, row["answered_at"],
        row["ended_at"], row["cause"] or "", f"voicecall:{voice_id}",
        [dict(r) for r in recordings])


async def dialer_call(conn: Conn, developer_id: int, call_id: int) -> OtherCall | None:
    row = await conn.fetchrow(
        f"""SELECT d.*, {_DIALER_STATE} AS shown, x.code, {_DIALER_REASON} AS reason,
                   coalesce(j.sender_id, '') AS sender,
                   'dialer job ' || coalesce(j.client_job_id, left(j.id::text, 8)) AS owner
              FROM dialer_accounts a JOIN dialer_jobs j ON j.account_pk = a.id
              JOIN dialer_calls d ON d.job_id = j.id {_DIALER_CODE}
             WHERE a.developer_id = $1 AND d.id = $2 AND d.started_at IS NOT NULL""",
        developer_id, call_id)
    if row is None:
        return None
    cause = "" if row["cause"] is None else f"Q.850 {row['cause']} {row['cause_name'] or ''}"
    return OtherCall(
        "dialer", f"dialer-{call_id}", row["shown"], row["code"], row["reason"], row["sender"],
        row["number"], row["owner"], "outbound", row["started_at"], row["ring_at"],
        row["answer_at"], None if row["state"] == "dialing" else row["hang_at"] or
        row["updated_at"], cause.strip(), f"dialer-call:{row['message_id']}", [])


async def deliveries(conn: Conn, stream: str) -> list[dict[str, Any]]:
    """The call's webhooks (call-control events, dialer postbacks), oldest first; bodies and
    secrets left out."""
    rows = await conn.fetch(
        """SELECT event_id, kind, event_type, stream, url, state, attempts, last_status,
                  last_error, created_at, next_attempt_at, settled_at
             FROM outbox WHERE stream = $1 ORDER BY id""", stream)
    return [dict(r) for r in rows]
