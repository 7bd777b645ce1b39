"""Audio files: WAV facts read from the header, WAV -> MP3 for recorders that want MP3, and
any WAV -> the 8 kHz mono 16-bit PCM Asterisk's `wav` format plays. Conversions run ffmpeg or
sox as subprocesses and write atomically (temporary file + rename): a reader sees the old file
or the whole new one."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.core.files import part_path, private_dir, publish
from ivr.media.errors import MediaError
from ivr.media.process import run_tool
from ivr.media.speech import telephone_wav_command

MP3_BITRATE = "32k"  # plenty for 8 kHz telephone speech
PCM = 1
EXTENSIBLE = 0xFFFE


@dataclass(frozen=True, slots=True)
class WavInfo:
    format_tag: int  # 1 PCM, 6 A-law, 7 mu-law, 0xFFFE extensible
    channels: int
    rate: int
    bits: int
    byte_rate: int
    data_bytes: int

    @property
    def seconds(self) -> float:
        return self.data_bytes / self.byte_rate

    @property
    def telephone_ready(self) -> bool:
        """What Asterisk's `wav` format plays as is."""
        return (self.format_tag == PCM and self.channels == 1 and self.rate == 8000
                and self.bits == 16)


def wav_info(path: Path) -> WavInfo:
    """Walk the RIFF chunks (any encoding, unlike the `wave` module). A data size that runs
    past the end of the file (a writer that never went back to fix it) counts to the end."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise MediaError(f"{path.name} is not a WAV file")
        size = os.fstat(f.fileno()).st_size
        fmt: tuple[int, int, int, int, int] | None = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise MediaError(f"{path.name} has no audio data")
            chunk_id, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = f.read(length + (length & 1))
                if len(body) < 16:
                    raise MediaError(f"{path.name} has a short format chunk")
                tag, channels, rate, byte_rate, _, bits = struct.unpack("<HHIIHH", body[:16])
                fmt = (tag, channels, rate, byte_rate, bits)
            elif chunk_id == b"data":
                if fmt is None or fmt[3] == 0:
                    raise MediaError(f"{path.name} has audio before its format")
                tag, channels, rate, byte_rate, bits = fmt
                data = min(length, size - f.tell())
                return WavInfo(tag, channels, rate, bits, byte_rate, data)
            else:
                f.seek(length + (length & 1), os.SEEK_CUR)


def wav_seconds(path: Path) -> float:
    return wav_info(path).seconds


async def wav_to_mp3(src: Path, dst: Path) -> None:
    """Encode `src` as a mono MP3 at `dst`."""
    await _atomic(dst, lambda tmp: [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        "-map_metadata", "-1", "-ac", "1", "-codec:a", "libmp3lame", "-b:a", MP3_BITRATE,
        "-f", "mp3", str(tmp)])


async def to_telephone_wav(src: Path, dst: Path) -> None:
    """Convert any WAV to 8 kHz mono 16-bit PCM at `dst` (level untouched)."""
    await _atomic(dst, lambda tmp: telephone_wav_command(src, tmp, normalize=False))


async def _atomic(dst: Path, command: Callable[[Path], list[str]]) -> None:
    private_dir(dst.parent)
    tmp = part_path(dst)
    try:
        await run_tool(command(tmp))
        publish(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
