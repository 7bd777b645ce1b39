"""LiveCall, first part: its state, its views and the one ordered queue every event the
application hears leaves through; and the pieces a live call is made of: `Telephony` (what it
needs of the telephony layer), `Leg` (a channel call control dials: ringing / answered / ended
with the hangup cause, ivr/telephony/leg.py), `Bridge`, `ActiveRecording`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from ivr.callcontrol import webhooks
from ivr.callcontrol.asr import Recognizer
from ivr.callcontrol.errors import CallFailed, CallStateMismatch, TrunkDown
from ivr.callcontrol.models import Application, Destination, timestamp
from ivr.callcontrol.store import CallControlStore
from ivr.callcontrol.webhooks import Change, Outgoing
from ivr.core.db import Conn
from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony.call import Call
from ivr.telephony.causes import plain_name
from ivr.telephony.events import Event, Router
from ivr.telephony.leg import DialledLeg, NotInStasis
from ivr.telephony.rest import AriClient
from ivr.telephony.trunk_health import PREFIX as TRUNK_PREFIX
from ivr.telephony.trunk_health import trunk_states

log = logging.getLogger(__name__)


RECORDING_EVENTS = ("RecordingStarted", "RecordingFinished", "RecordingFailed")


@dataclass
class Telephony:
    """What a live call needs of the telephony layer."""

    ari: AriClient
    router: Router
    app: str  # the Stasis app our legs enter
    trunk: str  # PJSIP endpoint numbers are dialled through


TRUNK_DOWN = "trunk down"  # the cause of a call not placed because its trunk is down


def trunk_endpoint(app: Application) -> str | None:
    """The pjsip endpoint an application's calls leave by (None: the engine's default)."""
    return f"{TRUNK_PREFIX}{app.trunk}" if app.trunk else None


class Leg(DialledLeg):
    """A leg call control dials (an outbound call, a connect's or transfer's second leg):
    registered with the router before it exists, unregistered once destroyed. It leaves by
    `trunk` (a pjsip endpoint), by default the engine's."""

    def __init__(self, tel: Telephony, channel_id: str, destination: Destination,
                 trunk: str | None = None) -> None:
        super().__init__(tel.ari, channel_id)
        self.tel = tel
        self.destination = destination
        self.trunk = trunk or tel.trunk

    def endpoint(self) -> str:
        if self.destination.is_sip:
            return f"PJSIP/{self.trunk}/{self.destination.value}"
        return f"PJSIP/{self.destination.value}@{self.trunk}"

    async def check_trunk(self) -> None:
        """A carrier trunk must be known to Asterisk and not offline (its OPTIONS unanswered):
        otherwise TrunkDown, before any channel exists. `unknown` (no OPTIONS answered yet)
        and an ARI that does not say are given the benefit of the doubt."""
        if not self.trunk.startswith(TRUNK_PREFIX):
            return
        name = self.trunk[len(TRUNK_PREFIX):]
        states = await trunk_states(self.tel.ari)
        if states is None:
            return
        state = states.get(name)
        if state is None:
            raise TrunkDown(f"trunk {name} is not configured on Asterisk (`ivr trunk apply`)")
        if state == "offline":
            raise TrunkDown(f"trunk {name} is down: the carrier does not answer (offline)")

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
        await self.check_trunk()
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


class LiveCallState:
    def __init__(
        self, *, tel: Telephony, store: CallControlStore, app: Application,
        call: Call, voice_id: uuid.UUID, direction: str, from_number: str, to_number: str,
        state: str, owner_ref: str | None = None, event_url: str | None = None,
        on_end: Callable[[LiveCallState], None] | None = None, recognizer: Recognizer | None = None,
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

    def _on_recording_event(self, event: Event) -> None:
        """A take's event: RecordingPart (live_recording.py) follows them."""

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

    def check_connected(self) -> None:
        if self.ended:
            raise CallStateMismatch("Call is already disconnected")
        if self.state != "connected":
            raise CallStateMismatch("Call is not connected yet")
