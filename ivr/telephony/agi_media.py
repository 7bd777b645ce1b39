"""What AGI plays and records: a medium as the AGI command that plays it (`command_for`), what
one `say()` queued (`Batch`), a take in progress (`AgiLiveTake`), and the recording spool
Asterisk writes AGI takes in (`AgiTakes`, what a take store uses of `call.ari`)."""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.core.errors import TelephonyError
from ivr.telephony.agi import AgiError, quote
from ivr.telephony.playback import settle
from ivr.telephony.recording import RecordingResult

KEYS = "0123456789*#"
# Where Asterisk writes recordings (its astspooldir), as Asterisk sees the path.
ASTERISK_SPOOL = "/var/spool/asterisk/recording"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._;-]{0,200}$")  # ";": Local channel ids
_SOUND = re.compile(r"^[A-Za-z0-9_./:%?=&+-]+$")
FORMAT = re.compile(r"^[a-z0-9]{1,10}$")


class AgiTakes:
    """The part of ARI a flow's take store uses (`stored_recording_file`,
    `delete_stored_recording`), over the recording spool Asterisk writes AGI takes in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise TelephonyError(f"not a recording name: {name[:40]!r}")
        return self.folder / f"{name}.wav"

    async def stored_recording_file(self, name: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(name).read_bytes)
        except FileNotFoundError as exc:
            raise TelephonyError(f"no recording {name} in {self.folder}") from exc

    async def delete_stored_recording(self, name: str) -> None:
        await asyncio.to_thread(self.path(name).unlink, missing_ok=True)

    async def list_stored_recordings(self) -> list[dict[str, Any]]:
        return []  # AGI calls are not resumed after a restart (Asterisk ends them)

    async def cancel_live_recording(self, name: str) -> None:
        return None


def command_for(media: str) -> tuple[str, bool]:
    """The AGI command playing one medium (without its escape digits), and whether it can be
    resumed at a sample offset. AgiError for a medium AGI cannot play."""
    kind, _, value = media.partition(":")
    if kind == "sound" and value and _SOUND.match(value) and ".." not in value:
        return f"STREAM FILE {quote(value)}", True
    if kind == "recording" and _NAME.match(value):
        return f"STREAM FILE {quote(f'{ASTERISK_SPOOL}/{value}')}", True
    if kind == "digits" and value and all(c in KEYS for c in value):
        return f"SAY DIGITS {value}", False
    if kind == "number" and re.fullmatch(r"-?\d{1,15}", value):
        return f"SAY NUMBER {value}", False
    if kind == "characters" and value and value.isascii() and value.isalnum():
        return f"SAY ALPHA {value}", False
    raise AgiError(f"cannot play {media[:60]!r} over AGI (sound:, recording:, digits:, "
                   "number:, characters: only)")


def recording_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path)) as w:
            return w.getnframes() / float(w.getframerate())
    except (OSError, EOFError, wave.Error):
        return None


class Batch:
    """What one `say()` queued."""

    __slots__ = ("barge_in", "ended", "failed", "key", "lazy", "media")

    def __init__(self, loop: asyncio.AbstractEventLoop, media: Sequence[str],
                 barge_in: bool, lazy: bool = False) -> None:
        self.media = list(media)
        self.barge_in = barge_in
        self.lazy = lazy  # played by the flow's next step only, not at once
        self.ended: asyncio.Future[None] = loop.create_future()
        self.key: str | None = None  # the key that stopped it
        self.failed = False


def end(batch: Batch, exc: BaseException | None = None) -> None:
    settle(batch.ended, exc)


class AgiLiveTake:
    def __init__(self, name: str, task: asyncio.Task[RecordingResult]) -> None:
        self.name = name
        self._task = task

    async def finished(self) -> RecordingResult:
        return await asyncio.shield(self._task)
