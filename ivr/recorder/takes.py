"""A take's way from Asterisk into storage, shared by the call flow and by start-up recovery:
fetch the recording, write it to its own file, and only then record a row for it; accepting
makes the MP3 (when wanted) before the recording points at the take."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import os
import re
import uuid
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.core.errors import TelephonyError
from ivr.core.files import write_private
from ivr.media import processing, quality
from ivr.recorder.models import ORIGINAL, Recorder, Recording, take_path
from ivr.recorder.phone import RecorderPhone, Take
from ivr.telephony.rest import AriClient

log = logging.getLogger(__name__)

ToMp3 = Callable[[Path, Path], Awaitable[None]]
# Asterisk-side names say whose take it is, so a take a dead process left behind can be
# finished by the next one.
_NAME = re.compile(r"^take-(\d+)-(\d+)-[0-9a-f]{12}$")


def take_name(session_id: int, recording_id: int) -> str:
    return f"take-{session_id}-{recording_id}-{uuid.uuid4().hex[:12]}"


def parse_take_name(name: str) -> tuple[int, int] | None:
    """(session id, recording id) of a take recording's name, or None for other recordings."""
    match = _NAME.match(name)
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True, slots=True)
class StoredTake:
    take: Take
    name: str
    wav: Path
    duration_ms: int
    quality: dict[str, Any] | None = None  # its figures and verdict (ivr/media/quality.py)


def quality_limits(recorder: Recorder) -> quality.Thresholds:
    return quality.Thresholds(
        min_speech_seconds=recorder.quality_min_speech_seconds,
        min_loudness_lufs=recorder.quality_min_loudness_lufs,
        max_clipped_ratio=recorder.quality_max_clipped_ratio,
        min_snr_db=recorder.quality_min_snr_db)


async def judge(recorder: Recorder, data: bytes) -> dict[str, Any] | None:
    """The take's figures and its verdict by the recorder's limits, measured in a worker
    thread (milliseconds); None when its audio cannot be read."""
    measured = await quality.analyse_off_loop(data)
    return None if measured is None else quality.judged(measured, quality_limits(recorder))


def wav_duration_ms(data: bytes) -> int:
    try:
        with wave.open(io.BytesIO(data)) as w:
            return round(w.getnframes() * 1000 / w.getframerate())
    except (wave.Error, EOFError):
        return 0


def _process_file(wav: Path, original: Path, figures: dict[str, Any], trim: bool,
                  target_lufs: float | None) -> int | None:
    """Process `wav` in place, its first version moved to `original` (done once: a take
    accepted again after a restart is not processed twice). The new duration, or None."""
    if original.exists():
        return None
    data = wav.read_bytes()
    processed = processing.process(data, figures, trim=trim, target_lufs=target_lufs)
    if processed is None:
        return None
    os.link(wav, original)  # the recorded take stays, under its own name, before any change
    write_private(wav, processed)
    return wav_duration_ms(processed)


def _read_spooled(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # not there, or not ours to read: ARI serves it
        return None


def _unlink_spooled(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


class TakeStore:
    """`spool`: Asterisk's recording folder when this host can read it (the project's own
    Asterisk root, see recording_spool); takes are then read and deleted there instead of over
    ARI's HTTP, which spares Asterisk and the engine two requests and a copy per take."""

    def __init__(self, phone: RecorderPhone, data_dir: Path, to_mp3: ToMp3,
                 spool: Path | None = None) -> None:
        self.phone = phone
        self.data_dir = data_dir
        self.to_mp3 = to_mp3
        self.spool = spool

    async def fetch(self, ari: AriClient, session_id: int, recording: Recording, name: str,
                    channel_id: str, recorder: Recorder) -> StoredTake | None:
        data = await self.download(ari, name, channel_id)
        if data is None:
            return None
        return await self.keep(session_id, recording, name, channel_id, data,
                               await judge(recorder, data))

    async def download(self, ari: AriClient, name: str, channel_id: str) -> bytes | None:
        """The take's WAV as Asterisk wrote it (a few ms on the same host)."""
        if self.spool is not None and _NAME.match(name):
            # Read in place, not in a worker thread: Asterisk has just written it (it is in the
            # page cache: tens of microseconds), and this is on the way from `#` to the review
            # menu, where a thread hop would queue behind other calls' fsync'd writes.
            spooled = _read_spooled(self.spool / f"{name}.wav")
            if spooled is not None:
                return spooled
        try:
            data: bytes = await ari.stored_recording_file(name)
        except TelephonyError as exc:
            log.warning("[%s] take %s could not be fetched: %s", channel_id, name, exc)
            return None
        return data

    async def keep(self, session_id: int, recording: Recording, name: str, channel_id: str,
                   data: bytes, judged: dict[str, Any] | None = None) -> StoredTake:
        """The take in storage (written with fsync) and its row (status pending), with its
        quality figures (`judge`)."""
        take = await self.phone.new_take(session_id, recording.id, channel_id, name, judged)
        path = take_path(self.data_dir, recording.play_key, take.number, "wav")
        await asyncio.to_thread(write_private, path, data)
        return StoredTake(take, name, path, wav_duration_ms(data), judged)

    async def accept(self, ari: AriClient, session_id: int, recorder: Recorder,
                     recording: Recording, stored: StoredTake, *, channel_id: str,
                     caller_id: str | None, touchtone: str | None,
                     kept_on_hangup: bool = False, quiet: bool = False) -> bool:
        has_mp3 = recorder.audio_format in ("mp3", "both")
        has_wav = recorder.audio_format in ("wav", "both")
        stored = await self._processed(recorder, recording, stored)
        if has_mp3:
            mp3 = take_path(self.data_dir, recording.play_key, stored.take.number, "mp3")
            await self.to_mp3(stored.wav, mp3)
        kept = await self.phone.accept_take(
            session_id, recording.id, stored.take, duration_ms=stored.duration_ms,
            has_wav=has_wav, has_mp3=has_mp3, caller_id=caller_id, touchtone_input=touchtone,
            kept_on_hangup=kept_on_hangup, quiet=quiet)
        log.info("[%s] take %d of %s %s (%.1fs%s)", channel_id, stored.take.number,
                 recording.recording_key, "accepted" if kept else "kept as history",
                 stored.duration_ms / 1000, ", caller hung up" if kept_on_hangup else "")
        await self.forget(ari, stored.name)
        return kept

    async def _processed(self, recorder: Recorder, recording: Recording,
                         stored: StoredTake) -> StoredTake:
        """The take ready for listening (media/processing.py), as the recorder asks; the take
        as recorded stays beside it (take-N.original.wav). Off the event loop."""
        if not stored.quality or not (recorder.trim_silence or
                                      recorder.normalize_lufs is not None):
            return stored
        original = take_path(self.data_dir, recording.play_key, stored.take.number, ORIGINAL)
        duration_ms = await asyncio.to_thread(
            _process_file, stored.wav, original, stored.quality, recorder.trim_silence,
            recorder.normalize_lufs)
        if duration_ms is None:
            return stored
        return dataclasses.replace(stored, duration_ms=duration_ms)

    async def discard(self, ari: AriClient, stored: StoredTake) -> None:
        await self.phone.discard_take(stored.take, stored.duration_ms)
        await self.forget(ari, stored.name)

    async def forget(self, ari: AriClient, name: str) -> None:
        """Our storage holds the take now; Asterisk's copy goes."""
        if self.spool is not None and _NAME.match(name) and await asyncio.to_thread(
                _unlink_spooled, self.spool / f"{name}.wav"):
            return
        with contextlib.suppress(TelephonyError):
            await ari.delete_stored_recording(name)
