"""A call under programmatic control, while it lives in this process.

`LiveCall` is the voice_id's leg (the caller on an inbound call, the called party on an
outbound one) plus what the application asked for: a prompt or menu playing, a bridge to a
second leg, a recording. REST handlers call its methods; its own steps (a menu waiting for
keys, a leg being dialled) run as tasks it owns and cancels when the call ends. Every event the
application hears leaves through one ordered queue per call.

`Leg` is a channel we create and dial (ivr/telephony/leg.py): ringing / answered / ended
(with the hangup cause)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import uuid
import wave
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from ivr.callcontrol import webhooks
from ivr.callcontrol.asr import Recognizer
from ivr.callcontrol.errors import (
    CallFailed,
    CallStateMismatch,
    PlayInBridge,
    RecordingFailed,
    RecordingNameTaken,
    RequestPending,
)
from ivr.callcontrol.models import Application, Destination, PlayRequest, timestamp
from ivr.callcontrol.store import CallControlStore
from ivr.callcontrol.webhooks import Change, Outgoing
from ivr.core.db import Conn
from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony import amd
from ivr.telephony.call import Call
from ivr.telephony.causes import plain_name
from ivr.telephony.events import Event, Router
from ivr.telephony.leg import DialledLeg, NotInStasis
from ivr.telephony.rest import AriClient, AriHttpError

log = logging.getLogger(__name__)

# The longest answer an asr play listens to.
MAX_SPEECH_SECONDS = 20
# How long a recording request waits for Asterisk to say the take started (or failed).
RECORDING_START_TIMEOUT = 5.0
RECORDING_EVENTS = ("RecordingStarted", "RecordingFinished", "RecordingFailed")


def _pcm(wav: bytes) -> tuple[bytes, int]:
    """The samples and rate of a 16-bit mono WAV (what Asterisk's wav format writes)."""
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


@dataclass
class Telephony:
    """What a live call needs of the telephony layer."""

    ari: AriClient
    router: Router
    app: str  # the Stasis app our legs enter
    trunk: str  # PJSIP endpoint numbers are dialled through


class Leg(DialledLeg):
    """A leg call control dials (an outbound call, a connect's or transfer's second leg):
    registered with the router before it exists, unregistered once destroyed."""

    def __init__(self, tel: Telephony, channel_id: str, destination: Destination) -> None:
        super().__init__(tel.ari, channel_id)
        self.tel = tel
        self.destination = destination

    def endpoint(self) -> str:
        if self.destination.is_sip:
            return f"PJSIP/{self.tel.trunk}/{self.destination.value}"
        return f"PJSIP/{self.destination.value}@{self.tel.trunk}"

    def ended(self, cause: int | None) -> None:
        self.call.hangup_cause = cause
        if not self.answered.done():
            self.answered.set_exception(CallHungUp(plain_name(cause)))
            self.answered.exception()  # retrieved: nobody may be waiting any more
        super().ended(cause)
        self.tel.router.unregister(self.id)

    async def rings_first(self) -> bool:
        """Waits until the leg rings or answers: True when it rang before answering. Raises
        CallHungUp when it ended instead."""
        await asyncio.wait({self.ringing, self.answered}, return_when=asyncio.FIRST_COMPLETED)
        if self.answered.done():
            self.answered.result()
            return False
        return True

    async def dial(self, caller_id: str, timeout: int) -> None:
        self.tel.router.register(self.id, self.sink)
        try:
            try:
                await self.originate(
                    self.endpoint(), app=self.tel.app, app_args="callcontrol",
                    # PJSIP builds From / P-Asserted-Identity of an outgoing call from its
                    # connected line (Dial() would copy the caller's id there; we dial
                    # ourselves).
                    variables={"CALLERID(num)": caller_id, "CALLERID(name)": caller_id,
                               "CONNECTEDLINE(num)": caller_id,
                               "CONNECTEDLINE(name)": caller_id},
                    stasis_wait=5, dial_timeout=timeout)
            except NotInStasis:
                raise CallFailed("the new channel did not enter the Stasis app") from None
        except IvrError:
            self.tel.router.unregister(self.id)
            with contextlib.suppress(IvrError):
                await self.tel.ari.hangup(self.id)
            raise

    async def hangup(self) -> None:
        with contextlib.suppress(IvrError):
            await self.call.hangup()

    async def wait_destroyed(self, timeout: float) -> int | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self.destroyed), timeout)
        except TimeoutError:
            self.tel.router.unregister(self.id)
            return None


@dataclass
class Bridge:
    id: str
    peer: Leg | None = None  # the answered second leg
    dialing: Leg | None = None
    held: bool = False


@dataclass
class ActiveRecording:
    recording_id: uuid.UUID
    asterisk_name: str
    done: asyncio.Event
    # True on RecordingStarted, False on a RecordingFailed before it: what the request answers.
    begun: asyncio.Future[bool]
    snoop_id: str | None = None  # the snoop channel recorded (auto_record, an outbound leg)


class LiveCall:
    def __init__(
        self, *, tel: Telephony, store: CallControlStore, app: Application,
        call: Call, voice_id: uuid.UUID, direction: str, from_number: str, to_number: str,
        state: str, owner_ref: str | None = None, event_url: str | None = None,
        on_end: Callable[[LiveCall], None] | None = None, recognizer: Recognizer | None = None,
    ) -> None:
        self.tel = tel
        self.store = store
        self.app = app
        self.call = call
        self.voice_id = voice_id
        self.direction = direction
        self.from_number = from_number
        self.to_number = to_number
        self.state = state
        self.owner_ref = owner_ref
        self.event_url = event_url
        self.cause: str | None = None
        self.bridge: Bridge | None = None
        self.recording: ActiveRecording | None = None
        self._ending: ActiveRecording | None = None  # its end event came; being settled
        self._play_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_events(), name=f"cc-events-{voice_id}")
        self._accepted = asyncio.Event()
        self._on_end = on_end
        self._registered: set[str] = set()
        self._talk: tuple[asyncio.Event, asyncio.Event] | None = None  # an asr play listening
        self.recognizer = recognizer
        call.add_listener(self._on_event)

    def __repr__(self) -> str:
        return f"<LiveCall {self.voice_id} {self.direction} {self.state}>"

    # --- views -------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.state in ("disconnected", "failed")

    @property
    def bridged(self) -> bool:
        return self.bridge is not None and self.bridge.peer is not None

    @property
    def playing(self) -> bool:
        return self._play_task is not None and not self._play_task.done()

    def base(self) -> dict[str, Any]:
        return {"voice_id": str(self.voice_id), "from": self.from_number, "to": self.to_number}

    # --- events to the application ------------------------------------------------------
    def emit(self, state: str, key: str = "state", *, change: Change | None = None,
             **fields: Any) -> None:
        """Queue an event (with the state change it reports, written in one transaction)."""
        event: dict[str, Any] = {**self.base(), key: state, **fields}
        if self.owner_ref is not None:
            event["owner_ref"] = self.owner_ref
        event["timestamp"] = timestamp()
        self._outbox.put_nowait(Outgoing(event, change))

    def _state_change(self, state: str, cause: str | None = None) -> Change:
        self.state = state
        return functools.partial(self.store.set_call_state, self.voice_id, state, cause)

    def _set_state(self, state: str, cause: str | None = None) -> None:
        """A state change no event reports (it still keeps its place in the call's order)."""
        self._outbox.put_nowait(Outgoing(None, self._state_change(state, cause)))

    async def _send_events(self) -> None:
        """The call's one writer: whatever is queued goes to the database (state changes and
        outbox rows) in one transaction, in order; the delivery worker posts the rows."""
        url = self.event_url or self.app.webhook_url
        write = functools.partial(webhooks.enqueue, voice_id=self.voice_id,
                                  app_id=self.app.app_id, url=url,
                                  secret=self.app.webhook_secret)

        async def write_event(conn: Conn, event: dict[str, Any]) -> None:
            await write(conn, event=event)

        done = False
        while not done:
            items = [await self._outbox.get()]
            while not self._outbox.empty():
                items.append(self._outbox.get_nowait())
            done = None in items
            batch = [item for item in items if item is not None]
            for attempt in (1, 2, 3) if batch else ():
                try:
                    await self.store.write(batch, write_event)
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("[%s] writing %d call event(s) failed (attempt %d): %s",
                                self.call.id, len(batch), attempt, type(exc).__name__)
                    await asyncio.sleep(0.5 * attempt)
                except Exception:  # a bug: lose this batch, keep the call's later events
                    log.exception("[%s] writing call events failed", self.call.id)
                    break

    def _on_event(self, event: Event) -> None:
        kind = event["type"]
        if kind == "ChannelDtmfReceived" and self.bridged:
            self.emit("dtmfcollected", channel_id=event["channel"]["id"], digit=event["digit"])
        elif kind in ("ChannelTalkingStarted", "ChannelTalkingFinished") and self._talk:
            self._talk[kind == "ChannelTalkingFinished"].set()
        elif kind in ("ChannelDestroyed", "ChannelHangupRequest") and event.get("cause"):
            self.call.hangup_cause = event["cause"]
        elif kind in RECORDING_EVENTS:
            self._on_recording_event(event)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro), name=f"cc-{name}-{self.voice_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except (CallHungUp, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("[%s] call-control step failed", self.call.id)

    # --- inbound ------------------------------------------------------------------------
    async def run_inbound(self, greeting: str | None, *, answered: bool = False) -> None:
        """The runner's flow for an inbound call: greeting or ringing, `incomingcall`, then
        (unless accepted) a drop after the application's accept timeout. A call `answered`
        already (a shared number's PIN prompt) goes straight to `incomingcall`."""
        if answered:
            self.emit("incomingcall", channel_id=self.call.id,
                      change=self._state_change("connected"))
        elif greeting is not None:
            await self.call.answer()
            self._set_state("connected")
            await self.call.play(greeting)
            self.emit("incomingcall", channel_id=self.call.id)
        else:
            try:
                await self.call.ari.ring(self.call.id)
            except AriHttpError as exc:
                if exc.channel_gone:
                    return
                raise
            self.emit("incomingcall", channel_id=self.call.id)
            accepted = asyncio.ensure_future(self._accepted.wait())
            gone = asyncio.ensure_future(self.call.wait_gone())
            try:
                await asyncio.wait({accepted, gone}, timeout=self.app.accept_timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                accepted.cancel()
                gone.cancel()
            if self.call.gone:  # the caller gave up, or the application hung up
                return
            if not self._accepted.is_set():
                self.cause = "not accepted"
                log.info("[%s] not accepted in %ds: dropping", self.call.id,
                         self.app.accept_timeout)
                return
        await self.call.wait_gone()

    async def accept(self) -> None:
        if self.ended:
            raise CallStateMismatch("Call is already disconnected")
        if self.direction != "inbound":
            raise CallStateMismatch("Only an incoming call can be accepted")
        if self.state == "incomingcall":
            try:
                await self.call.answer()
            except CallHungUp:
                raise CallStateMismatch("Call is already disconnected") from None
            self._accepted.set()
            self.emit("connected", channel_id=self.call.id,
                      change=self._state_change("connected"))

    # --- outbound -----------------------------------------------------------------------
    async def run_outbound(self, leg: Leg, action: PlayRequest | None,
                           media: str | None, *, detect_machine: bool = False,
                           auto_record: bool = False) -> None:
        try:
            if await leg.rings_first():
                self.emit("ringing", channel_id=leg.id, change=self._state_change("ringing"))
            await leg.answered
            self.emit("connected", channel_id=leg.id, change=self._state_change("connected"))
            if auto_record:
                await self._auto_record()
            if detect_machine:
                # Before action_on_connect: the prompt would otherwise talk over the greeting
                # AMD listens to (and a machine's message is best left after its beep).
                verdict = await amd.detect(self.tel.ari, self.tel.router, self.tel.app, leg.id)
                if verdict.machine:
                    self.emit("voicemail", channel_id=leg.id, cause=verdict.cause)
            if action is not None and media is not None:
                self._start_play(action, media)
            await self.call.wait_gone()
        except CallHungUp:
            pass
        finally:
            await leg.hangup()
            code = await leg.wait_destroyed(5)
            self.call.hangup_cause = code if code is not None else self.call.hangup_cause
            await self.finish()

    async def _auto_record(self) -> None:
        """auto_record: the whole call from connect; a failure to start is a `failed`
        recording event, not the end of the call."""
        try:
            await self.start_recording(None, "wav", whole_call=True)
        except CallStateMismatch:  # the call ended meanwhile
            return
        except RecordingFailed as exc:
            log.warning("[%s] auto_record: %s", self.call.id, exc.message)
            self.emit("failed", recording_id="", msg=exc.message)

    # --- play ---------------------------------------------------------------------------
    def check_can_play(self) -> None:
        if self.bridged:
            raise PlayInBridge("Call is in bridged mode, can't play media")
        if self.state != "connected":
            raise CallStateMismatch("Call is not connected yet")
        if self.playing:
            raise RequestPending("Play request pending", 6114)

    def play(self, request: PlayRequest, media: str) -> str:
        self.check_can_play()
        return self._start_play(request, media)

    def _start_play(self, request: PlayRequest, media: str) -> str:
        play_id = str(uuid.uuid4())
        self._play_task = self.spawn(self._play(play_id, request, media), "play")
        return play_id

    async def _play(self, play_id: str, request: PlayRequest, media: str) -> None:
        def event(playstate: str, **fields: Any) -> None:
            if request.prompt_ref is not None:
                fields["prompt_ref"] = request.prompt_ref
            self.emit(playstate, key="playstate", play_id=play_id, **fields)

        self.call.flush_digits()
        try:
            playback = await self.call.play(media, barge_in=request.dtmf)
        except AriHttpError as exc:
            log.info("[%s] play failed: %s", self.call.id, exc.message)
            event("failed", msg="Media Request Failed")
            return
        if playback.failed:
            event("failed", msg="Media Request Failed")
            return
        if request.asr:
            await self._listen(play_id, request)
            return
        if not request.dtmf:
            event("playfinished")
            return
        digits = await self.call.collect_digits(
            request.max_digits, timeout=request.menu_timeout, terminators="#",
            inter_digit_timeout=3,
        )
        if digits:
            event("digitcollected", digit=digits)
        else:
            event("menutimeout")

    async def _listen(self, play_id: str, request: PlayRequest) -> None:
        """After an `asr` prompt: record what the caller says (8 kHz), framed by Asterisk's
        talk detection (TALK_DETECT: talking starts; `recognizer_timeout` of silence ends it),
        then recognise it off the event loop. `timeout` when nobody spoke within
        `start_timeout`; `unrecognized` when the engine matched nothing."""
        asr_id = str(uuid.uuid4())
        name = f"ccr-{uuid.uuid4().hex}"
        ari, cid = self.tel.ari, self.call.id

        def event(state: str, reason: str, phrase: str | None = None) -> None:
            fields: dict[str, Any] = {"result": {"reason": reason}, "asr_id": asr_id,
                                      "play_id": play_id}
            if phrase is not None:
                fields["recognised_phrase"] = phrase
            if request.prompt_ref is not None:
                fields["prompt_ref"] = request.prompt_ref
            self.emit(state, **fields)

        started, finished = asyncio.Event(), asyncio.Event()
        self._talk = (started, finished)
        await ari.set_variable(cid, "TALK_DETECT(set)", str(request.recognizer_timeout * 1000))
        take = asyncio.ensure_future(self.call.record(
            name, fmt="wav", max_duration=request.start_timeout + MAX_SPEECH_SECONDS,
            terminate_on="none"))
        heard: str | None = None
        try:
            try:
                await asyncio.wait_for(started.wait(), request.start_timeout)
            except TimeoutError:
                event("timeout", "InitialSilenceTimeout")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), MAX_SPEECH_SECONDS)
            with contextlib.suppress(AriHttpError):
                await ari.stop_live_recording(name)
            await take
            audio = await ari.stored_recording_file(name)
            assert self.recognizer is not None  # checked before the play was accepted
            heard = await asyncio.to_thread(self.recognizer.recognize, *_pcm(audio),
                                            request.asr_phrases)
            log.info("[%s] asr %s: %s", cid, asr_id, "recognised" if heard else "no match")
            if heard:
                event("recognized", "RecognizedSpeech", heard)
            else:
                event("unrecognized", "NoMatch", "")
        finally:
            self._talk = None
            if not take.done():
                with contextlib.suppress(IvrError):
                    await ari.cancel_live_recording(name)
                take.cancel()
            with contextlib.suppress(IvrError):
                await ari.set_variable(cid, "TALK_DETECT(remove)", "")
            with contextlib.suppress(IvrError):
                await ari.delete_stored_recording(name)

    async def _stop_play(self) -> None:
        task = self._play_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Call.play's playback may still be sounding: stop whatever plays on the channel.
        self._play_task = None

    # --- bridge -------------------------------------------------------------------------
    def check_connected(self) -> None:
        if self.ended:
            raise CallStateMismatch("Call is already disconnected")
        if self.state != "connected":
            raise CallStateMismatch("Call is not connected yet")

    def check_bridged(self) -> Bridge:
        self.check_connected()
        if self.bridge is None or self.bridge.peer is None:
            raise CallStateMismatch("Call is not bridged yet")
        return self.bridge

    async def connect(self, destination: Destination, caller_id: str, timeout: int) -> str:
        self.check_connected()
        if self.bridge is not None:
            raise CallStateMismatch("Call is already bridged")
        await self._stop_play()
        bridge = Bridge(f"ccb-{uuid.uuid4().hex}")
        try:
            await self.tel.ari.create_bridge(bridge.id, "mixing", f"cc-{self.voice_id}")
            self.tel.router.register(bridge.id, self._on_bridge_event)
            self._registered.add(bridge.id)
            await self.tel.ari.add_channel(bridge.id, self.call.id)
        except IvrError as exc:
            with contextlib.suppress(IvrError):
                await self.tel.ari.destroy_bridge(bridge.id)
            raise CallFailed(f"could not create the bridge: {exc.message}") from exc
        self.bridge = bridge
        self.spawn(self._dial_into_bridge(bridge, destination, caller_id, timeout, None),
                   "connect")
        return bridge.id

    async def transfer(self, destination: Destination, caller_id: str, timeout: int) -> str:
        """Attended: the current peer stays until the new leg answers, then is released."""
        bridge = self.check_bridged()
        if bridge.dialing is not None:
            raise RequestPending("A transfer is already in progress", 408)
        leg = Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination)
        bridge.dialing = leg
        self.spawn(self._dial_into_bridge(bridge, destination, caller_id, timeout, leg),
                   "transfer")
        return leg.id

    async def forward(self, destination: Destination, caller_id: str, timeout: int) -> None:
        """The bridged peer is released now and the new destination dialled in its place."""
        bridge = self.check_bridged()
        if bridge.dialing is not None:
            raise RequestPending("A transfer is already in progress", 408)
        old = bridge.peer
        bridge.peer = None
        leg = Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination)
        bridge.dialing = leg
        if old is not None:
            await old.hangup()
        self.spawn(self._dial_into_bridge(bridge, destination, caller_id, timeout, leg),
                   "forward")

    async def _dial_into_bridge(self, bridge: Bridge, destination: Destination, caller_id: str,
                                timeout: int, leg: Leg | None) -> None:
        leg = leg or Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination)
        bridge.dialing = leg
        to: dict[str, Any] = {"to": destination.value}
        try:
            await leg.dial(caller_id, timeout)
        except IvrError as exc:
            log.info("[%s] dialling %s failed: %s", self.call.id, destination.value, exc.message)
            bridge.dialing = None
            self.emit("bridge_failed", **to, cause="failed")
            await self._drop_bridge_if_alone(bridge)
            return
        try:
            if await leg.rings_first():
                self.emit("bridging", **to, channel_id=leg.id)
            await leg.answered
        except CallHungUp as exc:
            bridge.dialing = None
            if not self.call.gone:
                self.emit("bridge_failed", **to, cause=exc.message)
                await self._drop_bridge_if_alone(bridge)
            return
        bridge.dialing = None
        if self.call.gone or self.bridge is not bridge:
            await leg.hangup()
            return
        await self.tel.ari.add_channel(bridge.id, leg.id)
        old, bridge.peer = bridge.peer, leg
        if old is not None:
            await old.hangup()
        self.emit("bridged", **to, channel_id=leg.id, bridge_id=bridge.id)
        leg.call.add_listener(self._on_peer_event)
        cause = await asyncio.shield(leg.destroyed)
        if bridge.peer is leg and not self.call.gone:
            bridge.peer = None
            self.emit("bridge_disconnected", **to, channel_id=leg.id, cause=plain_name(cause))
            await self._drop_bridge_if_alone(bridge)

    def _on_peer_event(self, event: Event) -> None:
        if event["type"] == "ChannelDtmfReceived" and self.bridged:
            self.emit("dtmfcollected", channel_id=event["channel"]["id"], digit=event["digit"])

    async def _drop_bridge_if_alone(self, bridge: Bridge) -> None:
        if bridge.peer is not None or bridge.dialing is not None or self.bridge is not bridge:
            return
        self.bridge = None
        if bridge.held:
            with contextlib.suppress(IvrError):
                await self.tel.ari.stop_moh(self.call.id)
        with contextlib.suppress(IvrError):
            await self.tel.ari.destroy_bridge(bridge.id)

    def _on_bridge_event(self, event: Event) -> None:
        if event["type"] in RECORDING_EVENTS:
            self._on_recording_event(event)

    # --- hold ---------------------------------------------------------------------------
    async def hold(self, on: bool) -> None:
        """On hold, this leg leaves the conversation and hears music; the peer hears
        silence. Holding a held call (or resuming a live one) changes nothing."""
        bridge = self.check_bridged()
        if on == bridge.held:
            return
        try:
            if on:
                await self.tel.ari.remove_channel(bridge.id, self.call.id)
                await self.tel.ari.start_moh(self.call.id, "default")
            else:
                await self.tel.ari.stop_moh(self.call.id)
                await self.tel.ari.add_channel(bridge.id, self.call.id)
        except IvrError as exc:
            raise CallFailed(f"hold failed: {exc.message}") from exc
        bridge.held = on

    # --- recording ----------------------------------------------------------------------
    async def start_recording(self, recording_name: str | None, fmt: str, *,
                              whole_call: bool = False) -> uuid.UUID:
        """On demand: the bridge's mix while the leg is in the call's bridge (bridged, or
        waiting for the second leg to answer), else the call's leg. Asterisk refuses to record
        a channel in a bridge, and keeps a channel it dialled in its invisible dial bridge for
        life: an outbound call's leg is recorded through a snoop channel hearing what the leg
        receives (its far end), the same audio a channel recording of an inbound leg holds.
        `whole_call` (auto_record): a snoop hearing both directions, so the one file runs from
        connect to the end across prompts, bridges and transfers.

        Answers once Asterisk says the take started (`started` leaves then, from the event,
        ahead of any end event) or failed (an error, and no event)."""
        self.check_connected()
        if self.recording is not None:
            raise RequestPending("Call is already recording", 408)
        recording_id = uuid.uuid4()
        name = f"cc-{recording_id.hex}"
        in_bridge = self.bridge is not None and not whole_call
        spy = "both" if whole_call else "in" if self.direction == "outbound" else None
        if not await self.store.insert_recording(
            recording_id=recording_id, application_id=self.app.id, voice_id=self.voice_id,
            recording_name=recording_name or str(recording_id), asterisk_name=name, fmt=fmt,
            mixed=in_bridge or whole_call,
        ):
            raise RecordingNameTaken(f"A recording named '{recording_name}' already exists")
        active = ActiveRecording(recording_id, name, asyncio.Event(),
                                 asyncio.get_running_loop().create_future())
        self.recording = active
        recorded = "wav" if fmt == "mp3" else fmt  # Asterisk writes no MP3: encoded on GET
        where = "bridge" if in_bridge else "call"
        failed = RecordingFailed(f"Failed to start recording on {where}")
        try:
            if in_bridge:
                assert self.bridge is not None
                await self.tel.ari.bridge_record(self.bridge.id, name, fmt=recorded)
            else:
                if spy is not None:
                    active.snoop_id = await self._snoop(spy)
                await self.tel.ari.record(active.snoop_id or self.call.id, name, fmt=recorded,
                                          terminate_on="none")
            began = await self._began(active)
        except IvrError as exc:
            await self._abandon(active)
            raise failed from exc
        if not began:
            log.warning("[%s] recording %s did not start", self.call.id, recording_id)
            await self._abandon(active)
            if self.call.gone:
                raise CallStateMismatch("Call is already disconnected")
            raise failed
        return recording_id

    async def _began(self, active: ActiveRecording) -> bool:
        gone = asyncio.ensure_future(self.call.wait_gone())
        try:
            await asyncio.wait({active.begun, gone}, timeout=RECORDING_START_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        return active.begun.done() and active.begun.result()

    async def _abandon(self, active: ActiveRecording) -> None:
        """A take that did not start as asked leaves nothing behind: no live recording, snoop
        channel or row (or, had `started` left already, it ends `failed`)."""
        if self.recording is active:
            self.recording = None  # its later events, if any, are ignored from here
        if not active.begun.done() or active.begun.result():
            with contextlib.suppress(IvrError):
                await self.tel.ari.cancel_live_recording(active.asterisk_name)
        await self._drop_snoop(active)
        if active.begun.done() and active.begun.result():
            self.emit("failed", recording_id=str(active.recording_id), msg="recording failed",
                      change=functools.partial(self.store.finish_recording,
                                               active.recording_id, "failed", None))
        else:
            await self.store.delete_recording(active.recording_id)
        active.done.set()

    async def stop_recording(self) -> uuid.UUID:
        self.check_connected()
        active = self.recording
        if active is None:
            raise CallStateMismatch("Call is not recording")
        try:
            await self.tel.ari.stop_live_recording(active.asterisk_name)
        except AriHttpError as exc:
            if exc.status != 404:  # 404: it had just ended by itself
                raise RecordingFailed("Failed to stop recording") from exc
        return active.recording_id

    async def _snoop(self, spy: str) -> str:
        """A snoop channel in our app hearing the call's leg (`in`: what the leg receives;
        `both`: that and what it sends); its recording events come to this call."""
        snoop_id = f"ccs-{uuid.uuid4().hex}"
        entered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def sink(event: Event) -> None:
            if event["type"] == "StasisStart" and not entered.done():
                entered.set_result(None)
            elif event["type"] in RECORDING_EVENTS:
                self._on_recording_event(event)

        self.tel.router.register(snoop_id, sink)
        self._registered.add(snoop_id)
        await self.tel.ari.snoop(self.call.id, snoop_id, app=self.tel.app, spy=spy,
                                 app_args="record-snoop")
        try:
            await asyncio.wait_for(entered, 5)
        except TimeoutError:
            with contextlib.suppress(IvrError):
                await self.tel.ari.hangup(snoop_id)
            raise CallFailed("the recording's snoop channel did not start") from None
        return snoop_id

    async def _drop_snoop(self, active: ActiveRecording) -> None:
        if active.snoop_id is not None:
            with contextlib.suppress(IvrError):
                await self.tel.ari.hangup(active.snoop_id)

    def _on_recording_event(self, event: Event) -> None:
        """Events of a take are queued here, as Asterisk sends them: `started` before its end
        whatever the order of the request's answer and the events on the wire."""
        rec = event["recording"]
        active = self.recording
        if active is None or rec.get("name") != active.asterisk_name:
            return
        kind = event["type"]
        if not active.begun.done():
            active.begun.set_result(kind != "RecordingFailed")
            if kind == "RecordingFailed":
                return  # the waiting request answers the error
            self.emit("started", recording_id=str(active.recording_id), msg="")
        if kind == "RecordingStarted":
            return
        self.recording = None
        self._ending = active
        state = "completed" if kind == "RecordingFinished" else "failed"
        duration = rec.get("duration")
        self.emit(state, recording_id=str(active.recording_id),
                  msg="" if state == "completed" else "recording failed",
                  change=functools.partial(
                      self.store.finish_recording, active.recording_id, state,
                      float(duration) if duration is not None else None))
        self.spawn(self._recording_ended(active), "recording-ended")

    async def _recording_ended(self, active: ActiveRecording) -> None:
        await self._drop_snoop(active)
        active.done.set()

    # --- hangup and the end -------------------------------------------------------------
    async def hangup(self) -> None:
        if self.ended:
            raise CallStateMismatch("Call is already disconnected")
        self.cause = self.cause or "hangup requested"
        await self.call.hangup()

    async def finish(self) -> None:
        """Once: release the other legs and the bridge, settle the recording, record the end
        and send `disconnected` (the last event)."""
        if self.ended:
            return
        bridge = self.bridge
        if bridge is not None:
            for leg in (bridge.peer, bridge.dialing):
                if leg is not None:
                    await leg.hangup()
        await self._stop_play()
        if self.state in ("incomingcall",) and self.cause == "not accepted":
            with contextlib.suppress(IvrError):
                await self.call.hangup("normal")
        await self.call.wait_gone(2)
        active = self.recording or self._ending
        if active is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(active.done.wait(), 5)
        if bridge is not None:
            with contextlib.suppress(IvrError):
                await self.tel.ari.destroy_bridge(bridge.id)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.recording is not None:  # no event came: judge it by the stored file
            await self._settle_lost_recording(self.recording)
        for key in self._registered:
            self.tel.router.unregister(key)
        cause = self.cause or plain_name(self.call.hangup_cause)
        final = "failed" if self.state == "initiated" and cause == "failed" else "disconnected"
        self.emit("disconnected", channel_id=self.call.id, cause=cause,
                  change=self._state_change(final, cause))
        self._outbox.put_nowait(None)
        if self._on_end is not None:
            self._on_end(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._sender), 20)

    async def _settle_lost_recording(self, active: ActiveRecording) -> None:
        self.recording = None
        try:
            info = await self.tel.ari.get_stored_recording(active.asterisk_name)
        except IvrError:
            info = None
        state = "completed" if info else "failed"
        self.emit(state, recording_id=str(active.recording_id),
                  msg="" if info else "recording failed",
                  change=functools.partial(self.store.finish_recording, active.recording_id,
                                           state, None))
