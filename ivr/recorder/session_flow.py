"""A recorder session voiced by phone, once the caller is in (flow.py identifies them): each
recording in the list's order, its name or number, a beep, the take until `#` / max length /
silence, then review — 1 keep, 2 listen, 3 record again, `*` skip, 9 done.

Never lose audio: a take is fetched from Asterisk and stored under its own file before any row
says it exists; accepting it only moves the recording's pointer; a hang-up mid-take keeps the
take when it is long enough (flagged), and leaves the recording as it was otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from functools import partial
from typing import Any, Protocol

from ivr.core.errors import CallHungUp, CallLost, failure_of
from ivr.media import quality
from ivr.recorder.errors import LimitReached
from ivr.recorder.models import Recorder, Recording, Session
from ivr.recorder.phone import RecorderPhone
from ivr.recorder.takes import (
    StoredTake,
    TakeStore,
    judge,
    quality_limits,
    take_name,
    wav_duration_ms,
)
from ivr.recorder.visit import DATABASE_WAIT, Visit
from ivr.telephony.call import Call, RecordingResult, Said

log = logging.getLogger(__name__)

PIN_TRIES = 3
MENU_TRIES = 3
TOO_SHORT_TRIES = 3
POOR_TAKE_TRIES = 3  # takes that fail the quality check, without quality_keep_anyway
DIGIT_TIMEOUT = 8.0
# The review menu is queued on the take's `#` when the take has run this much longer than the
# shortest kept (by Asterisk's clock); a take near the line waits for its length to be read.
MENU_EARLY_MARGIN = 0.5
INTER_DIGIT_TIMEOUT = 4.0
CALLER_ID = re.compile(r"^\+?[0-9]{2,15}$")


class Prompts(Protocol):
    def media(self, name: str, recorder_key: str | None = None) -> str: ...


class Speech(Protocol):
    async def synthesize(self, text: str) -> str: ...


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    SKIPPED = "skipped"
    DONE = "done"


def is_quiet(recorder: Recorder, session: Session) -> bool:
    """The session's changes send no events (no callback URL), so the phone side makes them
    in single statements (RecorderPhone's `quiet`). Read when the caller is identified: a
    callback URL set during the call applies from the next call."""
    return not (session.callback_url or recorder.callback_url)


class SessionFlow:
    def __init__(self, phone: RecorderPhone, prompts: Prompts, speech: Speech,
                 takes: TakeStore) -> None:
        self.phone = phone
        self.prompts = prompts
        self.speech = speech
        self.takes = takes
        quality.warm_up()

    def _prompt(self, recorder: Recorder | None, name: str) -> str:
        return self.prompts.media(name, recorder.recorder_key if recorder else None)

    def _say(self, call: Call, recorder: Recorder | None, *names: str) -> Said:
        return call.say(*(self._prompt(recorder, n) for n in names))

    # --- the recording loop ------------------------------------------------------------------
    async def _voice_session(self, call: Call, recorder: Recorder, session: Session,
                             list_id: int | None, visit: Visit | None = None,
                             handled: set[int] | None = None) -> None:
        """Each recording of the session, in the order the list has *now*; with `list_id`
        (call-initiated), then new recordings until the caller is done or the list is full."""
        visit = visit or Visit()
        farewell = ["goodbye"]
        handled = handled or set()
        idle = 0
        try:
            while True:
                recordings = await visit.recordings(partial(self.phone.recordings, session.id))
                recording = next((r for r in recordings if r.id not in handled), None)
                if recording is None and list_id is not None and idle < 2:
                    with contextlib.suppress(LimitReached):
                        recording = await self.phone.add_recording(session.id, list_id)
                if recording is None:
                    farewell.insert(0, "no_more_recordings")
                    break
                handled.add(recording.id)
                outcome = await self._voice_recording(call, recorder, session, recording, visit)
                if outcome is Outcome.DONE:
                    break
                idle = idle + 1 if outcome is Outcome.SKIPPED else 0
            await self._say(call, recorder, *farewell)
        except CallHungUp as exc:
            if getattr(call, "lost", False):  # not the caller's doing: the session says so
                await self._note_failure(call, session, exc if isinstance(exc, CallLost) else
                                         CallLost(f"channel {call.id} vanished while the "
                                                  "engine could not see it"))
            raise
        except Exception as exc:
            call.hush()  # nothing more of the session: the runner apologises
            # Before the session ends, so its `session.ended` event carries the reason.
            await self._note_failure(call, session, exc)
            raise
        finally:
            visit.forget_upcoming()
            try:
                with contextlib.suppress(CallHungUp):
                    await call.heard()
                await call.written()
            finally:
                if visit.called:
                    await asyncio.shield(self.phone.end_session(
                        session.id, quiet=is_quiet(recorder, session)))
                    log.info("session %s ended", session.session_key)

    async def _note_failure(self, call: Call, session: Session, exc: Exception) -> None:
        """The session shows why its call failed (the runner apologises to the caller and
        logs the traceback)."""
        code, reason = failure_of(exc)
        try:
            await asyncio.shield(self.phone.session_failed(session.id, code, reason))
        except Exception as err:
            log.warning("session %s: its failure (%s) could not be recorded: %s",
                        session.session_key, code, err)

    async def _announcement(self, recorder: Recorder, recording: Recording) -> list[str]:
        if recording.name:
            return [await self.speech.synthesize(recording.name)]
        return [self._prompt(recorder, "recording_number"), f"number:{recording.sequence}"]

    async def _voice_recording(self, call: Call, recorder: Recorder, session: Session,
                               recording: Recording, visit: Visit) -> Outcome:
        # A named recording's announcement is synthesized (a moment, the first time) while
        # what was said before it ("saved") plays.
        prompt = await self._announcement(recorder, recording)
        touchtone = None
        if recorder.touchtone_prompt and recorder.touchtone_length:
            call.say(*prompt, self._prompt(recorder, "enter_touchtone"))
            prompt = []
            touchtone = await call.collect_digits(recorder.touchtone_length, DIGIT_TIMEOUT,
                                                  "#", INTER_DIGIT_TIMEOUT) or None
        too_short = poor = 0
        loop = asyncio.get_running_loop()
        while True:
            # The beep is ours, not record(beep=True): Asterisk reports the recording started
            # before its own beep, and the caller's first words would fall into the beep.
            # The recording starts the moment the beep ends, with no round trip through the
            # engine (start_recording's prompt).
            prompt += [self._prompt(recorder, "record_after_tone"), "sound:beep"]
            name = take_name(session.id, recording.id)
            # The review menu is said on the take's `#` (Asterisk plays it as the take ends),
            # not after the take's end has come back as an event and the take was read.
            live = await call.start_recording(
                name, prompt=prompt, max_duration=recorder.max_take_seconds,
                max_silence=recorder.silence_seconds, terminate_on="#",
                on_terminator=[self._prompt(recorder, "review_menu")],
                on_terminator_after=recorder.min_take_seconds + MENU_EARLY_MARGIN)
            began = loop.time()
            # The session's state changes while the take records, after the previous take's
            # accept (which moved the session out of `recording`).
            starting = call.write_behind(self.phone.start_take, session.id, recording.id,
                                         quiet=is_quiet(recorder, session))
            try:
                result = await live.finished()
            finally:
                started = await self._started(starting)
            menu_said = result.followed is not None
            if menu_said and (not started or result.hung_up):
                call.hush()
            if started and not result.hung_up:
                visit.look_ahead(asyncio.create_task(self.phone.recordings(session.id)))
            if not started:
                log.info("recording %s left the session", recording.recording_key)
                await self.takes.forget(call.ari, name)
                if result.hung_up:
                    raise CallHungUp(f"channel {call.id} hung up")
                return Outcome.SKIPPED
            if result.hung_up:
                await asyncio.shield(self._hung_up_mid_take(call, recorder, session, recording,
                                                            name, touchtone, result))
                raise CallHungUp(f"channel {call.id} hung up")
            data = await self.takes.download(call.ari, name, call.id)
            judged: dict[str, Any] | None = None
            if data is None or wav_duration_ms(data) < recorder.min_take_seconds * 1000:
                call.hush()
                # Asterisk writes nothing of a take that is silence from end to end (it
                # detects silence): one that ran long enough to keep was no speech.
                silent = recorder.quality_check and loop.time() - began >= \
                    recorder.min_take_seconds + MENU_EARLY_MARGIN
                if silent:
                    judged = quality.judged(quality.silence(loop.time() - began),
                                            quality_limits(recorder))
                if data is not None:
                    await self._discard(call, await self.takes.keep(
                        session.id, recording, name, call.id, data, judged))
                if silent:
                    poor += 1
                    if poor >= POOR_TAKE_TRIES:
                        return await self._leave(call, recorder, session, recording)
                    log.info("take of %s: no_speech (silence)", recording.recording_key)
                    call.flush_digits()
                    prompt = [self._prompt(recorder, "quality_no_speech")]
                    continue
                too_short += 1
                if too_short >= TOO_SHORT_TRIES:
                    await self.phone.leave_recording(session.id, recording.id)
                    return Outcome.SKIPPED
                prompt = [self._prompt(recorder, "too_short")]
                continue
            # Milliseconds, in a worker thread: the menu said on `#` has barely begun when a
            # poor take stops it for its reason.
            judged = await judge(recorder, data)
            verdict = judged["verdict"] if judged is not None and recorder.quality_check \
                else "ok"
            if judged is not None:
                log.info("take of %s: %s (speech %.1fs, %s LUFS, peak %.1f dBFS, "
                         "clipped %.2f%%)", recording.recording_key, judged["verdict"],
                         judged["speech_seconds"], judged["loudness_lufs"],
                         judged["sample_peak_dbfs"], judged["clipped_ratio"] * 100)
            if verdict != "ok":
                call.hush()
                # Keys pressed since `#` answered a menu the caller did not hear: the reason
                # is heard in full.
                call.flush_digits()
                reason = self._prompt(recorder, f"quality_{verdict}")
                if not recorder.quality_keep_anyway:
                    await self._discard(call, await self.takes.keep(
                        session.id, recording, name, call.id, data, judged))
                    poor += 1
                    if poor >= POOR_TAKE_TRIES:
                        return await self._leave(call, recorder, session, recording)
                    prompt = [reason]
                    continue
                # The reason, then the review menu: record again (3), or keep it after all.
                call.say(reason, self._prompt(recorder, "review_menu"))
                menu_said = True
            # The take is written (fsync) and recorded while the review menu already plays:
            # the caller hears the menu right after `#`, and nothing is decided before the
            # take is safely stored.
            keeping = asyncio.create_task(
                self.takes.keep(session.id, recording, name, call.id, data, judged))
            try:
                choice = await self._review(call, recorder, name, menu_said)
            except CallHungUp:
                # A complete take the caller had not judged yet is kept, not lost.
                stored = await asyncio.shield(keeping)
                await asyncio.shield(self._accept(call, recorder, session, recording, stored,
                                                  touchtone, kept_on_hangup=True))
                raise
            except BaseException:
                await asyncio.shield(keeping)
                raise
            if choice in ("1", "9"):
                # The accept commits (once the take is stored) while "saved" and what comes
                # next play; the session's next change waits for it (write-behind).
                call.write_behind(self._accept_when_kept, keeping, call, recorder, session,
                                  recording, touchtone)
                if choice == "1":
                    self._say(call, recorder, "recording_saved")
                return Outcome.DONE if choice == "9" else Outcome.ACCEPTED
            stored = await keeping
            await self._discard(call, stored)
            if choice == "3":
                prompt = []
                continue
            return await self._leave(call, recorder, session, recording)

    async def _started(self, starting: asyncio.Task[bool]) -> bool:
        """Whether the take counts (False: the recording left the session meanwhile). A
        database that does not answer in time is no reason to keep the caller waiting: the
        take is taken as started, and the change commits behind, in order."""
        await asyncio.wait([starting], timeout=DATABASE_WAIT)
        if not starting.done():
            log.warning("the database is slow: the take's start commits behind")
            return True
        return starting.result()

    async def _leave(self, call: Call, recorder: Recorder, session: Session,
                     recording: Recording) -> Outcome:
        """On to the next recording, this one as it was (its takes stay in its history)."""
        self._say(call, recorder, "skipped")
        await self.phone.leave_recording(session.id, recording.id)
        return Outcome.SKIPPED

    async def _accept_when_kept(self, keeping: asyncio.Task[StoredTake], call: Call,
                                recorder: Recorder, session: Session, recording: Recording,
                                touchtone: str | None) -> None:
        await self._accept(call, recorder, session, recording, await keeping, touchtone)

    async def _review(self, call: Call, recorder: Recorder, name: str,
                      menu_said: bool = False) -> str:
        """1 keep, 2 listen, 3 again, * skip, 9 done. After MENU_TRIES invalid keys or
        silences the take is kept: moving on never throws audio away. `menu_said`: the first
        menu is said already."""
        failures = 0
        while failures < MENU_TRIES:
            if not menu_said:
                self._say(call, recorder, "review_menu")
            menu_said = False
            digit = await call.next_digit(DIGIT_TIMEOUT)
            if digit in ("1", "3", "*", "9"):
                return digit
            if digit == "2":
                call.say(self._prompt(recorder, "playback_intro"), f"recording:{name}")
                continue
            failures += 1
            if digit is not None:
                self._say(call, recorder, "invalid_choice")
        return "1"

    # --- takes -------------------------------------------------------------------------------
    async def _store_take(self, call: Call, recorder: Recorder, session: Session,
                          recording: Recording, name: str) -> StoredTake | None:
        return await self.takes.fetch(call.ari, session.id, recording, name, call.id, recorder)

    async def _accept(self, call: Call, recorder: Recorder, session: Session,
                      recording: Recording, stored: StoredTake, touchtone: str | None, *,
                      kept_on_hangup: bool = False) -> None:
        caller = call.caller_id if CALLER_ID.match(call.caller_id) else None
        await self.takes.accept(call.ari, session.id, recorder, recording, stored,
                                channel_id=call.id, caller_id=caller, touchtone=touchtone,
                                kept_on_hangup=kept_on_hangup,
                                quiet=is_quiet(recorder, session) and recorder.storage != "upload")

    async def _discard(self, call: Call, stored: StoredTake) -> None:
        await self.takes.discard(call.ari, stored)

    async def _hung_up_mid_take(self, call: Call, recorder: Recorder, session: Session,
                                recording: Recording, name: str, touchtone: str | None,
                                result: RecordingResult) -> None:
        stored = await self._store_take(call, recorder, session, recording, name)
        if stored is not None and stored.duration_ms >= recorder.min_take_seconds * 1000:
            await self._accept(call, recorder, session, recording, stored, touchtone,
                               kept_on_hangup=True)
            return
        if stored is not None:
            await self._discard(call, stored)
        log.info("caller hung up mid-take (%s): too short to keep", result.state)
        await self.phone.leave_recording(session.id, recording.id)
