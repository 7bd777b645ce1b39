"""A scripted Call: a flow plays a whole conversation without Asterisk, in milliseconds.

The caller's side is a script, read in order as the flow asks: keys (`"1234#"`, one string
per time the flow waits for keys; `""` is a caller who says nothing until the timeout),
takes (`Take`: the WAV the caller speaks and how it ends) and `HANG_UP`. What the flow said
is kept, as prompt names, for the test to read. The real-call tests (tests/phone) run the
same conversations through Asterisk; this layer checks a flow change in seconds. It plays
no audio: barge-in, timing and Asterisk's own behaviour are the real-call tests' part."""

from __future__ import annotations

import wave
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from ivr.core.errors import CallHungUp
from ivr.telephony.recording import RecordingResult
from ivr.telephony.rest import AriHttpError
from ivr.telephony.write_behind import WriteBehind

HANG_UP = object()


@dataclass(frozen=True)
class Take:
    wav: bytes
    ended_by: str = "#"  # "#", "silence" (max_silence), "hangup"

    @classmethod
    def of(cls, path: Path, ended_by: str = "#") -> Take:
        return cls(path.read_bytes(), ended_by)

    @property
    def seconds(self) -> float:
        with wave.open(BytesIO(self.wav)) as w:
            return w.getnframes() / w.getframerate()


class _Heard:
    """What `say` returns: heard at once (no audio plays here)."""

    def __await__(self) -> Generator[Any, None, None]:
        return self.heard().__await__()

    async def heard(self) -> None:
        return None


class _StoredTakes:
    """The part of ARI a flow's take store uses: takes as the script spoke them."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    async def stored_recording_file(self, name: str) -> bytes:
        if name not in self.stored:
            raise AriHttpError(f"no stored recording {name}", status=404)
        return self.stored[name]

    async def delete_stored_recording(self, name: str) -> None:
        self.stored.pop(name, None)


class _Finished:
    def __init__(self, result: RecordingResult) -> None:
        self._result = result

    async def finished(self) -> RecordingResult:
        return self._result


class ScriptedCall:
    def __init__(self, script: list[Any], *, caller_id: str = "", dialed: str = "",
                 call_id: str = "scripted-1", prompts: dict[str, str] | None = None) -> None:
        self.id = call_id
        self.caller_id = caller_id
        self.dialed = dialed
        self.ari = _StoredTakes()
        self.said: list[str] = []  # every media said, in order
        self._script = deque(script)
        self._digits: deque[str] = deque()
        self._writes = WriteBehind()
        self.gone = False
        self._prompts = prompts or {}

    def names(self) -> list[str]:
        """What was said, as prompt names where `prompts` (media -> name) knows the media."""
        return [self._prompts.get(m, m.removeprefix("sound:")) for m in self.said]

    def _check(self) -> None:
        if self.gone:
            raise CallHungUp(f"channel {self.id} hung up")

    def _next(self, wanted: str) -> Any:
        self._check()
        if not self._script:
            raise AssertionError(f"the flow asked for {wanted} after the script ended; "
                                 f"it said {self.names()}")
        item = self._script.popleft()
        if item is HANG_UP:
            self.gone = True
            raise CallHungUp(f"channel {self.id} hung up")
        return item

    async def answer(self) -> None:
        self._check()

    def say(self, *media: str, barge_in: bool = True) -> _Heard:
        self._check()
        self.said.extend(media)
        return _Heard()

    def hush(self) -> None:
        pass

    async def heard(self) -> None:
        self._check()

    @property
    def typed_ahead(self) -> bool:
        return bool(self._digits)

    def flush_digits(self) -> str:
        dropped = "".join(self._digits)
        self._digits.clear()
        return dropped

    async def next_digit(self, timeout: float) -> str | None:
        if not self._digits:
            keys = self._next("keys")
            if not isinstance(keys, str):
                raise AssertionError(f"the flow waits for keys, the script has {keys!r}; "
                                     f"it said {self.names()}")
            self._digits.extend(keys)
        return self._digits.popleft() if self._digits else None

    async def collect_digits(self, max_digits: int, timeout: float = 5.0,
                             terminators: str = "#",
                             inter_digit_timeout: float | None = None) -> str:
        digits: list[str] = []
        while len(digits) < max_digits:
            digit = await self.next_digit(timeout)
            if digit is None or digit in terminators:
                break
            digits.append(digit)
        return "".join(digits)

    async def start_recording(self, name: str, *, prompt: tuple[str, ...] | list[str] = (),
                              terminate_on: str = "#", on_terminator: Any = (),
                              on_terminator_after: float = 0.0, **_: Any) -> _Finished:
        self._check()
        if not self._digits:
            self.said.extend(prompt)
        self._digits.clear()
        take = self._next("a take")
        if not isinstance(take, Take):
            raise AssertionError(f"the flow records, the script has {take!r}; "
                                 f"it said {self.names()}")
        self.ari.stored[name] = take.wav
        followed = None
        if take.ended_by in terminate_on and on_terminator and \
                take.seconds >= on_terminator_after:
            self.said.extend(on_terminator)
            followed = _Heard()
        hung_up = take.ended_by == "hangup"
        self.gone = self.gone or hung_up
        return _Finished(RecordingResult(name, "wav", "done", take.seconds, None, None,
                                         hung_up=hung_up, followed=followed))  # type: ignore[arg-type]

    def write_behind(self, change: Callable[..., Awaitable[Any]], *args: Any,
                     **kwargs: Any) -> Any:
        return self._writes(change, *args, **kwargs)

    async def written(self) -> None:
        await self._writes.written()
