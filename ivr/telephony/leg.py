"""A channel we create in our Stasis app and dial (call control's second legs and outbound
calls, the dialer's calls). The router feeds it before the channel exists, and its sink turns
ARI's progress events into futures: in Stasis, ringing, answered, destroyed (with the Q.850
cause)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

from ivr.telephony.call import Call
from ivr.telephony.events import Event
from ivr.telephony.rest import AriClient


class NotInStasis(TimeoutError):
    """The created channel did not enter our Stasis app in time."""


class DialledLeg:
    def __init__(self, ari: AriClient, channel_id: str) -> None:
        self.ari = ari
        self.id = channel_id
        self.call = Call(ari, {"id": channel_id}, [])
        loop = asyncio.get_running_loop()
        self.in_stasis: asyncio.Future[None] = loop.create_future()
        self.ringing: asyncio.Future[None] = loop.create_future()
        self.answered: asyncio.Future[None] = loop.create_future()
        self.destroyed: asyncio.Future[int | None] = loop.create_future()
        self.ring_at: datetime | None = None

    async def originate(self, endpoint: str, *, app: str, app_args: str,
                        variables: Mapping[str, str] | None, stasis_wait: float,
                        dial_timeout: int | None = None) -> None:
        """Create the channel in `app`, wait until it is there (dial wants it there), dial
        it. NotInStasis when it is not there within `stasis_wait` seconds."""
        await self.ari.create_channel(self.id, endpoint, app=app, app_args=app_args,
                                      variables=variables)
        # The new channel enters Stasis a moment after create answers.
        try:
            await asyncio.wait_for(asyncio.shield(self.in_stasis), stasis_wait)
        except TimeoutError:
            raise NotInStasis(f"channel {self.id} did not enter the Stasis app") from None
        await self.ari.dial(self.id, timeout=dial_timeout)

    def sink(self, event: Event) -> None:
        self.call.feed(event)
        kind = event["type"]
        if kind == "StasisStart" and not self.in_stasis.done():
            self.in_stasis.set_result(None)
        elif kind == "Dial" and event.get("dialstatus") == "RINGING":
            self._rang()
        elif kind == "ChannelStateChange":
            state = event["channel"]["state"]
            if state == "Ringing":
                self._rang()
            elif state == "Up" and not self.answered.done():
                self.answered.set_result(None)
        elif kind == "ChannelDestroyed":
            self.ended(event.get("cause"))

    def _rang(self) -> None:
        self.ring_at = self.ring_at or datetime.now(UTC)
        if not self.ringing.done():
            self.ringing.set_result(None)

    def ended(self, cause: int | None) -> None:
        if not self.destroyed.done():
            self.destroyed.set_result(cause)
