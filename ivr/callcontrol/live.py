"""A call under programmatic control, while it lives in this process.

`LiveCall` is the voice_id's leg (the caller on an inbound call, the called party on an
outbound one) plus what the application asked for: a prompt or menu playing, a bridge to a
second leg, a recording. REST handlers call its methods; its own steps (a menu waiting for
keys, a leg being dialled) run as tasks it owns and cancels when the call ends. Every event the
application hears leaves through one ordered queue per call.

LiveCall is written in parts, each a module building on the one before: live_call.py (its
state, its views and its ordered event queue; `Leg`, the channel we dial), live_recording.py,
live_play.py, live_bridge.py, then this module (the inbound and outbound runs, the end)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ivr.callcontrol.errors import CallStateMismatch, RecordingFailed
from ivr.callcontrol.live_bridge import BridgePart
from ivr.callcontrol.live_call import TRUNK_DOWN, Leg
from ivr.callcontrol.models import PlayRequest
from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony import amd
from ivr.telephony.causes import plain_name
from ivr.telephony.rest import AriHttpError

log = logging.getLogger(__name__)


class LiveCall(BridgePart):
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
        final = ("failed" if self.state == "initiated" and cause in ("failed", TRUNK_DOWN)
                 else "disconnected")
        self.emit("disconnected", channel_id=self.call.id, cause=cause,
                  change=self._state_change(final, cause))
        self._outbox.put_nowait(None)
        if self._on_end is not None:
            self._on_end(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._sender), 20)
