"""`AgiCall`: the `Call` surface (call.py) over one FastAGI connection (agi.py), so a flow runs
unchanged on a channel an operator's own dialplan hands over with `AGI(agi://...)`.

AGI runs one command at a time and the engine cannot stop one from its side: `say()` queues
and a task plays the queue while the flow goes on; the flow's steps that talk to Asterisk
(`next_digit`, `heard`, `play`, `start_recording`) wait their turn behind it. What a take's
terminator key says (`on_terminator`) waits for the flow's next step, since the flow may
still hush it once it has judged the take. Each medium is one command:
`sound:NAME` and `sound:http://...` (Asterisk's media cache fetches the URL) are STREAM FILE,
`recording:NAME` is STREAM FILE of the take in the recording spool, `digits:` / `number:` /
`characters:` are SAY DIGITS / SAY NUMBER / SAY ALPHA. Every prompt listens for every key: a
key stops barge-in prompts (and is kept for the next step); during a prompt without barge-in
it is kept and the prompt goes on where it was. `hush()` drops what is queued; a prompt
already playing plays out. Takes are RECORD FILE into Asterisk's recording spool, which the
engine reads on this host (`AgiTakes`, what the take store uses of `call.ari`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, ParamSpec, TypeVar, cast

from ivr.core.errors import CallHungUp
from ivr.telephony import latency
from ivr.telephony.agi import AgiChannel, AgiError, Reply, quote
from ivr.telephony.agi_media import (
    ASTERISK_SPOOL,
    FORMAT,
    KEYS,
    AgiLiveTake,
    AgiTakes,
    Batch,
    command_for,
    end,
    recording_seconds,
)
from ivr.telephony.playback import Playback, Said
from ivr.telephony.recording import RecordingResult
from ivr.telephony.write_behind import WriteBehind

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class AgiSaid:
    """What `say` returns: awaiting it (or `heard()`) plays the queue up to it."""

    __slots__ = ("_batch", "_call")

    def __init__(self, call: AgiCall, batch: Batch) -> None:
        self._call = call
        self._batch = batch

    async def heard(self) -> None:
        await self._call._play_through(self._batch)

    def __await__(self) -> Generator[Any, None, None]:
        return self.heard().__await__()


def _known(value: str | None) -> str:
    return "" if value in (None, "unknown") else str(value)


class AgiCall:
    def __init__(self, agi: AgiChannel, headers: dict[str, str], takes: AgiTakes) -> None:
        self.agi = agi
        self.headers = headers
        self.ari = takes
        self.id = headers.get("agi_uniqueid", "") or f"agi-{id(self):x}"
        self.caller_id = _known(headers.get("agi_callerid"))
        self.caller_name = _known(headers.get("agi_calleridname"))
        self.args = [headers[f"agi_arg_{i}"] for i in itertools.takewhile(
            lambda i: f"agi_arg_{i}" in headers, itertools.count(1))]
        # The number the flow answers: the AGI's first argument, else the extension.
        self.dialed = (self.args[0] if self.args and self.args[0]
                       else _known(headers.get("agi_extension")))
        self.hangup_cause: int | None = None
        self.live_recording: str | None = None
        self._loop = asyncio.get_running_loop()
        self._gone: asyncio.Future[str] = self._loop.create_future()
        self._digits: deque[str] = deque()
        self._queue: deque[Batch] = deque()
        self._playing: Batch | None = None
        self._speaking = asyncio.Lock()
        self._driver: asyncio.Task[None] | None = None
        # When the last key arrived that no prompt has followed yet (0: none), for the key
        # press -> next prompt histogram (latency.py), as on ARI.
        self._key_at = 0.0
        self._ids = itertools.count(1)
        self._writes = WriteBehind()

    def __repr__(self) -> str:
        return f"<AgiCall {self.id} from {self.caller_id!r} to {self.dialed!r}>"

    # --- state --------------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        if self.agi.gone and not self._gone.done():
            self.mark_gone("AGI hang-up")
        return self._gone.done()

    async def wait_gone(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
            return True
        except TimeoutError:
            return False

    def mark_gone(self, why: str = "hangup") -> None:
        if self._gone.done():
            return
        log.debug("[%s] gone (%s)", self.id, why)
        self._gone.set_result(why)
        exc = CallHungUp(f"channel {self.id} hung up")
        for batch in [*self._queue, *([self._playing] if self._playing else [])]:
            end(batch, exc)
        self._queue.clear()

    def _check(self) -> None:
        if self.gone:
            raise CallHungUp(f"channel {self.id} hung up")

    async def _command(self, line: str) -> Reply:
        self._check()
        try:
            return await self.agi.command(line)
        except CallHungUp:
            self.mark_gone("AGI hang-up")
            raise

    # --- steps --------------------------------------------------------------------------
    async def answer(self) -> None:
        await self._command("ANSWER")

    async def hangup(self, reason: str | None = None) -> None:
        if self.gone:
            return
        try:
            await self.agi.command("HANGUP")
        except CallHungUp:
            pass
        self.mark_gone("hangup requested")

    def say(self, *media: str, barge_in: bool = True) -> Said:
        """Say media after whatever was said before, and return at once: it starts playing
        now, while the flow goes on (await what this returns to wait until it has been
        heard)."""
        return self._say(media, barge_in, lazy=False)

    def _say(self, media: Sequence[str], barge_in: bool, lazy: bool) -> Said:
        self._check()
        for medium in media:
            command_for(medium)  # a medium AGI cannot play fails here, not later
        batch = Batch(self._loop, media, barge_in, lazy)
        self._queue.append(batch)
        if not lazy and (self._driver is None or self._driver.done()):
            self._driver = self._loop.create_task(self._drive())
        return cast(Said, AgiSaid(self, batch))

    async def _drive(self) -> None:
        """What was said plays while the flow works, up to a batch only the flow's next step
        plays (what a take's terminator said: the flow may still hush it)."""
        try:
            await self._play_through(None, eager=True)
        except CallHungUp:
            pass
        except Exception:  # the flow's next step to play meets it again
            log.exception("[%s] saying failed", self.id)

    def hush(self) -> None:
        """Drop everything said and not yet played (a prompt playing now plays out)."""
        for batch in [*self._queue, *([self._playing] if self._playing else [])]:
            end(batch)
        self._queue.clear()

    async def heard(self) -> None:
        self._check()
        await self._play_through(None)

    def _barge(self) -> None:
        """A key: every barge-in prompt said and not yet heard stops."""
        for batch in [*([self._playing] if self._playing else []), *self._queue]:
            if batch.barge_in:
                end(batch)

    async def _play_through(self, target: Batch | None, eager: bool = False) -> None:
        """Play the queue in order, up to `target` (None: all of it; `eager`: up to a lazy
        batch)."""
        async with self._speaking:
            while self._queue and not (target is not None and target.ended.done()):
                if eager and self._queue[0].lazy:
                    return
                batch = self._queue.popleft()
                if batch.ended.done():
                    continue
                self._playing = batch
                try:
                    await self._play_batch(batch)
                except CallHungUp as exc:
                    end(batch, exc)
                    raise
                finally:
                    self._playing = None
                end(batch)
        if target is not None:
            await asyncio.shield(target.ended)
        self._check()

    async def _play_batch(self, batch: Batch) -> None:
        for medium in batch.media:
            if batch.ended.done():
                return
            command, resumable = command_for(medium)
            offset = 0
            if self._key_at:
                latency.prompted(self._key_at)
                self._key_at = 0.0
            while True:
                tail = f" {offset}" if resumable and offset else ""
                try:
                    reply = await self._command(f"{command} {quote(KEYS)}{tail}")
                except AgiError as exc:
                    batch.failed = True
                    log.warning("[%s] could not play %s: %s", self.id, medium[:80], exc)
                    break
                if reply.result < 0:
                    await self._failed(batch, medium)
                    break
                if reply.result == 0:
                    break
                key = chr(reply.result)
                self._key_at = latency.now()
                self._digits.append(key)
                if batch.barge_in:
                    batch.key = key
                    self._barge()
                    return
                self._barge()  # barge-in prompts queued behind it are answered already
                if not resumable or not reply.endpos:
                    break
                offset = reply.endpos

    async def _failed(self, batch: Batch, medium: str) -> None:
        """A command answered -1: the caller hung up, or Asterisk could not play it (no such
        file, a URL it could not fetch): then it is skipped, as ARI skips a failed playback."""
        if not self.gone:
            with contextlib.suppress(AgiError):
                await self._command("CHANNEL STATUS")  # 511 on a dead channel: CallHungUp
        self._check()
        batch.failed = True
        log.warning("[%s] could not play %s", self.id, medium[:80])

    async def play(self, *media: str, barge_in: bool = False, lang: str | None = None) -> Playback:
        """Play media to the end (after what was said before). With `barge_in`, a key press
        (or one typed ahead) stops it; the digit stays buffered."""
        self._check()
        if barge_in and self._digits:
            return Playback("", self._digits[0])
        said = cast(AgiSaid, self.say(*media, barge_in=barge_in))
        await said.heard()
        batch = said._batch
        return Playback(f"{self.id}-p{next(self._ids)}", batch.key, batch.failed)

    def write_behind(self, change: Callable[P, Awaitable[T]], *args: P.args,
                     **kwargs: P.kwargs) -> asyncio.Task[T]:
        return self._writes(change, *args, **kwargs)

    async def written(self) -> None:
        await self._writes.written()

    # --- keys ---------------------------------------------------------------------------
    @property
    def typed_ahead(self) -> bool:
        return bool(self._digits)

    def flush_digits(self) -> str:
        dropped = "".join(self._digits)
        self._digits.clear()
        return dropped

    async def next_digit(self, timeout: float) -> str | None:
        """One key press, or None when `timeout` seconds pass without one after everything
        said has been heard (WAIT FOR DIGIT)."""
        self._check()
        if not self._digits:
            await self._play_through(None)
        if self._digits:
            self._barge()
            return self._digits.popleft()
        reply = await self._command(f"WAIT FOR DIGIT {max(0, int(timeout * 1000))}")
        if reply.result < 0:
            self.mark_gone("WAIT FOR DIGIT failed")
            raise CallHungUp(f"channel {self.id} hung up")
        if not reply.result:
            return None
        self._key_at = latency.now()
        return chr(reply.result)

    async def collect_digits(self, max_digits: int, timeout: float = 5.0,
                             terminators: str = "#",
                             inter_digit_timeout: float | None = None) -> str:
        """Up to `max_digits` keys, ending early on a terminator (not included) or a wait of
        `timeout` (before the first) / `inter_digit_timeout` (between)."""
        keys = ""
        while len(keys) < max_digits:
            wait = timeout if not keys or inter_digit_timeout is None else inter_digit_timeout
            key = await self.next_digit(wait)
            if key is None or key in terminators:
                return keys
            keys += key
        return keys

    # --- takes --------------------------------------------------------------------------
    async def record(self, name: str, **options: Any) -> RecordingResult:
        live = await self.start_recording(name, **options)
        return await live.finished()

    async def start_recording(
        self, name: str, *, prompt: Sequence[str] = (), fmt: str = "wav", max_duration: int = 0,
        max_silence: int = 0, beep: bool = False, terminate_on: str = "#",
        if_exists: str = "overwrite", on_terminator: Sequence[str] = (),
        on_terminator_after: float = 0.0,
    ) -> AgiLiveTake:
        """Play what was said and `prompt` (a key cuts it; one typed ahead skips it), then
        RECORD FILE; returns once it runs. With `on_terminator`, the take's terminator key
        says that (queued: it plays at the flow's next step) if the take ran
        `on_terminator_after` seconds."""
        self._check()
        if not FORMAT.match(fmt) or not all(c in KEYS for c in terminate_on):
            raise AgiError(f"cannot record format {fmt!r} ending on {terminate_on!r} over AGI")
        path = self.ari.path(name)
        if if_exists != "overwrite" and path.exists():
            raise AgiError(f"recording {name} exists already")
        await self._play_through(None)
        if prompt and not self._digits:
            await self.say(*prompt, barge_in=True)
        self._digits.clear()  # keys pressed before the recording began are not input
        await asyncio.to_thread(path.unlink, missing_ok=True)  # RECORD FILE does not truncate
        timeout = max_duration * 1000 if max_duration > 0 else -1
        line = (f"RECORD FILE {quote(f'{ASTERISK_SPOOL}/{name}')} {fmt} "
                f"{quote(terminate_on)} {timeout} {'BEEP' if beep else '0'}"
                + (f" s={max_silence}" if max_silence > 0 else ""))
        self._check()
        self.live_recording = name
        task = self._loop.create_task(self._recording(name, fmt, line, terminate_on,
                                                      tuple(on_terminator), on_terminator_after))
        await asyncio.sleep(0)  # the command is on its way before the flow goes on
        return AgiLiveTake(name, task)

    async def _recording(self, name: str, fmt: str, line: str, terminate_on: str,
                         follow: tuple[str, ...], follow_after: float) -> RecordingResult:
        reply: Reply | None = None
        try:
            reply = await self._command(line)
        except CallHungUp:
            pass
        except AgiError as exc:
            log.warning("[%s] could not record %s: %s", self.id, name, exc)
            return RecordingResult(name, fmt, "failed", None, None, None, cause=str(exc))
        finally:
            self.live_recording = None
        # Asterisk answers RECORD FILE before it closes the file: the answer to the next
        # command comes once the take is complete on disk.
        with contextlib.suppress(CallHungUp, AgiError):
            await self.agi.command("NOOP", dead_ok=True)
        ended = reply.data if reply is not None else "hangup"
        hung_up = ended == "hangup" or self.gone
        if hung_up:
            self.mark_gone("hung up mid-take")
        seconds = await asyncio.to_thread(recording_seconds, self.ari.path(name))
        if seconds is None and reply is not None and reply.endpos:
            seconds = reply.endpos / 8000
        failed = ended in ("randomerror", "writefile") or (
            reply is not None and reply.result < 0 and not hung_up)
        followed = None
        if ended == "dtmf":
            self._key_at = latency.now()
        if ended == "dtmf" and reply is not None and chr(reply.result) in terminate_on \
                and follow and (seconds or 0) >= follow_after and not hung_up:
            followed = self._say(follow, barge_in=True, lazy=True)
        return RecordingResult(name, fmt, "failed" if failed else "done", seconds, None, None,
                               cause=ended if failed else "", hung_up=hung_up, followed=followed)
