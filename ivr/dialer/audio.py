"""Audio a call plays: any MP3 or WAV converted once to the 8 kHz mono 16-bit WAV Asterisk
plays, kept content-addressed (sha256) beside the synthesized speech, so the engine's
/media/tts/<digest>.wav route serves it and Asterisk may cache it for good."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from pathlib import Path

from ivr.core.files import private_dir, publish
from ivr.media.errors import MediaError
from ivr.media.process import run_tool
from ivr.media.transcode import wav_info
from ivr.media.tts import tts_dir


def media_uri(public_url: str, digest: str) -> str:
    return f"sound:{public_url.rstrip('/')}/media/tts/{digest}.wav"


async def probe(path: Path) -> str:
    """The container format ffprobe finds ('mp3', 'wav'), '' when it cannot read the file."""
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of",
        "default=nw=1:nk=1", str(path), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode().strip() if proc.returncode == 0 else ""


async def store_audio(data_dir: Path, src: Path) -> str:
    """Convert `src` (MP3 or WAV) and keep it; returns its digest. MediaError when the file is
    not a readable MP3/WAV."""
    folder = tts_dir(data_dir)
    private_dir(folder)
    tmp = folder / f".dialer-{secrets.token_hex(6)}.wav"
    try:
        await run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-i", str(src), "-map_metadata", "-1", "-ac", "1", "-ar", "8000",
                        "-c:a", "pcm_s16le", "-f", "wav", str(tmp)])
        if wav_info(tmp).seconds < 0.05:
            raise MediaError("the audio file holds no sound")
        data = await asyncio.to_thread(tmp.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        publish(tmp, folder / f"{digest}.wav")
        return digest
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
