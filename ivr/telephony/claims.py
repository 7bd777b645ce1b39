"""Claiming the calls Asterisk 22's StasisBroadcast offers to a pool of engines
(docs/scale-out.md): every app of an engine gets each offer, it is claimed once
(`POST /events/claim`: the first claim wins, the others get 409). An engine with more calls
claims a little later, so an idle engine wins and the pool balances on calls in progress, a
burst of offers included (engines equally busy: the fastest answer wins)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping

from ivr.core.errors import TelephonyError
from ivr.telephony.rest import AriClient, AriHttpError

log = logging.getLogger(__name__)

# How much later per call in progress (at most; StasisBroadcast waits IVR_CLAIM_MS, 2 s).
CLAIM_DELAY_PER_CALL = 0.005
CLAIM_DELAY_MAX = 0.3
_WON_FOR = 5.0  # a won claim whose channel never entered our app (hung up) stops counting


class Claims:
    def __init__(self, ari: AriClient, calls: Mapping[str, object]) -> None:
        self._ari = ari
        self._calls = calls  # the calls in progress, by channel id
        self._offered: OrderedDict[str, None] = OrderedDict()  # the ids offered lately
        self._claiming = 0  # claims sent, not answered yet
        self._won: dict[str, float] = {}  # claims won, their StasisStart not here yet: when
        self.claimed = 0
        self.lost = 0

    def offered(self, channel_id: str, app: str) -> asyncio.Task[None] | None:
        """A CallBroadcast that reached our `app`: the claim's task (claimed for that app, the
        first of ours the offer reached: Asterisk sends offers in random order, so calls
        spread over our apps), or None for an offer already being claimed."""
        if channel_id in self._offered:
            return None
        self._offered[channel_id] = None
        if len(self._offered) > 4096:
            self._offered.popitem(last=False)
        delay = min(self._load() * CLAIM_DELAY_PER_CALL, CLAIM_DELAY_MAX)
        self._claiming += 1
        return asyncio.create_task(self._claim(channel_id, app, delay))

    def started(self, channel_id: str) -> None:
        self._won.pop(channel_id, None)

    async def _claim(self, channel_id: str, app: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            await self._ari.claim_channel(channel_id, app)
        except AriHttpError as exc:  # 409: another engine's; 404: hung up or timed out
            self.lost += 1
            log.debug("[%s] not ours: %s", channel_id, exc.status)
            return
        except TelephonyError as exc:
            self.lost += 1
            log.warning("[%s] could not claim the call: %s", channel_id, exc)
            return
        finally:
            self._claiming -= 1
        self.claimed += 1
        if channel_id not in self._calls:  # its StasisStart is on its way
            self._won[channel_id] = asyncio.get_running_loop().time()

    def _load(self) -> int:
        now = asyncio.get_running_loop().time()
        for channel_id, at in list(self._won.items()):
            if now - at > _WON_FOR:
                del self._won[channel_id]
        return len(self._calls) + self._claiming + len(self._won)
