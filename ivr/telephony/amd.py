"""Answering-machine detection on a channel that stays in Stasis.

Asterisk's AMD() is a dialplan application, and sending the call itself to the dialplan would
end its Stasis session. Instead a snoop channel hears what the called party says (spy=in) and
is continued into `ivr-amd` (dialplan/ivr-amd.conf), which runs AMD() on that audio and comes
back into our app with ["amd", AMDSTATUS, AMDCAUSE]. The call itself never leaves Stasis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

from ivr.core.errors import IvrError
from ivr.telephony.events import Event, Router
from ivr.telephony.rest import AriClient

log = logging.getLogger(__name__)

AMD_CONTEXT = "ivr-amd"
# AMD() decides within its total analysis time (amd.conf: 5 s); this is the safety margin.
AMD_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class AmdResult:
    status: str  # MACHINE, HUMAN, NOTSURE, HANGUP
    cause: str  # e.g. LONGGREETING-2100-1500

    @property
    def machine(self) -> bool:
        return self.status == "MACHINE"


async def detect(ari: AriClient, router: Router, app: str, channel_id: str,
                 options: str = "", timeout: float = AMD_TIMEOUT) -> AmdResult:
    """Runs AMD() on what `channel_id`'s far end says. NOTSURE when no verdict came in
    `timeout` (or the snoop could not be set up); HANGUP when the call ended first."""
    snoop_id = f"cca-{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()
    entered: asyncio.Future[None] = loop.create_future()
    verdict: asyncio.Future[AmdResult] = loop.create_future()

    def sink(event: Event) -> None:
        kind = event["type"]
        if kind == "StasisStart":
            args = list(event.get("args") or [])
            if args[:1] == ["amd"]:
                if not verdict.done():
                    status, cause = [*args[1:3], "", ""][:2]
                    verdict.set_result(AmdResult(status, cause))
            elif not entered.done():
                entered.set_result(None)
        elif kind == "ChannelDestroyed" and not verdict.done():
            verdict.set_result(AmdResult("HANGUP", "HANGUP"))

    router.register(snoop_id, sink)  # before it exists: its StasisStart is no new call
    try:
        await ari.snoop(channel_id, snoop_id, app=app, spy="in", app_args="amd-snoop")
        await asyncio.wait_for(asyncio.shield(entered), 5)
        await ari.set_variable(snoop_id, "IVR_TARGET_APP", app)
        if options:
            await ari.set_variable(snoop_id, "IVR_AMD_OPTIONS", options)
        await ari.continue_in_dialplan(snoop_id, AMD_CONTEXT, "s", 1)
        result = await asyncio.wait_for(asyncio.shield(verdict), timeout)
    except (IvrError, TimeoutError) as exc:
        log.info("[%s] answering-machine detection gave no verdict: %s", channel_id,
                 getattr(exc, "message", None) or type(exc).__name__)
        result = AmdResult("NOTSURE", "NOVERDICT")
    finally:
        with contextlib.suppress(IvrError):
            await ari.hangup(snoop_id)
        router.unregister(snoop_id)
    log.info("[%s] answering-machine detection: %s (%s)", channel_id, result.status,
             result.cause)
    return result
