"""LiveCall, its recordings: on demand (the call's leg, the bridge's mix, or a snoop on an outbound
leg) and auto_record's whole-call snoop, each answered once Asterisk says it started."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid

from ivr.callcontrol.errors import (
    CallFailed,
    CallStateMismatch,
    RecordingFailed,
    RecordingNameTaken,
    RequestPending,
)
from ivr.callcontrol.live_call import RECORDING_EVENTS, ActiveRecording, LiveCallState
from ivr.core.errors import IvrError
from ivr.telephony.events import Event
from ivr.telephony.rest import AriHttpError

log = logging.getLogger(__name__)


# How long a recording request waits for Asterisk to say the take started (or failed).
RECORDING_START_TIMEOUT = 5.0


class RecordingPart(LiveCallState):
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
