"""What the caller hears: playbacks requested one by one (`QueuedPlayback`, the low-level
step) and prompts *said* (`Said`, through the call's `Speaker`).

Saying is how a flow talks: `call.say(...)` returns at once, prompts said in the same tick go
out as one playback, and Asterisk plays a channel's playbacks in turn, so the next prompt is
queued while the current one plays and nothing the engine or the database does in between is
heard as silence. A key press stops every barge-in prompt said before it; reading a key typed
ahead stops those said after it (the caller has answered them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from ivr.core.errors import CallHungUp, IvrError
from ivr.telephony.rest import AriClient

log = logging.getLogger(__name__)


class PlayingCall(Protocol):
    """What a playback needs of its call (ivr/telephony/call.py, which imports this module)."""

    id: str
    ari: AriClient
    _loop: asyncio.AbstractEventLoop

    def _open_playback(self, barge_in: bool) -> tuple[str, asyncio.Future[str | None]]: ...
    def _close_playback(self, playback_id: str) -> None: ...
    async def _finish_playback(self, playback_id: str,
                               fut: asyncio.Future[str | None]) -> Playback: ...
    async def _ari_call(self, coro: Any) -> Any: ...
    async def _stop(self, playback_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    interrupted_by: str | None  # the digit that barged in, when barge-in was asked for
    failed: bool = False  # Asterisk could not play it (no such sound, media URL unreachable)


def retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a playback request failed: %s", task.exception())


class QueuedPlayback:
    """A playback requested (`Call.queue_play`) and not yet waited for."""

    def __init__(self, call: PlayingCall, playback_id: str,
                 fut: asyncio.Future[str | None]) -> None:
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
            log.warning("could not stop playback %s: %s", self.id, exc)


class _Batch:
    """Prompts said in one tick: one playback request."""

    __slots__ = (
        "barge_in",
        "ended",
        "media",
        "playback_id",
        "requested",
        "stop_when_requested",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, barge_in: bool) -> None:
        self.media: list[str] = []
        self.barge_in = barge_in
        self.playback_id: str | None = None
        self.requested = False  # Asterisk has taken the play request
        self.stop_when_requested = False  # stopped while the request was on its way
        # Played out, stopped (key or hush) or never sent; CallHungUp, or the request's error.
        self.ended: asyncio.Future[None] = loop.create_future()


class Said:
    """Prompts said with `Call.say`: heard after everything said before them. Awaiting it
    (`await call.say(...)`) waits until they have been heard."""

    __slots__ = ("_batch",)

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch

    async def heard(self) -> None:
        """Until they have played out, or a key or `hush()` stopped them; CallHungUp if the
        caller hung up first, or the play request's error."""
        await asyncio.shield(self._batch.ended)

    def __await__(self) -> Generator[Any, None, None]:
        return self.heard().__await__()


def settle(ended: asyncio.Future[None], exc: BaseException | None = None) -> None:
    """End what waits on `ended` (with `exc`), once."""
    if ended.done():
        return
    if exc is None:
        ended.set_result(None)
    else:
        ended.set_exception(exc)
        ended.exception()  # whoever waits gets it; nobody waiting is no error


def _end(batch: _Batch, exc: BaseException | None = None) -> None:
    settle(batch.ended, exc)


class Speaker:
    """A call's prompts said and not yet heard, in order (see the module's docstring)."""

    def __init__(self, call: PlayingCall) -> None:
        self._call = call
        self._loop = call._loop
        self._pending: _Batch | None = None
        self._flush_soon: asyncio.Handle | None = None
        self._sending: asyncio.Task[None] | None = None
        self._unheard: list[_Batch] = []
        self._claimed: _Batch | None = None  # said, and played by another request (claim)
        # A play request that failed (not a hang-up): the flow's next step raises it.
        self.failure: BaseException | None = None

    @property
    def speaking(self) -> bool:
        return bool(self._unheard)

    def say(self, media: Sequence[str], barge_in: bool) -> Said:
        batch = self._pending
        if batch is None or batch.barge_in != barge_in:
            self.flush()
            batch = self._pending = _Batch(self._loop, barge_in)
            self._unheard.append(batch)
            batch.ended.add_done_callback(partial(self._forget, batch))
            self._flush_soon = self._loop.call_soon(self.flush)
        batch.media.extend(media)
        return Said(batch)

    def flush(self) -> None:
        """Send what was said so far now (it goes out at the end of the tick otherwise)."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        batch, self._pending = self._pending, None
        if batch is not None:
            self._sending = self._loop.create_task(self._send(batch, self._sending))

    async def _send(self, batch: _Batch, before: asyncio.Task[None] | None) -> None:
        # One request at a time: Asterisk plays them in the order it takes them.
        if before is not None:
            await asyncio.wait([before])
        if batch.ended.done():  # stopped before it went out
            return
        call = self._call
        playback_id, fut = call._open_playback(barge_in=False)  # barge-in is ours, below
        batch.playback_id = playback_id
        fut.add_done_callback(partial(self._played, batch))
        try:
            await call._ari_call(call.ari.play(call.id, playback_id, batch.media, None))
        except CallHungUp as exc:
            call._close_playback(playback_id)
            _end(batch, exc)
            return
        except Exception as exc:
            call._close_playback(playback_id)
            self.failure = exc
            log.warning("[%s] could not play %s: %s", call.id, batch.media, exc)
            _end(batch, exc)
            return
        batch.requested = True
        if batch.stop_when_requested:
            self._request_stop(batch.playback_id)

    def _played(self, batch: _Batch, fut: asyncio.Future[str | None]) -> None:
        self._call._close_playback(batch.playback_id or "")
        _end(batch, None if fut.cancelled() else fut.exception())

    def _forget(self, batch: _Batch, _: object) -> None:
        self._unheard.remove(batch)

    def _stop(self, batch: _Batch) -> None:
        if batch.ended.done():
            return
        _end(batch)
        if self._pending is batch:
            self._pending = None
        if batch.playback_id is None:  # not sent yet: it never will be
            return
        if batch.requested:
            self._request_stop(batch.playback_id)
        else:  # a stop overtaking the play request would find nothing to stop
            batch.stop_when_requested = True

    def _request_stop(self, playback_id: str) -> None:
        stop = self._loop.create_task(self._call._stop(playback_id))
        stop.add_done_callback(retrieve)

    def barge(self) -> None:
        """A key: every barge-in prompt said and unheard stops (pending ones never go out)."""
        for batch in list(self._unheard):
            if batch.barge_in:
                self._stop(batch)

    def hush(self) -> None:
        for batch in list(self._unheard):
            self._stop(batch)

    def claim(self) -> list[str] | None:
        """The barge-in prompts said this very tick and not yet sent, for a request that plays
        them itself (start_recording, in one playback with its prompt: a request less, and a
        playback less for Asterisk). They stay unheard, so a key or hush still stops them;
        `claimed_heard` ends them."""
        batch = self._pending
        if batch is None or not batch.barge_in:
            return None
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        self._pending = None
        self._claimed = batch
        return list(batch.media)

    def claimed_heard(self, exc: BaseException | None = None) -> None:
        batch, self._claimed = self._claimed, None
        if batch is not None:
            _end(batch, exc)

    async def sent(self) -> None:
        """Until what was said so far has gone out (a request that must follow it may go)."""
        self.flush()
        if self._sending is not None and not self._sending.done():
            await asyncio.wait([self._sending])

    async def heard(self) -> None:
        await self.sent()
        for batch in list(self._unheard):
            await asyncio.shield(batch.ended)

    def gone(self, exc: CallHungUp) -> None:
        for batch in list(self._unheard):
            _end(batch, exc)
