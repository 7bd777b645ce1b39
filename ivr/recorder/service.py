"""The recorder's operations, shared by /vr, /v1, the console, the CLI and the phone flow. Each
public method is one transaction: it either does all of its writes or none. Rules that concern
one list (sequences, max_recordings, session locks) run with the list row locked FOR UPDATE.

RecorderService is one object for every face, written in parts, each a module, each part
building on the one before: service_accounts.py (developers, phone numbers), then
service_recorders.py (recorders, prompts, passwords), then service_recordings.py (lists,
recordings), then this module (sessions, deliveries). Checks on input are in rules.py."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound
from ivr.delivery import outbox
from ivr.recorder import events, store
from ivr.recorder.errors import NoPhoneNumber, RecorderNotYours, RecordingsLocked, SessionInUse
from ivr.recorder.models import LIVE_SESSION_STATES, Developer, Recorder, Session, SessionView
from ivr.recorder.rules import DELIVERY_STATES, PIN_ATTEMPTS, Supplied, check_fetch_url
from ivr.recorder.service_recordings import RecordingOps

log = logging.getLogger(__name__)


class RecorderService(RecordingOps):
    async def start_session(self, developer: Developer, recorder_key: str, list_key: str,
                            recording_keys: list[str], caller_id: str | None, overwrite: bool,
                            password: Supplied, callback_url: str | None = None) -> SessionView:
        if callback_url is not None:
            check_fetch_url("callback_url", callback_url, self.allow_private_urls)
        async with self.pool.acquire() as conn:
            await self._expire_due(conn)
            async with conn.transaction():
                recorder, lrow = await self._list(conn, developer, recorder_key, list_key,
                                                  for_update=True)
                await self._require(password, lrow, "list", "access")
                await self._require(password, lrow, "list", "update")
                if not recorder.phone_numbers:
                    raise NoPhoneNumber(f"voice recorder '{recorder_key}' has no phone number")
                rows = {r["recording_key"]: r for r in
                        await store.recordings_of_list(conn, lrow["id"])}
                missing = [k for k in recording_keys if k not in rows]
                if missing:
                    raise NotFound(f"no recording {', '.join(missing)} in list '{list_key}'")
                wanted = [rows[k] for k in recording_keys]
                for row in wanted:
                    await self._require(password, row, "recording", "update")
                number_ids = [n.id for n in recorder.phone_numbers]
                if caller_id is not None:
                    await self._clear_caller_sessions(conn, recorder, number_ids, caller_id,
                                                      overwrite)
                locked = await store.locked_recording_ids(conn, [r["id"] for r in wanted])
                included = [r["id"] for r in wanted if r["id"] not in locked]
                excluded = [r["id"] for r in wanted if r["id"] in locked]
                if not included:
                    raise RecordingsLocked(
                        "every requested recording is being voiced in another live recording "
                        "session", [await store.recording_by_id(conn, i) for i in excluded])
                session_id, pin = await self._insert_session(conn, recorder, lrow["id"],
                                                             number_ids, caller_id, callback_url)
                await store.add_session_recordings(conn, session_id, included)
                await store.mark_rerecord(conn, included)
                await self.events.session(conn, session_id, events.SESSION_CREATED)
                return SessionView(
                    session=await store.session_by_id(conn, session_id), pin=pin,
                    phone_numbers=recorder.phone_numbers,
                    recordings=tuple(await store.touch_recordings(conn, included)),
                    excluded=tuple(await store.touch_recordings(conn, excluded)),
                )

    async def _clear_caller_sessions(self, conn: Conn, recorder: Recorder,
                                     number_ids: list[int], caller_id: str,
                                     overwrite: bool) -> None:
        for session_id in await store.live_sessions_with_pin(conn, number_ids, caller_id):
            other = await store.session_by_id(conn, session_id, for_update=True)
            if not overwrite or other.recorder_id != recorder.id:
                raise SessionInUse(f"a live recording session is keyed to caller id {caller_id}"
                                   + ("; overwrite=true replaces it" if not overwrite else
                                      " on another voice recorder"))
            await store.set_session_state(conn, session_id, "expired")
            await self.events.session(conn, session_id, events.SESSION_EXPIRED)

    async def _insert_session(self, conn: Conn, recorder: Recorder, list_id: int,
                              number_ids: list[int], caller_id: str | None,
                              callback_url: str | None) -> tuple[int, str]:
        for _ in range(PIN_ATTEMPTS):
            pin = caller_id or keys.new_pin(recorder.pin_length)
            try:
                async with conn.transaction():
                    session_id = await store.insert_session(
                        conn, keys.new_key(), recorder.id, list_id, pin, caller_id,
                        recorder.pin_ttl_seconds, callback_url)
                    for number_id in number_ids:
                        await store.insert_pin(conn, session_id, number_id, pin)
                    return session_id, pin
            except asyncpg.UniqueViolationError:
                if caller_id is not None:
                    raise SessionInUse(f"a live recording session is keyed to caller id "
                                       f"{caller_id}") from None
        raise SessionInUse("no free PIN on this recorder's numbers; try again later")

    async def _own_session(self, conn: Conn, developer: Developer, key: str, *,
                           for_update: bool = False) -> Session:
        session = await store.session_by_key(conn, key, for_update=for_update)
        if session is None:
            raise NotFound(f"recording session '{key}' not found")
        recorder = await store.recorder_by_id(conn, session.recorder_id)
        if recorder.developer_id != developer.id:
            raise RecorderNotYours(f"recording session '{key}' belongs to another developer")
        return session

    async def _view(self, conn: Conn, session: Session) -> SessionView:
        recorder = await store.recorder_by_id(conn, session.recorder_id)
        current = None
        if session.state == "recording" and session.current_recording_id is not None:
            current = await store.recording_by_id(conn, session.current_recording_id)
        return SessionView(session, None, recorder.phone_numbers,
                           tuple(await store.session_recordings(conn, session.id)),
                           current_recording=current)

    async def session_status(self, developer: Developer, session_key: str) -> SessionView:
        async with self.pool.acquire() as conn:
            session = await self._own_session(conn, developer, session_key)
            # Status is polled: it writes only when this very session is overdue (the periodic
            # sweep would mark it a little later; the answer must not wait for that).
            if session.state == "created" and session.expires_at <= datetime.now(UTC):
                await self._expire_due(conn)
                session = await store.session_by_id(conn, session.id)
            return await self._view(conn, session)

    async def expire_session(self, developer: Developer, session_key: str) -> SessionView:
        """Expire a live session and unlock its recordings; a session that already ended or
        expired is left as it is (the command is safe to repeat)."""
        async with self.pool.acquire() as conn:
            await self._expire_due(conn)
            async with conn.transaction():
                session = await self._own_session(conn, developer, session_key, for_update=True)
                if session.state in LIVE_SESSION_STATES:
                    await store.set_session_state(conn, session.id, "expired")
                    await self.events.session(conn, session.id, events.SESSION_EXPIRED)
                return await self._view(conn, await store.session_by_id(conn, session.id))

    async def deliveries(self, developer: Developer, recorder_key: str, state: str | None,
                         limit: int) -> list[dict[str, Any]]:
        """The recorder's callbacks and uploads, newest first: pending, delivered or failed,
        with attempts and the last error."""
        if state is not None and state not in DELIVERY_STATES:
            raise InvalidParameter("state", f"state must be one of {', '.join(DELIVERY_STATES)}")
        async with self.pool.acquire() as conn:
            recorder = await self._own_recorder(conn, developer, recorder_key)
            return await outbox.of_owner(conn, f"recorder:{recorder.id}", state, limit)

    async def retry_delivery(self, developer: Developer, recorder_key: str,
                             event_id: str) -> None:
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            raise InvalidParameter("event_id", "event_id must be a UUID") from None
        async with self.pool.acquire() as conn:
            recorder = await self._own_recorder(conn, developer, recorder_key)
            if not await outbox.retry(conn, f"recorder:{recorder.id}", parsed,
                                      self.events.retry_for):
                raise NotFound(f"no failed delivery {event_id} on voice recorder "
                               f"'{recorder_key}'")
