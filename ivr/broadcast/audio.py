"""An `audio_file_url` fetched, checked and converted at job creation (so a bad file is the
client's answer, not a failed call later): the URL's file name must be plain, the download
must succeed within limits, ffprobe must read it as MP3 or WAV, and the conversion to the
8 kHz WAV Asterisk plays must hold sound. Each failure is its seed code."""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp

from ivr.broadcast.errors import BroadcastError, err
from ivr.dialer.audio import probe, store_audio
from ivr.media.errors import MediaError

MAX_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=15)
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+\.(mp3|wav)$", re.IGNORECASE)


def check_url(url: str) -> None:
    """-107 for a URL with spaces or a file name other than letters, digits, '-', '_' and an
    .mp3 / .wav extension."""
    parts = urlsplit(url)
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if any(c.isspace() for c in url) or not parts.hostname or not _FILE_NAME.match(name):
        raise err(-107)


async def fetch_audio(session: aiohttp.ClientSession, url: str, data_dir: Path) -> str:
    """The stored audio's digest."""
    check_url(url)
    with tempfile.TemporaryDirectory(prefix="broadcast-audio-") as folder:
        path = Path(folder) / "download"
        try:
            async with session.get(url, timeout=FETCH_TIMEOUT, allow_redirects=True) as resp:
                if resp.status != 200:
                    raise err(-106)
                size = 0
                with path.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(65536):
                        size += len(chunk)
                        if size > MAX_BYTES:
                            raise err(-109)
                        out.write(chunk)
        except BroadcastError:
            raise
        except TimeoutError:
            raise err(-109) from None
        except (aiohttp.ClientError, OSError, ValueError):
            raise err(-106) from None
        kind = await probe(path)
        if not kind:
            raise err(-108)
        if not {"mp3", "wav"} & set(kind.split(",")):
            raise err(-107)
        try:
            return await store_audio(data_dir, path)
        except MediaError:
            raise err(-110) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
