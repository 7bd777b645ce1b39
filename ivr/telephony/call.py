"""`Call`: what a flow sees of one channel. Straight-line async steps (`answer`, `say`,
`next_digit`, `collect_digits`, `record`, `hangup`), each raising `CallHungUp` once the caller
is gone. The call schedules what the caller hears (`say`, `hush`, barge-in: playback.py) and
writes the flow's state changes behind the conversation (`write_behind`: write_behind.py).

Events reach the call through `feed()`, called synchronously and in order by the router;
`feed()` only settles futures and buffers digits, so routing stays cheap.

Over the house's ~400 lines on purpose: the Call is the one object a flow talks to, and its
steps share one channel's state (digits typed ahead, playbacks and recordings in flight, the
take's terminator); what is not that state lives beside it (playback.py, recording.py,
write_behind.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from ivr.core.errors import CallHungUp, CallLost
from ivr.telephony import latency
from ivr.telephony.events import Event, Sink
from ivr.telephony.playback import Playback, QueuedPlayback, Said, Speaker, retrieve
from ivr.telephony.recording import (
    Follow,
    LiveTake,
    RecordingResult,
    lost_recording,
    recording_result,
)
from ivr.telephony.rest import AriClient, AriHttpError
from ivr.telephony.write_behind import WriteBehind

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# After a hang-up, how long a recording in progress may take to report how it ended.
_RECORDING_GRACE = 5.0

__all__ = ["Call", "LiveTake", "Playback", "QueuedPlayback", "RecordingResult", "Said"]


class Call:
    def __init__(self, ari: AriClient, channel: dict[str, Any], args: list[str]) -> None:
        self.ari = ari
        self.channel = channel
        self.id: str = channel["id"]
        caller = channel.get("caller") or {}
        self.caller_id: str = caller.get("number", "")
        self.caller_name: str = caller.get("name", "")
        self.dialed: str = (channel.get("dialplan") or {}).get("exten", "")
        self.args = args
        self.hangup_cause: int | None = None
        self.lost = False  # the channel vanished while the engine could not see it
        self._loop = asyncio.get_running_loop()
        self._gone = self._loop.create_future()
        self._digits: deque[str] = deque()
        self._digit_waiter: asyncio.Future[str] | None = None
        self._playbacks: dict[str, asyncio.Future[str | None]] = {}
        # Playbacks a key press stops, in the order Asterisk plays them (it plays a channel's
        # playbacks one after another): a key stops the first of them still unfinished.
        self._barge_in: deque[str] = deque()
        self._stops: dict[str, asyncio.Task[None]] = {}
        self._recordings: dict[str, asyncio.Future[RecordingResult]] = {}
        self._ids = itertools.count(1)
        # The recording Asterisk is writing right now (set on RecordingStarted, after any
        # beep): what "the caller is recording" means, for status and for tests.
        self.live_recording: str | None = None
        self._failed_playbacks: set[str] = set()
        self._listeners: list[Sink] = []
        # When the last key press arrived that no play request has followed yet (0: none).
        self._key_at = 0.0
        # What the live take's terminator key says at once, if anything.
        self._follow: Follow | None = None
        self._speaker = Speaker(self)
        self._writes = WriteBehind()

    def __repr__(self) -> str:
        return f"<Call {self.id} from {self.caller_id!r} to {self.dialed!r}>"

    # --- state --------------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        return self._gone.done()

    async def wait_gone(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
            return True
        except TimeoutError:
            return False

    def _check(self) -> None:
        if self._gone.done():
            raise self._gone_error()

    def _gone_error(self) -> CallHungUp:
        if self.lost:
            return CallLost(f"channel {self.id} vanished while the engine could not see it")
        return CallHungUp(f"channel {self.id} hung up")

    def mark_gone(self, why: str = "hangup", *, lost: bool = False) -> None:
        """The channel is gone: fail every step waiting on it (recordings get a grace period
        to report their partial audio). `lost`: it vanished unseen (CallLost)."""
        if self._gone.done():
            return
        log.debug("[%s] gone (%s)", self.id, why)
        self.lost = lost
        self._gone.set_result(why)
        exc = self._gone_error()
        self._speaker.gone(exc)
        waiting: list[asyncio.Future[Any]] = list(self._playbacks.values())
        if self._digit_waiter is not None:
            waiting.append(self._digit_waiter)
        for fut in waiting:
            if not fut.done():
                fut.set_exception(exc)
                # Marked retrieved: whoever waits on it still gets CallHungUp, but a step the
                # flow never came to wait for (a prompt queued behind the one playing, the
                # prompt of a take whose record request failed) is no error to report.
                fut.exception()
        if self._recordings:
            self._loop.call_later(_RECORDING_GRACE, self._expire_recordings)

    def _expire_recordings(self) -> None:
        for name, fut in self._recordings.items():
            if not fut.done():
                fut.set_result(lost_recording(name, hung_up=True))

    # --- events -------------------------------------------------------------------------
    def add_listener(self, listener: Sink) -> None:
        """Also hand every event of this channel, after the call has taken it in, to
        `listener` (synchronously, on the reader task: it must not block)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Sink) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def feed(self, event: Event) -> None:
        self._take(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("[%s] listener failed for %s", self.id, event.get("type"))

    def _take(self, event: Event) -> None:
        kind = event["type"]
        if kind == "ChannelDtmfReceived":
            latency.key_event_arrived(event)
            self._on_digit(event["digit"])
            follow = self._follow
            if follow is not None and follow.said is None and self.live_recording == follow.name \
                    and event["digit"] in follow.keys:
                self._follow_take(follow, latency.stamp(event))
        elif kind in ("PlaybackFinished", "PlaybackFailed"):
            playback = event["playback"]
            fut = self._playbacks.get(playback["id"])
            if fut is not None and not fut.done():
                if kind == "PlaybackFailed" or playback.get("state") == "failed":
                    self._failed_playbacks.add(playback["id"])
                fut.set_result(None)
        elif kind == "RecordingStarted":
            if event["recording"]["name"] in self._recordings:
                self.live_recording = event["recording"]["name"]
                if self._follow is not None and self._follow.name == self.live_recording:
                    self._follow.started = latency.stamp(event)
        elif kind in ("RecordingFinished", "RecordingFailed"):
            rec = event["recording"]
            if self.live_recording == rec["name"]:
                self.live_recording = None
            fut2 = self._recordings.get(rec["name"])
            if fut2 is not None and not fut2.done():
                fut2.set_result(recording_result(rec, self.gone))
        elif kind in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"):
            if kind == "ChannelDestroyed":
                self.hangup_cause = event.get("cause")
            self.mark_gone(kind)
        elif kind == "StasisStart":
            self.channel = event["channel"]

    def _follow_take(self, follow: Follow, pressed: float | None) -> None:
        """The take's terminator key arrived: Asterisk ends the take on it by itself, and runs
        a channel's requests in order, so what follows the take can be said now and starts
        the moment the take ends, without waiting for RecordingFinished to come back. Only for
        a take that held `min_seconds` by Asterisk's clock: a shorter one may be refused, and
        what follows it is decided then."""
        if follow.started is None or pressed is None \
                or pressed - follow.started < follow.min_seconds:
            return
        follow.said = self._speaker.say(follow.media, barge_in=True)
        self._speaker.flush()

    def _on_digit(self, digit: str) -> None:
        self._key_at = latency.now()
        self._speaker.barge()
        while self._barge_in:
            playback_id = self._barge_in.popleft()
            fut = self._playbacks.get(playback_id)
            if fut is not None and not fut.done():
                fut.set_result(digit)
                # Stopped at once, whoever waits for it: a prompt queued behind it starts now.
                self._stops[playback_id] = self._loop.create_task(self._stop(playback_id))
                break
        waiter = self._digit_waiter
        if waiter is not None and not waiter.done():
            self._digit_waiter = None
            waiter.set_result(digit)
        else:
            self._digits.append(digit)

    # --- steps --------------------------------------------------------------------------
    async def _ari_call(self, coro: Any) -> Any:
        """Run one ARI request for this channel; a channel that is gone becomes CallHungUp."""
        if self._gone.done():
            coro.close()
            raise self._gone_error()
        try:
            return await coro
        except AriHttpError as exc:
            if exc.channel_gone:
                self.mark_gone(f"ari {exc.status}")
                raise CallHungUp(f"channel {self.id} hung up") from exc
            raise

    async def answer(self) -> None:
        await self._ari_call(self.ari.answer(self.id))

    async def hangup(self, reason: str | None = None) -> None:
        if self.gone:
            return
        try:
            await self.ari.hangup(self.id, reason)
        except AriHttpError as exc:
            if not exc.channel_gone:
                raise
        # StasisEnd will follow; mark now so no later step talks to a dying channel.
        self.mark_gone("hangup requested")

    def say(self, *media: str, barge_in: bool = True) -> Said:
        """Say media (`sound:NAME`, `sound:http://...`, `recording:NAME`, `digits:123`, ...)
        after whatever was said before, and return at once; `await` what this returns to wait
        until it has been heard. Prompts said in the same tick are one playback. A key press
        stops the barge-in prompts said before it; the digit stays buffered."""
        self._check()
        self._raise_failure()
        return self._speaker.say(media, barge_in)

    def hush(self) -> None:
        """Stop everything said and not yet heard (playing, or still to come)."""
        self._speaker.hush()

    async def heard(self) -> None:
        """Until everything said so far has been heard (or stopped)."""
        self._check()
        await self._speaker.heard()
        self._raise_failure()

    def _raise_failure(self) -> None:
        failure, self._speaker.failure = self._speaker.failure, None
        if failure is not None:
            raise failure

    def write_behind(self, change: Callable[P, Awaitable[T]], *args: P.args,
                     **kwargs: P.kwargs) -> asyncio.Task[T]:
        """Run a state change behind the conversation, after those handed over before it
        (write_behind.py); await what this returns for its result."""
        return self._writes(change, *args, **kwargs)

    async def written(self) -> None:
        """Until every change handed to `write_behind` has run; raises the first failure."""
        await self._writes.written()

    async def play(self, *media: str, barge_in: bool = False, lang: str | None = None) -> Playback:
        """Play media (`sound:NAME`, `sound:http://...`, `recording:NAME`, `digits:123`, ...)
        to the end. With `barge_in`, a key press (or one typed ahead) stops it; the digit stays
        buffered for `collect_digits`."""
        self._check()
        if barge_in and self._digits:
            return Playback("", self._digits[0])
        queued = await self.queue_play(*media, barge_in=barge_in, lang=lang)
        return await queued.finished()

    async def queue_play(self, *media: str, barge_in: bool = False,
                         lang: str | None = None) -> QueuedPlayback:
        """Request a playback and return at once: Asterisk plays it after those requested
        before it, so the next prompt can be queued while the current one plays. With
        `barge_in`, a key pressed while it plays stops it (the digit stays buffered). Await
        `finished()` on what this returns."""
        self._check()
        await self._speaker.sent()
        playback_id, fut = self._open_playback(barge_in)
        try:
            await self._ari_call(self.ari.play(self.id, playback_id, media, lang))
        except BaseException:
            self._close_playback(playback_id)
            raise
        return QueuedPlayback(self, playback_id, fut)

    def _open_playback(self, barge_in: bool) -> tuple[str, asyncio.Future[str | None]]:
        playback_id = f"{self.id}-p{next(self._ids)}"
        fut: asyncio.Future[str | None] = self._loop.create_future()
        self._playbacks[playback_id] = fut
        if barge_in:
            self._barge_in.append(playback_id)
        if self._key_at:
            latency.prompted(self._key_at)
            self._key_at = 0.0
        return playback_id, fut

    async def _stop(self, playback_id: str) -> None:
        try:
            await self.ari.stop_playback(playback_id)
        except AriHttpError as exc:
            if exc.status != 404:  # 404: it had just finished by itself
                raise

    async def _finish_playback(self, playback_id: str,
                               fut: asyncio.Future[str | None]) -> Playback:
        digit = await fut
        # A stop under way is not waited for: what the flow asks next (the next prompt) may go
        # out at once. Asterisk plays a channel's playbacks in turn, so a prompt requested
        # before the stop lands still waits for the stopped one to end; and a stop that lands
        # after its playback ended by itself touches nothing else (404).
        stop = self._stops.pop(playback_id, None)
        if stop is not None:
            stop.add_done_callback(retrieve)
        return Playback(playback_id, digit, playback_id in self._failed_playbacks)

    def _close_playback(self, playback_id: str) -> None:
        self._playbacks.pop(playback_id, None)
        self._failed_playbacks.discard(playback_id)
        if playback_id in self._barge_in:
            self._barge_in.remove(playback_id)
        stop = self._stops.pop(playback_id, None)
        if stop is not None:
            stop.add_done_callback(retrieve)

    @property
    def typed_ahead(self) -> bool:
        """Keys are waiting that no one has read yet."""
        return bool(self._digits)

    def flush_digits(self) -> str:
        """Drop digits typed ahead; returns them."""
        dropped = "".join(self._digits)
        self._digits.clear()
        return dropped

    async def next_digit(self, timeout: float) -> str | None:
        """One key press, or None when `timeout` seconds pass without one after everything
        said has been heard. A key typed ahead answers at once, and stops the barge-in prompts
        said after it was pressed."""
        self._check()
        self._raise_failure()
        if self._digits:
            self._speaker.barge()
            return self._digits.popleft()
        waiter: asyncio.Future[str] = self._loop.create_future()
        self._digit_waiter = waiter
        try:
            if self._speaker.speaking:
                await self._heard_or(waiter)
                if waiter.done():
                    return waiter.result()
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            return None
        finally:
            if self._digit_waiter is waiter:
                self._digit_waiter = None

    async def _heard_or(self, waiter: asyncio.Future[str]) -> None:
        """Until everything said has been heard or a key arrives, whichever is first."""
        heard = self._loop.create_task(self._speaker.heard())
        try:
            await asyncio.wait((heard, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not heard.done():
                heard.cancel()
            heard.add_done_callback(retrieve)
        if heard.done() and not heard.cancelled() and not waiter.done():
            heard.result()  # CallHungUp
            self._raise_failure()

    async def collect_digits(
        self,
        max_digits: int,
        timeout: float = 5.0,
        terminators: str = "#",
        inter_digit_timeout: float | None = None,
    ) -> str:
        """Up to `max_digits` key presses, ending early on a terminator (not included) or when
        `timeout` (before the first) / `inter_digit_timeout` (between) seconds pass."""
        digits: list[str] = []
        wait = timeout
        while len(digits) < max_digits:
            digit = await self.next_digit(wait)
            if digit is None or digit in terminators:
                break
            digits.append(digit)
            wait = inter_digit_timeout if inter_digit_timeout is not None else timeout
        return "".join(digits)

    async def record(self, name: str, **options: Any) -> RecordingResult:
        """Record the caller until a terminator key, max_duration or max_silence seconds, or
        hang-up (`options` as for `start_recording`). Returns how it ended; a hang-up mid-take
        is a result (`hung_up`), not an exception, so the flow can keep the partial audio."""
        live = await self.start_recording(name, **options)
        return await live.finished()

    async def start_recording(
        self,
        name: str,
        *,
        prompt: Sequence[str] = (),
        fmt: str = "wav",
        max_duration: int = 0,
        max_silence: int = 0,
        beep: bool = False,
        terminate_on: str = "#",
        if_exists: str = "overwrite",
        on_terminator: Sequence[str] = (),
        on_terminator_after: float = 0.0,
    ) -> LiveTake:
        """Start recording, after everything said; returns once the caller is being recorded.

        With `prompt`, the prompt's play request and the record request go to Asterisk back
        to back: Asterisk runs a channel's requests in order, so the recording starts the
        moment the prompt ends, whatever the engine is doing then. A key pressed during the
        prompt (or what was said before it) cuts it short and the recording starts at once; a
        key typed ahead skips it.

        With `on_terminator`, the take's terminator key says that at once (barge-in), if the
        take had run `on_terminator_after` seconds by then: it starts as the take ends
        (`RecordingResult.followed`)."""
        self._check()
        self._raise_failure()
        # What was said just before ("saved") goes out in the prompt's playback.
        claimed = self._speaker.claim() if prompt and not self._digits else None
        await self._speaker.sent()
        fut: asyncio.Future[RecordingResult] = self._loop.create_future()
        self._recordings[name] = fut
        follow = Follow(name, terminate_on, tuple(on_terminator), on_terminator_after) \
            if on_terminator else None
        self._follow = follow
        playback: tuple[str, asyncio.Future[str | None]] | None = None
        try:
            if prompt and not self._digits:
                playback = self._open_playback(barge_in=True)
                await self._ari_call(self.ari.play(self.id, playback[0],
                                                   [*(claimed or ()), *prompt]))
            await self._ari_call(
                self.ari.record(
                    self.id, name, fmt=fmt, max_duration=max_duration, max_silence=max_silence,
                    if_exists=if_exists, beep=beep, terminate_on=terminate_on,
                )
            )
            if playback is not None:
                await self._finish_playback(*playback)
        except BaseException:
            self._forget_recording(name)
            raise
        finally:
            if playback is not None:
                self._close_playback(playback[0])
            if claimed is not None:
                self._speaker.claimed_heard()
        # Keys pressed before the recording began are not input.
        self._digits.clear()
        return LiveTake(self, name, fut, terminate_on, follow)

    def _forget_recording(self, name: str) -> None:
        self._recordings.pop(name, None)
        if self.live_recording == name:
            self.live_recording = None
        if self._follow is not None and self._follow.name == name:
            self._follow = None

    def _drop_terminator(self, keys: str) -> None:
        """The key that ended a take also arrives as a DTMF event: it is not input."""
        while self._digits and self._digits[0] in keys:
            self._digits.popleft()

    async def send_dtmf(self, digits: str, between_ms: int = 100, duration_ms: int = 100) -> None:
        await self._ari_call(
            self.ari.send_dtmf(self.id, digits, between_ms=between_ms, duration_ms=duration_ms)
        )

    async def get_variable(self, name: str) -> str:
        return await self._ari_call(self.ari.get_variable(self.id, name))

    async def set_variable(self, name: str, value: str) -> None:
        await self._ari_call(self.ari.set_variable(self.id, name, value))

    # --- resynchronisation --------------------------------------------------------------
    async def resync(self) -> None:
        """After the event socket was down: settle steps whose end event was lost."""
        for playback_id, fut in list(self._playbacks.items()):
            if fut.done():
                continue
            try:
                await self.ari.get_playback(playback_id)
            except AriHttpError as exc:
                if exc.status == 404 and not fut.done():
                    fut.set_result(None)
        for name, rfut in list(self._recordings.items()):
            if rfut.done():
                continue
            try:
                await self.ari.get_live_recording(name)
            except AriHttpError as exc:
                if exc.status == 404 and not rfut.done():
                    rfut.set_result(lost_recording(name, hung_up=self.gone))
