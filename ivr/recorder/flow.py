"""The recorder's phone side, as the caller hears it.

API-initiated: the caller dials a recorder's number, hears its welcome, is identified by caller
id (a session keyed to it) or by PIN, then voices each recording of the session in sequence
order: its name (or number), a beep, the take until `#` / max length / silence, then review —
1 keep, 2 listen, 3 record again, `*` skip, 9 done. Call-initiated: a dedicated number; the
caller is identified by caller id and/or access code and records into the list found or
created for them, new recordings up to the list's max_recordings. How a session is voiced once
the caller is in, takes and review: session_flow.py."""

from __future__ import annotations

import contextlib
import logging

from ivr.core.errors import CallHungUp, TelephonyError
from ivr.recorder.models import Recorder, Session
from ivr.recorder.phone import NumberRoute
from ivr.recorder.session_flow import (
    CALLER_ID,
    DIGIT_TIMEOUT,
    INTER_DIGIT_TIMEOUT,
    PIN_TRIES,
    SessionFlow,
    is_quiet,
)
from ivr.recorder.takes import parse_take_name
from ivr.recorder.visit import Visit
from ivr.telephony.call import Call, Said

log = logging.getLogger(__name__)


class RecorderFlow(SessionFlow):
    """How the caller gets in: by caller id or PIN (API-initiated), or into a list found or
    created for them (call-initiated); then SessionFlow voices the session."""

    # --- API-initiated -----------------------------------------------------------------------
    async def api_initiated(self, call: Call, route: NumberRoute) -> None:
        await call.answer()
        # A shared number does not know the recorder before the PIN: its default prompts.
        first = route.recorders[0] if len(route.recorders) == 1 else None
        caller = call.caller_id if CALLER_ID.match(call.caller_id) else ""
        welcome = self._say(call, first, "welcome")
        # The caller-id lookup runs while the welcome plays; a caller it finds hears the first
        # announcement right after it.
        session = (await self.phone.session_by_caller_id(route.number.id, caller)
                   if caller else None)
        recorder = None if session is None else await self._recorder_of(route, session)
        if session is not None and recorder is not None and not recorder.password_required:
            log.info("identified by caller id")
            visit = Visit()
            call.write_behind(self._mark_called, visit, recorder, session, call, after=welcome)
            await self._voice_session(call, recorder, session, list_id=None, visit=visit)
            return
        if session is None:
            session = await self._collect_pin(call, route, first, caller)
            if session is None:
                return
            recorder = await self._recorder_of(route, session)
        else:
            log.info("identified by caller id")
        assert recorder is not None
        try:
            if recorder.password_required and not await self._check_password(
                    call, recorder, route.number.id, caller):
                return
        except CallHungUp:
            raise
        except Exception as exc:
            await self._note_failure(call, session, exc)
            raise
        # The session learns the caller is in while the first announcement starts; it has
        # before its first take (write-behind keeps the order).
        visit = Visit()
        call.write_behind(self._mark_called, visit, recorder, session, call)
        await self._voice_session(call, recorder, session, list_id=None, visit=visit)

    async def _recorder_of(self, route: NumberRoute, session: Session) -> Recorder:
        # The route read the number's recorders already.
        return route.recorder(session.recorder_id) or await self.phone.recorder(
            session.recorder_id)

    async def _mark_called(self, visit: Visit, recorder: Recorder, session: Session,
                           call: Call, after: Said | None = None) -> None:
        """The caller is in; with `after`, once the caller has heard that prompt out (a caller
        who hangs up during the welcome leaves the session as it was)."""
        if after is not None:
            await after.heard()
        await self.phone.mark_called(session.id, call.id, quiet=is_quiet(recorder, session))
        visit.called = True
        log.info("session %s: caller in", session.session_key)

    async def _collect_pin(self, call: Call, route: NumberRoute, recorder: Recorder | None,
                           caller: str) -> Session | None:
        for attempt in range(1, PIN_TRIES + 1):
            if await self.phone.pin_blocked(route.number.id, caller):
                log.warning("PIN entry refused: too many recent failures")
                self._say(call, recorder, "try_later", "goodbye")
                return None
            self._say(call, recorder, "enter_pin")
            pin = await call.collect_digits(15, DIGIT_TIMEOUT, "#", INTER_DIGIT_TIMEOUT)
            if pin:
                session = await self.phone.session_by_pin(route.number.id, pin)
                if session is not None:
                    log.info("PIN accepted on attempt %d", attempt)
                    return session
                await self.phone.pin_failed(route.number.id, caller)
            # The digits themselves are never logged.
            log.info("PIN not accepted (attempt %d of %d)", attempt, PIN_TRIES)
            if attempt < PIN_TRIES:
                self._say(call, recorder, "invalid_pin")
        self._say(call, recorder, "too_many_attempts", "goodbye")
        return None

    async def _check_password(self, call: Call, recorder: Recorder, number_id: int,
                              caller: str) -> bool:
        """A recorder with password_required asks for its password (keyed on the keypad, then
        #). Failures count with PIN failures toward the caller's and the number's limits."""
        for attempt in range(1, PIN_TRIES + 1):
            if await self.phone.pin_blocked(number_id, caller):
                log.warning("password entry refused: too many recent failures")
                self._say(call, recorder, "try_later", "goodbye")
                return False
            self._say(call, recorder, "enter_password")
            digits = await call.collect_digits(64, DIGIT_TIMEOUT, "#", INTER_DIGIT_TIMEOUT)
            if digits and await self.phone.recorder_password_ok(recorder.id, digits):
                log.info("recorder password accepted on attempt %d", attempt)
                return True
            if digits:
                await self.phone.pin_failed(number_id, caller)
            # Never the digits themselves.
            log.info("recorder password not accepted (attempt %d of %d)", attempt, PIN_TRIES)
            if attempt < PIN_TRIES:
                self._say(call, recorder, "invalid_password")
        self._say(call, recorder, "too_many_attempts", "goodbye")
        return False

    # --- call-initiated ----------------------------------------------------------------------
    async def call_initiated(self, call: Call, route: NumberRoute) -> None:
        recorder = route.dedicated
        assert recorder is not None
        await call.answer()
        self._say(call, recorder, "welcome")
        caller = call.caller_id if CALLER_ID.match(call.caller_id) else None
        if recorder.password_required and not await self._check_password(
                call, recorder, route.number.id, caller or ""):
            return
        ident = recorder.identification
        code = None
        if ident in ("access_code", "both"):
            code = await self._collect_access_code(call, recorder)
            if code is None:
                return
        by_caller = caller if ident in ("caller_id", "both") else None
        if ident in ("caller_id", "both") and by_caller is None:
            log.info("caller id withheld: cannot identify")
            self._say(call, recorder, "not_found", "goodbye")
            return
        list_id = None
        if recorder.lookup_mode != "create" and ident != "none":
            list_id = await self.phone.find_list(recorder, by_caller, code)
        if list_id is None:
            if recorder.lookup_mode == "lookup":
                log.info("no recording list for this caller")
                self._say(call, recorder, "not_found", "goodbye")
                return
            list_id = await self.phone.create_list(recorder, caller, code)
        session = await self.phone.open_call_session(recorder, list_id, call.id)
        log.info("session %s: caller in (call-initiated)", session.session_key)
        await self._voice_session(call, recorder, session, list_id=list_id,
                                  visit=Visit(called=True))

    # --- resumed after an engine restart --------------------------------------------------
    async def resume(self, call: Call, session: Session) -> None:
        """The engine that voiced this session stopped mid-call (a deploy, a crash) and this
        one found the channel still in its app: "one moment", then the recording the caller
        was on, from the start. A take in progress or under review was never confirmed: it is
        stopped and kept as history only; recordings done before stay done."""
        recorder = await self.phone.recorder(session.recorder_id)
        await self._stop_takes_of(call, session)
        await self.phone.abandon_take(session)
        recordings = await self.phone.recordings(session.id)
        ids = [r.id for r in recordings]
        current = session.current_recording_id
        handled: set[int] = set()
        if current in ids:
            # Before the current one: done; the current one too unless it was recording.
            handled = set(ids[:ids.index(current) + (session.state != "recording")])
        log.info("session %s: resumed, %d recording(s) done before", session.session_key,
                 len(handled))
        self._say(call, recorder, "one_moment")
        list_id = session.list_id if recorder.initiation == "call" else None
        await self._voice_session(call, recorder, session, list_id=list_id,
                                  visit=Visit(called=True), handled=handled)

    async def _stop_takes_of(self, call: Call, session: Session) -> None:
        """What Asterisk still records for this session (the previous engine's take): stopped
        and dropped (its name carries the session's id)."""
        for stored in await call.ari.list_stored_recordings():
            name = stored.get("name", "")
            ids = parse_take_name(name)
            if ids is None or ids[0] != session.id:
                continue
            with contextlib.suppress(TelephonyError):
                await call.ari.cancel_live_recording(name)
            await self.takes.forget(call.ari, name)

    async def _collect_access_code(self, call: Call, recorder: Recorder) -> str | None:
        for _ in range(PIN_TRIES):
            self._say(call, recorder, "enter_access_code")
            code = await call.collect_digits(32, DIGIT_TIMEOUT, "#", INTER_DIGIT_TIMEOUT)
            if code:
                return code
        self._say(call, recorder, "too_many_attempts", "goodbye")
        return None

