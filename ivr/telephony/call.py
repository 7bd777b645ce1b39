"""`Call`: what a flow sees of one channel. Straight-line async steps (`answer`, `play`,
`collect_digits`, `record`, `hangup`), each raising `CallHungUp` once the caller is gone.

Events reach the call through `feed()`, called synchronously and in order by the router;
`feed()` only settles futures and buffers digits, so routing stays cheap."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony import latency
from ivr.telephony.events import Event, Sink
from ivr.telephony.rest import AriClient, AriHttpError

log = logging.getLogger(__name__)

# After a hang-up, how long a recording in progress may take to report how it ended.
_RECORDING_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class RecordingResult:
    name: str
    format: str
    state: str  # "done", "failed", "canceled" or "unknown" (finished while events were down)
    duration: float | None  # seconds, as Asterisk measured it
    talking_duration: float | None
    silence_duration: float | None
    cause: str = ""
    hung_up: bool = False  # the caller hung up while it was recording

    @property
    def ok(self) -> bool:
        return self.state == "done"


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    interrupted_by: str | None  # the digit that barged in, when barge-in was asked for
    failed: bool = False  # Asterisk could not play it (no such sound, media URL unreachable)


def _recording_result(rec: dict[str, Any], hung_up: bool) -> RecordingResult:
    def seconds(key: str) -> float | None:
        value = rec.get(key)
        return float(value) if value is not None else None

    return RecordingResult(
        name=rec["name"], format=rec.get("format", ""), state=rec.get("state", "unknown"),
        duration=seconds("duration"), talking_duration=seconds("talking_duration"),
        silence_duration=seconds("silence_duration"), cause=rec.get("cause", ""),
        hung_up=hung_up,
    )


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a playback request failed: %s", task.exception())


@dataclass(slots=True)
class _Then:
    """What a take's terminator key queues at once (`start_recording(then=...)`)."""

    name: str
    keys: str
    media: tuple[str, ...]
    min_seconds: float
    started: float | None = None  # Asterisk's stamp on the take's RecordingStarted
    queued: asyncio.Task[QueuedPlayback] | None = None


class QueuedPlayback:
    """A playback requested (`Call.queue_play`) and not yet waited for."""

    def __init__(self, call: Call, playback_id: str, fut: asyncio.Future[str | None]) -> None:
        self.call = call
        self.id = playback_id
        self._fut = fut

    async def ended(self) -> None:
        """Until it has ended (played out, or stopped by a key); CallHungUp if the caller hung
        up first. Leaves the rest to `finished()`."""
        await asyncio.shield(self._fut)

    async def finished(self) -> Playback:
        try:
            return await self.call._finish_playback(self.id, self._fut)
        finally:
            self.call._close_playback(self.id)

    async def cancel(self) -> None:
        """Stop it, playing or still queued; returns once Asterisk has taken the request. A
        stop that fails is logged, not raised: the caller hears the prompt out, and the flow
        goes on."""
        self.call._close_playback(self.id)
        try:
            await self.call._ari_call(self.call._stop(self.id))
        except CallHungUp:
            pass
        except IvrError as exc:
            log.warning("[%s] could not stop playback %s: %s", self.call.id, self.id, exc)


class LiveTake:
    """A recording in progress (`Call.start_recording`)."""

    def __init__(self, call: Call, name: str, fut: asyncio.Future[RecordingResult],
                 terminate_on: str, then: _Then | None = None) -> None:
        self.call = call
        self.name = name
        self._fut = fut
        self._terminate_on = terminate_on
        self._then = then

    async def then_queued(self) -> QueuedPlayback | None:
        """The playback the take's terminator key queued (`start_recording(then=...)`), or
        None when the take ended otherwise, too early, or the request failed. Call it once
        `finished()` returned; whatever it returns is the caller's to finish or cancel."""
        task = None if self._then is None else self._then.queued
        self._then = None
        if task is None:
            return None
        try:
            return await task
        except (CallHungUp, IvrError):
            return None

    async def finished(self) -> RecordingResult:
        """How it ended (a hang-up mid-take is a result, `hung_up`, not an exception)."""
        try:
            result = await self._fut
        finally:
            self.call._forget_recording(self.name)
        # The key that ended the take also arrives as a DTMF event: it is not input.
        digits = self.call._digits
        while digits and digits[0] in self._terminate_on:
            digits.popleft()
        return result


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
        # What the live take's terminator key queues at once, if anything.
        self._then: _Then | None = None

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
            raise CallHungUp(f"channel {self.id} hung up")

    def mark_gone(self, why: str = "hangup") -> None:
        """The channel is gone: fail every step waiting on it (recordings get a grace period
        to report their partial audio)."""
        if self._gone.done():
            return
        log.debug("[%s] gone (%s)", self.id, why)
        self._gone.set_result(why)
        exc = CallHungUp(f"channel {self.id} hung up")
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
                fut.set_result(RecordingResult(name, "", "unknown", None, None, None, hung_up=True))

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
            then = self._then
            if then is not None and then.queued is None and self.live_recording == then.name \
                    and event["digit"] in then.keys:
                self._queue_then(then, latency.stamp(event))
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
                if self._then is not None and self._then.name == self.live_recording:
                    self._then.started = latency.stamp(event)
        elif kind in ("RecordingFinished", "RecordingFailed"):
            rec = event["recording"]
            if self.live_recording == rec["name"]:
                self.live_recording = None
            fut2 = self._recordings.get(rec["name"])
            if fut2 is not None and not fut2.done():
                fut2.set_result(_recording_result(rec, self.gone))
        elif kind in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"):
            if kind == "ChannelDestroyed":
                self.hangup_cause = event.get("cause")
            self.mark_gone(kind)
        elif kind == "StasisStart":
            self.channel = event["channel"]

    def _queue_then(self, then: _Then, pressed: float | None) -> None:
        """The take's terminator key arrived: Asterisk ends the take on it by itself, and runs
        a channel's requests in order, so what follows the take can be asked for now and
        starts the moment the take ends, without waiting for RecordingFinished to come back.
        Only for a take that held `min_seconds` by Asterisk's clock: a shorter one may be
        refused, and what follows it is decided then."""
        if then.started is None or pressed is None or pressed - then.started < then.min_seconds:
            return
        then.queued = self._loop.create_task(self.queue_play(*then.media, barge_in=True))
        then.queued.add_done_callback(_retrieve)

    def _on_digit(self, digit: str) -> None:
        self._key_at = latency.now()
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
            raise CallHungUp(f"channel {self.id} hung up")
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
            stop.add_done_callback(_retrieve)
        return Playback(playback_id, digit, playback_id in self._failed_playbacks)

    def _close_playback(self, playback_id: str) -> None:
        self._playbacks.pop(playback_id, None)
        self._failed_playbacks.discard(playback_id)
        if playback_id in self._barge_in:
            self._barge_in.remove(playback_id)
        stop = self._stops.pop(playback_id, None)
        if stop is not None:
            stop.add_done_callback(_retrieve)

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
        """One key press, or None when `timeout` seconds pass without one."""
        self._check()
        if self._digits:
            return self._digits.popleft()
        waiter: asyncio.Future[str] = self._loop.create_future()
        self._digit_waiter = waiter
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            return None
        finally:
            if self._digit_waiter is waiter:
                self._digit_waiter = None

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
        then: Sequence[str] = (),
        then_after: float = 0.0,
    ) -> LiveTake:
        """Start recording; returns once the caller is being recorded.

        With `prompt`, the prompt's play request and the record request go to Asterisk back
        to back: Asterisk runs a channel's requests in order, so the recording starts the
        moment the prompt ends, whatever the engine is doing then. A key pressed during the
        prompt cuts it short (the recording starts at once); a key typed ahead skips it.

        With `then`, the take's terminator key queues that playback at once (barge-in), if
        the take had run `then_after` seconds by then: it starts as the take ends. Get it
        with `LiveTake.then_queued()`."""
        self._check()
        fut: asyncio.Future[RecordingResult] = self._loop.create_future()
        self._recordings[name] = fut
        after = _Then(name, terminate_on, tuple(then), then_after) if then else None
        self._then = after
        playback: tuple[str, asyncio.Future[str | None]] | None = None
        try:
            if prompt and not self._digits:
                playback = self._open_playback(barge_in=True)
                await self._ari_call(self.ari.play(self.id, playback[0], prompt))
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
        # Keys pressed before the recording began are not input.
        self._digits.clear()
        return LiveTake(self, name, fut, terminate_on, after)

    def _forget_recording(self, name: str) -> None:
        self._recordings.pop(name, None)
        if self.live_recording == name:
            self.live_recording = None
        if self._then is not None and self._then.name == name:
            self._then = None

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
                    rfut.set_result(RecordingResult(name, "", "unknown", None, None, None,
                                                    hung_up=self.gone))
