"""A take as the Call sees it: the recording in progress (`LiveTake`) and how it ended
(`RecordingResult`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ivr.telephony.playback import Said


class RecordingCall(Protocol):
    """What a take needs of its call (ivr/telephony/call.py, which imports this module)."""

    def _forget_recording(self, name: str) -> None: ...
    def _drop_terminator(self, keys: str) -> None: ...


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
    # What the take's terminator key said at once (`on_terminator`), if it did.
    followed: Said | None = None

    @property
    def ok(self) -> bool:
        return self.state == "done"


def recording_result(rec: dict[str, Any], hung_up: bool) -> RecordingResult:
    def seconds(key: str) -> float | None:
        value = rec.get(key)
        return float(value) if value is not None else None

    return RecordingResult(
        name=rec["name"], format=rec.get("format", ""), state=rec.get("state", "unknown"),
        duration=seconds("duration"), talking_duration=seconds("talking_duration"),
        silence_duration=seconds("silence_duration"), cause=rec.get("cause", ""),
        hung_up=hung_up,
    )


def lost_recording(name: str, hung_up: bool) -> RecordingResult:
    """A take whose end Asterisk never reported (the channel went, or events were down)."""
    return RecordingResult(name, "", "unknown", None, None, None, hung_up=hung_up)


@dataclass(slots=True)
class Follow:
    """What a take's terminator key says at once (`start_recording(on_terminator=...)`)."""

    name: str
    keys: str
    media: tuple[str, ...]
    min_seconds: float
    started: float | None = None  # Asterisk's stamp on the take's RecordingStarted
    said: Said | None = None


class LiveTake:
    """A recording in progress (`Call.start_recording`)."""

    def __init__(self, call: RecordingCall, name: str, fut: Any, terminate_on: str,
                 follow: Follow | None = None) -> None:
        self.call = call
        self.name = name
        self._fut = fut
        self._terminate_on = terminate_on
        self._follow = follow

    async def finished(self) -> RecordingResult:
        """How it ended (a hang-up mid-take is a result, `hung_up`, not an exception). With
        `on_terminator`, `followed` is what the terminator key said, or None when the take
        ended otherwise or too early: then the flow decides what comes next."""
        try:
            result: RecordingResult = await self._fut
        finally:
            self.call._forget_recording(self.name)
        self.call._drop_terminator(self._terminate_on)
        follow, self._follow = self._follow, None
        if follow is not None and follow.said is not None:
            result = replace(result, followed=follow.said)
        return result
