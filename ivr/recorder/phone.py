"""What the phone flow asks of the database: who is calling, which session, which recording
next, and each take's fate. Every method is one short transaction; nothing here talks to
Asterisk (flow.py does) so that a take's audio is stored before any row says it exists."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.errors import NotFound
from ivr.core.passwords import verify_password
from ivr.core.patient_pool import DEFAULT_PATIENCE, PatientPool, patiently
from ivr.delivery.outbox import DEFAULT_RETRY_FOR
from ivr.recorder import events, store
from ivr.recorder.errors import LimitReached
from ivr.recorder.events import RecorderEvents
from ivr.recorder.models import LIVE_SESSION_STATES, PhoneNumber, Recorder, Recording, Session

log = logging.getLogger(__name__)

# PIN guessing: a caller id gets this many failures in the window, a number (all callers,
# withheld ids included) many more; past either the caller is told to try later.
PIN_WINDOW_SECONDS = 900
PIN_FAILURES_PER_CALLER = 10
PIN_FAILURES_PER_NUMBER = 100


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """A dialled number and the recorders it serves."""

    number: PhoneNumber
    recorders: tuple[Recorder, ...]
    dedicated: Recorder | None  # a call-initiated recorder owning the number

    def recorder(self, recorder_id: int) -> Recorder | None:
        return next((r for r in self.recorders if r.id == recorder_id), None)


@dataclass(frozen=True, slots=True)
class Take:
    id: int
    number: int


class RecorderPhone:
    def __init__(self, pool: asyncpg.Pool, data_dir: Path, public_url: str = "",
                 retry_for: float = DEFAULT_RETRY_FOR,
                 db_patience: float = DEFAULT_PATIENCE) -> None:
        # A database outage of up to `db_patience` seconds is waited out, not a dropped call
        # (core/patient_pool.py); steps marked @patiently are retried whole when cut off,
        # the others (they add rows) only while getting a connection.
        self.pool = PatientPool(pool, db_patience)
        self.data_dir = data_dir
        # Each state change writes its event (and an accepted take its uploads) into the
        # outbox in the same transaction.
        self.events = RecorderEvents.for_settings(data_dir, public_url, retry_for)

    # --- who is calling ----------------------------------------------------------------------
    @patiently
    async def route(self, dialled: str) -> NumberRoute | None:
        async with self.pool.acquire() as conn:
            found = await store.number_route(conn, dialled)
        if found is None or not found[1]:
            return None
        number, assigned = found
        dedicated = next((r for r, d in assigned if d and r.initiation == "call"), None)
        return NumberRoute(number, tuple(r for r, _ in assigned), dedicated)

    @patiently
    async def recorder(self, recorder_id: int) -> Recorder:
        async with self.pool.acquire() as conn:
            return await store.recorder_by_id(conn, recorder_id)

    @patiently
    async def pin_blocked(self, number_id: int, caller_id: str) -> bool:
        async with self.pool.acquire() as conn:
            on_number, by_caller = await store.pin_failures_since(
                conn, number_id, caller_id, PIN_WINDOW_SECONDS)
        return on_number >= PIN_FAILURES_PER_NUMBER or by_caller >= PIN_FAILURES_PER_CALLER

    @patiently
    async def recorder_password_ok(self, recorder_id: int, digits: str) -> bool:
        """The digits a caller keyed against the recorder password (its keypad form).

        A recorder whose password was set before its keypad form was kept (migration 0012)
        has none: digits equal to the password itself are checked against the password,
        and once they match, the password's hash becomes the keypad form's. A password with letters
        has to be set again before a caller can key it."""
        async with self.pool.acquire() as conn:
            phone_hash, password_hash = await store.recorder_password_hashes(conn, recorder_id)
        if phone_hash is not None:
            return await verify_password(phone_hash, digits)
        if password_hash is None or not await verify_password(password_hash, digits):
            return False
        async with self.pool.acquire() as conn:
            await store.fill_phone_password_hash(conn, recorder_id, password_hash)
        return True

    async def pin_failed(self, number_id: int, caller_id: str) -> None:
        async with self.pool.acquire() as conn:
            await store.insert_pin_failure(conn, number_id, caller_id)

    # The lookups skip sessions past their expiry themselves; marking them expired (and their
    # event) is the periodic sweep's job (`expire_due`), not the caller's wait.
    @patiently
    async def session_by_pin(self, number_id: int, pin: str) -> Session | None:
        async with self.pool.acquire() as conn:
            session_id = await store.live_session_for_pin(conn, number_id, pin)
            return None if session_id is None else await store.session_by_id(conn, session_id)

    @patiently
    async def session_by_caller_id(self, number_id: int, caller_id: str) -> Session | None:
        async with self.pool.acquire() as conn:
            return await store.live_session_for_caller(conn, number_id, caller_id)

    async def expire_due(self, limit: int) -> tuple[int, int]:
        """One batch of the expiry sweep: (sessions expired, 0 files)."""
        async with self.pool.acquire() as conn, conn.transaction():
            expired = await store.expire_due(conn, limit)
            await self.events.sessions(conn, expired, events.SESSION_EXPIRED)
        return len(expired), 0

    # --- the session -------------------------------------------------------------------------
    # `quiet=True` on the phone side's hot changes: nothing goes to the outbox for them (the
    # flow knows there is no callback URL and no upload for this session), so each is one
    # statement, without a transaction around it. Four round trips less per change, on every
    # step a caller waits for (bench/README.md).
    @patiently
    async def mark_called(self, session_id: int, channel_id: str | None = None, *,
                          quiet: bool = False) -> None:
        """The caller is in: `called`, on this channel (a restarted engine ends sessions whose
        channel is gone, see recovery.py)."""
        if quiet:
            async with self.pool.acquire() as conn:
                if await store.mark_called_quiet(conn, session_id, channel_id):
                    return
            raise NotFound("the recording session is no longer live")
        async with self.pool.acquire() as conn, conn.transaction():
            session = await store.session_by_id(conn, session_id, for_update=True)
            if session.state not in LIVE_SESSION_STATES:
                raise NotFound("the recording session is no longer live")
            if session.state == "created":
                await store.set_session_state(conn, session_id, "called", channel_id)
                await self.events.session(conn, session_id, events.SESSION_CALLED)
            elif channel_id is not None:
                await conn.execute("UPDATE recording_sessions SET channel_id = $2 WHERE id = $1",
                                   session_id, channel_id)

    @patiently
    async def recordings(self, session_id: int) -> list[Recording]:
        """The session's recordings in sequence order, as they are now (reorders, inserts and
        deletes made through the API while the caller is on the line show up here)."""
        async with self.pool.acquire() as conn:
            return await store.session_recordings(conn, session_id)

    @patiently
    async def start_take(self, session_id: int, recording_id: int, *,
                         quiet: bool = False) -> bool:
        """Session `recording` on this recording, the recording `recording`. False when the
        recording left the session (deleted) meanwhile. Runs while the take already records:
        a handful of statements, one lock."""
        if quiet:
            async with self.pool.acquire() as conn:
                if await store.start_take_quiet(conn, session_id, recording_id):
                    return True
            # Not applied: the way below finds out why (and changes nothing either).
        async with self.pool.acquire() as conn, conn.transaction():
            session = await store.start_recording(conn, session_id, recording_id)
            if session is None:
                current = await store.session_by_id(conn, session_id)
                if current.state not in ("called", "recording"):
                    raise NotFound("the recording session is not in a call")
                return False
            await conn.execute("UPDATE recordings SET state = 'recording', updated_at = now()"
                               " WHERE id = $1", recording_id)
            await self.events.recording(conn, recording_id, events.RECORDING_STARTED,
                                        recorder_id=session.recorder_id, session=session)
            return True

    async def new_take(self, session_id: int, recording_id: int, channel_id: str,
                       asterisk_name: str | None = None,
                       quality: dict[str, Any] | None = None) -> Take:
        async with self.pool.acquire() as conn:
            take_id, number = await store.insert_pending_take(conn, recording_id, session_id,
                                                              channel_id, asterisk_name, quality)
            return Take(take_id, number)

    @patiently
    async def accept_take(self, session_id: int, recording_id: int, take: Take, *,
                          duration_ms: int, has_wav: bool, has_mp3: bool, caller_id: str | None,
                          touchtone_input: str | None, kept_on_hangup: bool = False,
                          quiet: bool = False) -> bool:
        """The take becomes the recording's audio (its files are already stored). False when
        the recording was deleted meanwhile (the take stays as history)."""
        take_changes = {
            "status": "accepted", "duration_ms": duration_ms, "has_wav_file": has_wav,
            "has_mp3_file": has_mp3, "length_seconds": round(duration_ms / 1000),
            "caller_id": caller_id, "touchtone_input": touchtone_input,
            "kept_on_hangup": kept_on_hangup}
        recording_changes = {
            "state": "recorded", "recording_length": round(duration_ms / 1000),
            "has_wav_file": has_wav, "has_mp3_file": has_mp3, "caller_id": caller_id,
            "touchtone_input": touchtone_input, "accepted_take_id": take.id,
            "audio_deleted_at": None}
        if quiet:
            async with self.pool.acquire() as conn:
                return await store.accept_take_quiet(conn, session_id, recording_id, take.id,
                                                     take_changes, recording_changes)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.update_take(conn, take.id, take_changes)
            if not await store.update_recording(conn, recording_id, recording_changes):
                return False  # deleted meanwhile
            session = await store.leave_recording_state(conn, session_id)
            await self.events.uploads(conn, recording_id, take.id, take.number,
                                      [ext for ext, has in (("wav", has_wav), ("mp3", has_mp3))
                                       if has])
            await self.events.recording(conn, recording_id, events.RECORDING_RECORDED,
                                        recorder_id=session.recorder_id, session=session)
            return True

    @patiently
    async def discard_take(self, take: Take, duration_ms: int = 0) -> None:
        async with self.pool.acquire() as conn:
            await store.update_take(conn, take.id, {"status": "discarded",
                                                    "duration_ms": duration_ms})

    @patiently
    async def leave_recording(self, session_id: int, recording_id: int) -> None:
        """No take was accepted: the recording keeps the audio it had."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE recordings SET updated_at = now(), state = CASE"
                " WHEN NOT (has_wav_file OR has_mp3_file) THEN 'unrecorded'"
                " WHEN EXISTS (SELECT 1 FROM session_recordings sr JOIN recording_sessions s"
                "   ON s.id = sr.session_id WHERE sr.recording_id = recordings.id AND sr.live"
                "   AND s.state IN ('created', 'called', 'recording')) THEN 'rerecord'"
                " ELSE 'recorded' END WHERE id = $1 AND state = 'recording'", recording_id)
            await store.leave_recording_state(conn, session_id)

    @patiently
    async def resumable(self, channel_id: str) -> Session | None:
        """The live session this channel was voicing, if any (a restarted engine resumes it)."""
        async with self.pool.acquire() as conn:
            session_id = await conn.fetchval(
                "SELECT id FROM recording_sessions WHERE channel_id = $1"
                " AND state IN ('called', 'recording') ORDER BY id DESC LIMIT 1", channel_id)
            return None if session_id is None else await store.session_by_id(conn, session_id)

    @patiently
    async def abandon_take(self, session: Session) -> None:
        """The take in progress or under review when the engine stopped: the caller never
        confirmed it, so it is history (discarded) and the recording is as it was; the
        resumed call records it again."""
        async with self.pool.acquire() as conn:
            await conn.execute("UPDATE takes SET status = 'discarded' WHERE session_id = $1"
                               " AND status = 'pending'", session.id)
        if session.state == "recording" and session.current_recording_id is not None:
            await self.leave_recording(session.id, session.current_recording_id)

    @patiently
    async def session_failed(self, session_id: int, code: str, reason: str) -> None:
        """The call voicing the session failed on our side: why, for the API and console."""
        async with self.pool.acquire() as conn:
            await store.set_session_failure(conn, session_id, code, reason)

    @patiently
    async def end_session(self, session_id: int, *, quiet: bool = False) -> None:
        if quiet:
            async with self.pool.acquire() as conn:
                await store.end_session_quiet(conn, session_id)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            session = await store.session_by_id(conn, session_id, for_update=True)
            if session.state in LIVE_SESSION_STATES:
                await store.set_session_state(conn, session_id, "ended")
                await self.events.session(conn, session_id, events.SESSION_ENDED)

    # --- call-initiated apps -----------------------------------------------------------------
    @patiently
    async def find_list(self, recorder: Recorder, caller_id: str | None,
                        access_code: str | None) -> int | None:
        async with self.pool.acquire() as conn:
            found = await store.lists_for_caller(conn, recorder.id, caller_id, access_code)
            return found[0] if found else None

    async def create_list(self, recorder: Recorder, caller_id: str | None,
                          access_code: str | None) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            return await store.insert_list(conn, recorder.id, keys.new_key(), {
                "caller_id": caller_id, "access_code": access_code})

    async def open_call_session(self, recorder: Recorder, list_id: int,
                                channel_id: str | None = None) -> Session:
        """A session for a caller who called in: already `called`, holding the list's
        placeholders not yet voiced (and held by no other live session); recordings with audio
        stay as they are, the caller adds new ones. Its PIN is never live on a number."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM recording_lists WHERE id = $1 FOR UPDATE", list_id)
            session_id = await store.insert_session(
                conn, keys.new_key(), recorder.id, list_id, keys.new_pin(recorder.pin_length),
                None, recorder.pin_ttl_seconds)
            await store.set_session_state(conn, session_id, "called", channel_id)
            ids = [r["id"] for r in await store.recordings_of_list(conn, list_id)
                   if not (r["has_wav_file"] or r["has_mp3_file"])]
            locked = await store.locked_recording_ids(conn, ids)
            await store.add_session_recordings(conn, session_id,
                                               [i for i in ids if i not in locked])
            await conn.execute("UPDATE recording_lists SET accessed_at = now() WHERE id = $1",
                               list_id)
            # The caller is already on the line: created and called at once.
            await self.events.session(conn, session_id, events.SESSION_CREATED)
            await self.events.session(conn, session_id, events.SESSION_CALLED)
            return await store.session_by_id(conn, session_id)

    async def add_recording(self, session_id: int, list_id: int) -> Recording:
        """A new recording at the end of the list, in this session (call-initiated callers
        record as many as max_recordings allows)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM recording_lists WHERE id = $1 FOR UPDATE",
                                      list_id)
            ids = await store.recording_ids_in_order(conn, list_id)
            if row["max_recordings"] is not None and len(ids) >= row["max_recordings"]:
                raise LimitReached("the list holds max_recordings recordings already")
            used = await store.used_sequences(conn, list_id)
            new_id = await store.insert_recording(conn, list_id, keys.new_key(),
                                                  max(used, default=0) + 1,
                                                  keys.new_play_key(), {})
            await store.add_session_recordings(conn, session_id, [new_id])
            (recording,) = await store.touch_recordings(conn, [new_id])
            return recording
