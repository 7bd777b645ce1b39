"""One task per call: a new channel in our Stasis app gets a `Call` and the flow chosen for it;
the runner always hangs up in `finally`. After every (re)connection of the event socket it
resynchronises: calls whose channel vanished are ended, channels in our app that no task owns
(left by a process that died) are hung up, steps whose end event was lost are settled."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ivr.core.errors import CallHungUp, CallLost, TelephonyError, failure_of
from ivr.core.logs import for_call
from ivr.telephony.call import Call
from ivr.telephony.call_log import CallLog
from ivr.telephony.claims import Claims
from ivr.telephony.events import UNUSED_EVENTS, Event, Router, stasis_apps
from ivr.telephony.rest import AriClient, AriHttpError

log = logging.getLogger(__name__)
# How long a call's state changes may still run after its flow (the patient pool waits out
# a database outage of up to 30 s).
_WRITE_BEHIND_GRACE = 45.0
# How long a channel in our app but unknown at a resynchronisation may take to show its
# StasisStart before it counts as left by a previous engine.
ORPHAN_GRACE = 0.5
_SHARD = re.compile(r"-\d+$")  # app-0, app-1 ... (events.stasis_apps)

Flow = Callable[[Call], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    flow: Flow


Choose = Callable[[Call], Awaitable[Route]]
# Whether a channel found in our app with no task (a previous engine's call, after a restart)
# can be resumed, and how: None hangs it up.
Adopt = Callable[[Call], Awaitable[Route | None]]
# Run after each resynchronisation with the ids of the channels still alive (features finish
# there what a process that died left behind).
ResyncHook = Callable[[set[str]], Awaitable[object]]


class CallRunner:
    def __init__(
        self, ari: AriClient, app: str, choose: Choose, call_log: CallLog | None = None,
        *, shards: int = 1, apology: str | None = None, pool: str | None = None,
    ) -> None:
        self._ari = ari
        self.app = app
        self.shards = shards
        self.apps = stasis_apps(app, shards)
        self._our_apps = frozenset(self.apps)
        self._choose = choose
        self._call_log = call_log
        # What a caller hears when the flow fails on our side, before the hang-up (media URI).
        self.apology = apology
        self.router = Router(self._on_unrouted)
        self.calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.started = 0
        self.finished = 0
        self.resync_hooks: list[ResyncHook] = []
        self.adopt: Adopt | None = None
        self.adopted = 0
        # One of a pool of engines (IVR_APP, the pool's name, when the dialplan offers calls
        # to apps IVR_APP.*): calls come as CallBroadcast offers (claims.py).
        self.pool = pool
        self.claims = Claims(ari, self.calls)
        # The other media nodes this engine drives (IVR_ARI_NODES): what is alive is alive on
        # any of them (the call log and recovery are shared by all).
        self.peers: list[AriClient] = []
        # Run after taking over a dead engine's calls, with the ids of the channels alive.
        self.takeover_hooks: list[ResyncHook] = []

    # --- new calls ----------------------------------------------------------------------
    def _on_unrouted(self, event: Event) -> None:
        if event.get("application") not in self._our_apps:
            return
        if event["type"] == "CallBroadcast":
            if self.pool is not None and self.accepting:  # draining: another engine takes it
                task = self.claims.offered(event["channel"]["id"], event["application"])
                if task is not None:
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            return
        if event["type"] != "StasisStart":
            return
        channel = event["channel"]
        if not self.accepting:
            log.info("[%s] refused: shutting down", channel["id"])
            task = asyncio.create_task(self._refuse(channel["id"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._start(Call(self._ari, channel, list(event.get("args") or [])))

    def _start(self, call: Call, route: Route | None = None) -> None:
        self.claims.started(call.id)
        self.calls[call.id] = call
        self.router.register(call.id, call.feed)
        self.started += 1
        task = asyncio.create_task(self._run(call, route), name=f"call-{call.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refuse(self, channel_id: str) -> None:
        try:
            await self._ari.hangup(channel_id, "congestion")
        except AriHttpError:
            pass

    async def _run(self, call: Call, route: Route | None = None) -> None:
        try:
            await run_call(call, self._choose if route is None else route, self._call_log,
                           self.apology)
        finally:
            self.router.unregister(call.id)
            self.calls.pop(call.id, None)
            self.finished += 1

    # --- resynchronisation --------------------------------------------------------------
    async def resync(self) -> None:
        for app in self.apps:
            try:
                await self._ari.set_event_filter(app, disallowed=UNUSED_EVENTS)
            except AriHttpError as exc:
                if exc.status != 404:
                    raise
                # The app's own socket is not (re)connected yet: Asterisk knows no such app
                # until it is, and that connection resyncs again.
                log.debug("event filter of %s: not connected yet", app)
        await self._announce_shards()
        channels = await self._ari.list_channels()
        live = {c["id"] for c in channels}
        for call in list(self.calls.values()):
            if call.id not in live:
                call.mark_gone("vanished while events were down", lost=True)
        elsewhere = await self._live_on_peers()
        orphans = []
        claimed = await self._claimed_by_us(channels)
        unknown = [c for c in channels if c["id"] not in self.router
                   and (self._in_our_app(c) or c["id"] in claimed)]
        if unknown:
            # A call that entered our app just now has its StasisStart still on the way (the
            # socket is read while this list was fetched): a moment for it to arrive, so that
            # a call placed right after a (re)connection is not hung up as an orphan.
            await asyncio.sleep(ORPHAN_GRACE)
        for channel in unknown:
            if channel["id"] in self.router:
                continue
            if self.accepting and await self._adopted(channel):
                continue
            log.warning("[%s] orphaned in app %s: hanging up", channel["id"], self.app)
            await self._refuse(channel["id"])
            orphans.append(channel["id"])
        await self._wait_destroyed(orphans)
        live -= set(orphans)
        await asyncio.gather(*(call.resync() for call in list(self.calls.values())),
                             return_exceptions=True)
        if elsewhere is None:
            log.warning("another media node does not answer: calls and sessions are "
                        "reconciled at the next resynchronisation")
            return
        live |= elsewhere
        if self._call_log is not None:
            closed = await self._call_log.reconcile(live)
            if closed:
                log.warning("closed %d call record(s) whose channel no longer exists", closed)
        for hook in self.resync_hooks:
            await hook(live)

    async def _adopted(self, channel: dict[str, Any], *, subscribe: bool = False) -> bool:
        """A call a previous engine left in our app (a restart), or in its own (`subscribe`:
        an engine of the pool that died; its events then come to our app): resumed when its
        feature knows where it was, from the database (see the Adopt hook)."""
        if self.adopt is None:
            return False
        call = Call(self._ari, channel, [])
        try:
            route = await self.adopt(call)
        except Exception:
            log.exception("[%s] could not decide whether to resume it", call.id)
            return False
        if route is None:
            return False
        if subscribe:
            try:
                await self._ari.subscribe(self.app, call.id)
            except TelephonyError as exc:
                log.warning("[%s] cannot take the call's events over: %s", call.id, exc)
                return False
        log.warning("[%s] resuming a call a previous engine left: %s", call.id, route.name)
        self.adopted += 1
        self._start(call, route)
        return True

    async def take_over(self, dead: set[str]) -> int:
        """The calls engines of the pool that died (`dead`: their apps) left on this node:
        resumed here where their feature can, else hung up; then what they leave is settled
        as after a restart (the call log, takeover_hooks). How many calls were theirs."""
        channels = await self._ari.list_channels()
        theirs = [c for c in channels if c["id"] not in self.router
                  and _SHARD.sub("", _stasis_app(c)) in dead]  # their apps and shards
        offered = [c["id"] for c in channels if c["id"] not in self.router
                   and (c.get("dialplan") or {}).get("app_name") == "StasisBroadcast"]
        if self._call_log is not None and offered:
            owners = await self._call_log.engines_of(offered)
            theirs += [c for c in channels if owners.get(c["id"]) in dead]
        hung = []
        for channel in theirs:
            if not (self.accepting and await self._adopted(channel, subscribe=True)):
                await self._refuse(channel["id"])
                hung.append(channel["id"])
        await self._wait_destroyed(hung)
        elsewhere = await self._live_on_peers()
        if elsewhere is not None:
            live = {c["id"] for c in channels} - set(hung) | elsewhere
            if self._call_log is not None:
                await self._call_log.reconcile(live)
            for hook in self.takeover_hooks:
                await hook(live)
        return len(theirs)

    async def _live_on_peers(self) -> set[str] | None:
        """Channels alive on the other nodes; None when one of them cannot say (nothing may
        then be taken for gone)."""
        live: set[str] = set()
        for peer in self.peers:
            try:
                live |= {c["id"] for c in await peer.list_channels()}
            except TelephonyError:
                return None
        return live

    async def _claimed_by_us(self, channels: list[dict[str, Any]]) -> set[str]:
        """Channels a broadcast gave this engine (the call log says which engine runs what:
        Asterisk keeps no trace of a broadcast's winner)."""
        offered = [c["id"] for c in channels if c["id"] not in self.router
                   and (c.get("dialplan") or {}).get("app_name") == "StasisBroadcast"]
        if self.pool is None or self._call_log is None or not offered:
            return set()
        owners = await self._call_log.engines_of(offered)
        return {cid for cid, engine in owners.items() if engine in self._our_apps}

    async def _announce_shards(self) -> None:
        """Tell the dialplan how many apps to spread incoming calls over (IVR_SHARDS), when it
        sends them to this engine's app (IVR_APP): the count lives in one place, this engine's
        settings, and a restart with another count takes effect at once. An engine under
        another app name (a test instance beside the real one) leaves it alone. An engine of
        a pool makes sure the dialplan offers calls to the pool (IVR_ENTRY)."""
        if self.pool is not None:
            if (await self._ari.get_global_var("IVR_APP") == self.pool
                    and await self._ari.get_global_var("IVR_ENTRY") != "broadcast"):
                await self._ari.set_global_var("IVR_ENTRY", "broadcast")
                log.info("incoming calls now offered to every engine of pool %s", self.pool)
            return
        if await self._ari.get_global_var("IVR_APP") != self.app:
            return
        if await self._ari.get_global_var("IVR_SHARDS") != str(self.shards):
            await self._ari.set_global_var("IVR_SHARDS", str(self.shards))
            log.info("incoming calls now spread over %d Stasis app(s): %s", self.shards,
                     ", ".join(self.apps[1:] or self.apps))

    async def _wait_destroyed(self, channel_ids: list[str], timeout: float = 5.0) -> None:
        """Until hung-up channels are gone (what they were recording is then written out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for channel_id in channel_ids:
            while loop.time() < deadline:
                try:
                    await self._ari.get_channel(channel_id)
                except AriHttpError:
                    break
                await asyncio.sleep(0.05)

    def _in_our_app(self, channel: dict[str, Any]) -> bool:
        return _stasis_app(channel) in self._our_apps

    # --- shutdown -----------------------------------------------------------------------
    async def drain(self, grace: float) -> None:
        """Take no new calls; let calls in progress finish for up to `grace` seconds, then
        cancel them (each hangs up in its `finally`)."""
        self.accepting = False
        if self._tasks:
            log.info("waiting up to %.0fs for %d call(s) to finish", grace, len(self.calls))
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)


def _stasis_app(channel: dict[str, Any]) -> str:
    """The Stasis app a channel entered by Stasis(app, ...), or ""."""
    dialplan = channel.get("dialplan")
    if not isinstance(dialplan, dict) or dialplan.get("app_name") != "Stasis":
        return ""
    return str(dialplan.get("app_data", "")).split(",", 1)[0]


async def run_call(call: Call, route: Route | Choose, call_log: CallLog | None,
                   apology: str | None) -> None:
    """One call's run, whichever face brought it (ARI here, FastAGI in agi_server.py): the
    route (or `route(call)` chooses it), the call log's row, the flow, an apology when the flow
    fails on our side, its state changes drained, then always the hang-up."""
    for_call(call.id)
    outcome = "completed"
    failure: tuple[str, str] | None = None
    route_name = ""
    try:
        if not isinstance(route, Route):
            route = await route(call)
        route_name = route.name
        log.info("call from %s to %s -> %s", call.caller_id or "anonymous",
                 call.dialed, route.name)
        if call_log is not None:
            await call_log.started(call.id, "inbound", call.caller_id, call.dialed, route.name)
        await route.flow(call)
        await call.heard()  # what the flow said last (its goodbye) before the hang-up
    except CallLost as exc:  # not known to be the caller's doing: the record says so
        outcome = "lost"
        failure = failure_of(exc)
    except CallHungUp:
        outcome = "caller hung up"
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except Exception as exc:
        outcome = "error"
        failure = failure_of(exc)
        log.exception("flow %s failed", route_name)
        await _apologise(call, apology)
    finally:
        await _written(call)
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(_finish(call, call_log, outcome, failure))
        except (TimeoutError, asyncio.CancelledError):
            log.warning("clean-up did not finish in time")


async def _written(call: Call) -> None:
    """The flow's state changes still running behind the call finish (a database outage
    may hold them up to the pool's patience) before the call's record is closed."""
    try:
        async with asyncio.timeout(_WRITE_BEHIND_GRACE):
            await asyncio.shield(call.written())
    except CallHungUp:
        pass
    except (TimeoutError, asyncio.CancelledError):
        log.warning("state changes still running after the call")
    except Exception as exc:
        log.warning("a state change failed after the flow: %s", exc)


async def _apologise(call: Call, apology: str | None) -> None:
    """Never silence then a hang-up: the caller hears that it is our fault, not theirs."""
    call.hush()  # what the failed flow still had to say
    if apology is None:
        return
    try:
        async with asyncio.timeout(10):
            await call.play(apology)
    except CallHungUp:
        pass
    except Exception as exc:  # the flow's failure may be Asterisk's
        log.warning("the apology could not be played: %s", exc)


async def _finish(call: Call, call_log: CallLog | None, outcome: str,
                  failure: tuple[str, str] | None = None) -> None:
    try:
        await call.hangup()
    except Exception as exc:
        log.warning("hangup failed: %s", exc)
    if call_log is not None:
        await call_log.ended(call.id, outcome, failure)
    await call.wait_gone(2)  # so its last events still route to it
    log.info("call ended: %s", outcome)
