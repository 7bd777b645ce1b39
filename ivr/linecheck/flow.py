"""The line check: a number an operator or developer dials to hear that audio flows both ways.
It greets, records up to 30 s after the beep (until # or silence), plays the take back, and
says goodbye. The take is deleted from Asterisk afterwards."""

from __future__ import annotations

import logging

from ivr.core.errors import TelephonyError
from ivr.telephony.call import Call

log = logging.getLogger(__name__)


async def line_check(call: Call) -> None:
    await call.answer()
    await call.play("sound:hello-world", "sound:vm-intro", "sound:beep")
    name = f"linecheck-{call.id}"
    take = await call.record(name, max_duration=30, max_silence=5)
    try:
        if take.hung_up:
            return
        log.info("line check recorded %.1fs", take.duration or 0.0)
        if take.ok and (take.duration or 0) > 0:
            await call.play(f"recording:{name}")
        await call.play("sound:vm-goodbye")
    finally:
        await _delete_quietly(call, name)


async def _delete_quietly(call: Call, name: str) -> None:
    try:
        await call.ari.delete_stored_recording(name)
    except TelephonyError:
        pass


async def not_in_service(call: Call) -> None:
    """A number that reaches the engine but that nothing is configured to answer."""
    # A carrier pointing a DID here that no `ivr number add` made shows up in this line.
    log.warning("call to %r: no number, recorder or flow answers it: not in service", call.dialed)
    await call.answer()
    await call.play("sound:silence/1", "sound:ss-noservice")
