"""action_on_connect's bridge: once the dialled party answers, one more participant is dialled
and bridged with them, as `PUT .../connect` would (the same bridging / bridged / bridge_failed
events). It runs beside the outbound call's own steps (`LiveCall.run_outbound`), which mark the
call connected on that same answer."""

from __future__ import annotations

import asyncio
import logging

from ivr.callcontrol.live import LiveCall
from ivr.callcontrol.live_call import Leg
from ivr.callcontrol.models import BRIDGE_RING_TIMEOUT, ConnectRequest
from ivr.core.errors import CallHungUp, IvrError

log = logging.getLogger(__name__)

# How long the answered call may take to be marked connected (it is the next step after the
# answer, normally within the same turn of the event loop).
CONNECTED_WAIT = 5.0


async def bridge_on_answer(live: LiveCall, leg: Leg, request: ConnectRequest) -> None:
    try:
        await asyncio.shield(leg.answered)
    except CallHungUp:
        return  # never answered: the call's own steps report it
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECTED_WAIT
    while live.state != "connected":
        if live.ended or live.call.gone or loop.time() > deadline:
            return
        await asyncio.sleep(0.01)
    try:
        await live.connect(request.to, request.from_number, BRIDGE_RING_TIMEOUT)
    except IvrError as exc:
        if live.call.gone:
            return
        log.info("[%s] bridge on connect failed: %s", live.call.id, exc.message)
        live.emit("bridge_failed", to=request.to.value, cause=exc.message)
