"""LiveCall, its bridge: connect a second leg, transfer (attended) and forward, hold."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from ivr.callcontrol.errors import CallFailed, CallStateMismatch, RequestPending, TrunkDown
from ivr.callcontrol.live_call import (
    RECORDING_EVENTS,
    TRUNK_DOWN,
    Bridge,
    Leg,
    trunk_endpoint,
)
from ivr.callcontrol.live_play import PlayPart
from ivr.callcontrol.models import Destination
from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony.causes import plain_name
from ivr.telephony.events import Event

log = logging.getLogger(__name__)


class BridgePart(PlayPart):
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
        leg = Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination, trunk_endpoint(self.app))
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
        leg = Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination, trunk_endpoint(self.app))
        bridge.dialing = leg
        if old is not None:
            await old.hangup()
        self.spawn(self._dial_into_bridge(bridge, destination, caller_id, timeout, leg),
                   "forward")

    async def _dial_into_bridge(self, bridge: Bridge, destination: Destination, caller_id: str,
                                timeout: int, leg: Leg | None) -> None:
        leg = leg or Leg(self.tel, f"ccl-{uuid.uuid4().hex}", destination, trunk_endpoint(self.app))
        bridge.dialing = leg
        to: dict[str, Any] = {"to": destination.value}
        try:
            await leg.dial(caller_id, timeout)
        except IvrError as exc:
            log.info("[%s] dialling %s failed: %s", self.call.id, destination.value, exc.message)
            bridge.dialing = None
            self.emit("bridge_failed", **to,
                      cause=TRUNK_DOWN if isinstance(exc, TrunkDown) else "failed")
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
