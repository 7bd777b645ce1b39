"""One outbound call, straight-line: create the channel in our Stasis app, dial it through the
trunk, note when it rings / answers / hangs up and why, and once answered play the message
(optionally after answering-machine detection) and take one key press."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.core.errors import CallHungUp, IvrError
from ivr.dialer.models import CallRecord, Content, Job
from ivr.media.tts import LANGUAGES, VOICES, EspeakTts  # LANGUAGES: broadcast validates by it
from ivr.telephony import amd
from ivr.telephony.causes import asterisk_name
from ivr.telephony.events import Event, Router
from ivr.telephony.leg import DialledLeg
from ivr.telephony.rest import AriClient, AriHttpError

log = logging.getLogger(__name__)

# After the message, how long a key press is waited for (enable_menu_response).
MENU_WAIT = 5.0
IN_STASIS_WAIT = 5.0


# What a call tells its worker while it is up: "answered", or "keypress" with the key. It must
# not block: the call goes on (the worker writes it down on the side).
Progress = Callable[[str, str | None], None]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Attempt:
    """What one attempt found."""

    outcome: str = "failed"
    ring_at: datetime | None = None
    answer_at: datetime | None = None
    hang_at: datetime | None = None
    cause: int | None = None
    keypress: str | None = None
    amd: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cause_name(self) -> str | None:
        if self.outcome == "no_answer":
            return "NO_ANSWER"
        if self.cause is None:
            return None
        return asterisk_name(self.cause)

    def apply(self, call: CallRecord) -> CallRecord:
        call.ring_at, call.answer_at, call.hang_at = self.ring_at, self.answer_at, self.hang_at
        call.outcome, call.cause, call.cause_name = self.outcome, self.cause, self.cause_name
        call.keypress, call.amd = self.keypress, self.amd
        call.duration = 0
        if self.answer_at is not None and self.hang_at is not None:
            call.duration = max(0, round((self.hang_at - self.answer_at).total_seconds()))
        return call


class Speech:
    """TTS per (language, voice), each an espeak-ng voice with its own cache."""

    def __init__(self, data_dir: object, public_url: str) -> None:
        self.data_dir = data_dir
        self.public_url = public_url.rstrip("/")
        self._voices: dict[str, EspeakTts] = {}

    async def media(self, content: Content) -> str:
        if content.audio is not None:
            return f"sound:{self.public_url}/media/tts/{content.audio}.wav"
        assert content.text is not None
        voice = LANGUAGES.get(content.language, "en-us") + VOICES.get(content.voice, "")
        tts = self._voices.get(voice)
        if tts is None:
            from pathlib import Path

            tts = self._voices[voice] = EspeakTts(Path(str(self.data_dir)), self.public_url,
                                                  voice)
        return await tts.synthesize(content.text)


class DialLeg(DialledLeg):
    """The channel we dial; with AMD it also hears when the far end talks."""

    def __init__(self, ari: AriClient, channel_id: str) -> None:
        super().__init__(ari, channel_id)
        self.talking = False  # the far end is making sound (TALK_DETECT, with AMD only)
        self.quiet = asyncio.Event()

    def vanished(self) -> None:
        self.call.mark_gone("vanished while events were down")
        self.ended(None)

    def sink(self, event: Event) -> None:
        super().sink(event)
        kind = event["type"]
        if kind == "ChannelTalkingStarted":
            self.talking = True
        elif kind == "ChannelTalkingFinished":
            self.talking = False
            self.quiet.set()


@dataclass
class Telephone:
    """What calls are placed with, and the legs in progress."""

    ari: AriClient
    router: Router
    app: str  # the Stasis app our channels enter
    trunk: str
    speech: Speech
    legs: dict[str, DialLeg] = field(default_factory=dict)

    async def resync(self, *_: object) -> None:
        """After the event socket was down: a leg whose channel vanished ends now, and steps
        whose end event was lost (a playback) are settled."""
        for leg in list(self.legs.values()):
            try:
                channel = await self.ari.get_channel(leg.call.id)
            except AriHttpError as exc:
                if exc.status == 404:
                    leg.vanished()
                continue
            if channel.get("state") == "Up" and not leg.answered.done():
                leg.answered.set_result(None)
            await leg.call.resync()


async def place_call(tel: Telephone, job: Job, call: CallRecord,
                     progress: Progress | None = None) -> Attempt:
    """Dial `call.number` on channel `call.channel_id` (chosen when the call was claimed) and
    run the call to its end, telling `progress` of the answer and the key press as they
    happen. Never raises for what the far end does."""
    assert call.channel_id is not None
    attempt = Attempt()
    try:  # before dialling: a message that cannot be made is no reason to ring anyone
        media = await tel.speech.media(call.content or job.content)
    except IvrError as exc:
        log.error("[%s] the message cannot be made: %s", call.channel_id, exc.message)
        attempt.notes.append(exc.message)
        attempt.hang_at = now()
        return attempt
    leg = DialLeg(tel.ari, call.channel_id)
    tel.router.register(call.channel_id, leg.sink)
    tel.legs[call.channel_id] = leg
    sender = job.sender_id or ""
    # An outgoing PJSIP channel presents its connected line as the caller (From / PAI).
    variables = {"CONNECTEDLINE(num)": sender, "CONNECTEDLINE(name)": sender,
                 "CALLERID(num)": sender} if sender else None
    try:
        await leg.originate(f"PJSIP/{call.number}@{tel.trunk}", app=tel.app, app_args="dialer",
                            variables=variables, stasis_wait=IN_STASIS_WAIT)
        waits: set[asyncio.Future[object]] = {leg.answered, leg.destroyed}  # type: ignore[arg-type]
        await asyncio.wait(waits, timeout=job.ring_timeout, return_when=asyncio.FIRST_COMPLETED)
        if leg.answered.done():
            attempt.answer_at = now()
            if job.amd != "off":
                await leg.call.set_variable("TALK_DETECT(set)", "")
            attempt.outcome = "answered"
            if progress is not None:
                progress("answered", None)
            await _deliver(tel, job, media, leg, attempt, progress)
        elif leg.destroyed.done():
            attempt.cause = leg.destroyed.result()
            attempt.outcome = {17: "busy", 18: "no_answer", 19: "no_answer"}.get(
                attempt.cause or 0, "failed")
        else:
            # We give up ringing: Q.850 19 (no answer), not the 16 our own hang-up reports.
            attempt.outcome, attempt.cause = "no_answer", 19
            log.info("[%s] no answer in %ds", call.channel_id, job.ring_timeout)
    except CallHungUp:
        pass
    except TimeoutError:
        attempt.notes.append("channel did not enter the Stasis app")
        log.warning("[%s] did not enter the Stasis app", call.channel_id)
    except IvrError as exc:
        attempt.notes.append(exc.message)
        log.warning("[%s] call to %s failed: %s", call.channel_id, call.number, exc.message)
    finally:
        await _end(tel, leg, attempt)
    attempt.ring_at = leg.ring_at
    return attempt


async def _deliver(tel: Telephone, job: Job, media: str, leg: DialLeg,
                   attempt: Attempt, progress: Progress | None) -> None:
    if job.amd != "off":
        verdict = await amd.detect(tel.ari, tel.router, tel.app, leg.call.id)
        attempt.amd = verdict.status
        if verdict.status == "HANGUP":
            raise CallHungUp(f"channel {leg.call.id} hung up")
        if verdict.machine:
            if job.amd == "skip_machine":
                attempt.outcome = "machine_skipped"
                return
            await after_greeting(leg)
    if job.enable_menu_response:
        played = await leg.call.play(media, barge_in=True)
        key = played.interrupted_by
        if key is None:
            key = await leg.call.next_digit(MENU_WAIT)
        attempt.keypress = key
        if key is not None and progress is not None:
            progress("keypress", key)
        leg.call.flush_digits()
    else:
        await leg.call.play(media)


async def after_greeting(leg: DialLeg, timeout: float = 15.0) -> None:
    """A machine answered: wait until its greeting (and beep) has stopped, so the message is
    recorded whole (TALK_DETECT on the channel reports when the far end falls silent)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while leg.talking and loop.time() < deadline:
        leg.quiet.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leg.quiet.wait(), deadline - loop.time())
    await asyncio.sleep(0.3)


async def _end(tel: Telephone, leg: DialLeg, attempt: Attempt) -> None:
    with contextlib.suppress(IvrError):
        await leg.call.hangup()
    try:
        cause = await asyncio.wait_for(asyncio.shield(leg.destroyed), 5)
        if attempt.cause is None:
            attempt.cause = cause
    except TimeoutError:
        log.warning("[%s] no ChannelDestroyed after hang-up", leg.call.id)
    finally:
        tel.router.unregister(leg.call.id)
        tel.legs.pop(leg.call.id, None)
    attempt.hang_at = now()
