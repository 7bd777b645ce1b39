"""The audio Asterisk fetches over HTTP (res_http_media_cache): the default prompt sets,
synthesized speech, and recorders' uploaded prompts.

Every URL the catalog and the TTS engine hand out is versioned or content-addressed, so it is
served with a one-year `Cache-Control`: Asterisk then plays repeats from its own cache without
asking again. A request without a version gets `no-cache`, which makes Asterisk revalidate
with the ETag (a HEAD answered 304) before each reuse. FileResponse supplies ETag,
Last-Modified, conditional requests and Range."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from pathlib import Path

from aiohttp import web

from ivr.core.keys import KEY_CHARS
from ivr.core.web import SETTINGS
from ivr.media.errors import MediaError
from ivr.media.prompts import PROMPT_NAMES, PROMPTS_DIR, prompt_path, upload_token
from ivr.media.signing import media_key
from ivr.media.transcode import WavInfo, to_telephone_wav, wav_info
from ivr.media.tts import tts_dir

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Path parts are matched whole by these patterns before any file name is built from them:
# no '/', no '.', so no way out of the folders below.
LANG = r"[a-z]{2,3}[A-Za-z_]{0,5}"
NAME = r"[a-z0-9_]{1,64}"


class MediaFiles:
    def __init__(self, prompts_dir: Path, data_dir: Path) -> None:
        self.prompts_dir = prompts_dir
        self.data_dir = data_dir
        self.tts_dir = tts_dir(data_dir)
        self.converted_dir = data_dir / "media" / "uploads"
        self._key = media_key(data_dir)
        self._converting: dict[Path, asyncio.Future[None]] = {}

    async def prompt(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        path = self.prompts_dir / info["lang"] / f"{info['name']}.wav"
        return _file(path, request)

    async def tts(self, request: web.Request) -> web.StreamResponse:
        return _file(self.tts_dir / f"{request.match_info['digest']}.wav", request,
                     immutable=True)

    async def uploaded(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        recorder_key, name = info["recorder_key"], info["name"]
        if name not in PROMPT_NAMES or not hmac.compare_digest(
                info["token"], upload_token(self._key, recorder_key, name)):
            raise web.HTTPNotFound()
        path = prompt_path(self.data_dir, recorder_key, name)
        try:
            path = await self._playable(path, recorder_key, name)
        except (FileNotFoundError, MediaError) as exc:
            log.warning("uploaded prompt %s/%s cannot be served: %s", recorder_key, name, exc)
            raise web.HTTPNotFound() from None
        return _file(path, request)

    async def _playable(self, path: Path, recorder_key: str, name: str) -> Path:
        """The upload itself when Asterisk can play it as is, else an 8 kHz mono copy made
        once per upload (uploads are any WAV; Asterisk's `wav` is 8 kHz 16-bit mono only)."""
        info, st = await asyncio.to_thread(_probe, path)
        if info.telephone_ready:
            return path
        copy = self.converted_dir / recorder_key / f"{name}-{st.st_mtime_ns:x}-{st.st_size:x}.wav"
        if await asyncio.to_thread(copy.is_file):
            return copy
        pending = self._converting.get(copy)
        if pending is None:
            pending = asyncio.ensure_future(self._convert(path, copy, name))
            self._converting[copy] = pending
            pending.add_done_callback(lambda _: self._converting.pop(copy, None))
        await asyncio.shield(pending)
        return copy

    async def _convert(self, src: Path, copy: Path, name: str) -> None:
        await to_telephone_wav(src, copy)
        for older in copy.parent.glob(f"{name}-*.wav"):  # copies of earlier uploads
            if older != copy:
                with contextlib.suppress(FileNotFoundError):
                    older.unlink()


def _probe(path: Path) -> tuple[WavInfo, os.stat_result]:
    return wav_info(path), path.stat()


def _file(path: Path, request: web.Request, *, immutable: bool = False) -> web.FileResponse:
    if not path.is_file():
        raise web.HTTPNotFound()
    cache = IMMUTABLE if immutable or "v" in request.query else REVALIDATE
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": cache})


def add_routes(app: web.Application, *, data_dir: Path | None = None,
               prompts_dir: Path | None = None) -> MediaFiles:
    """Serve media under /media; `data_dir` and `prompts_dir` default to the app's settings."""
    settings = app.get(SETTINGS)
    if prompts_dir is None:
        prompts_dir = settings.prompts_dir if settings is not None else PROMPTS_DIR
    files = MediaFiles(prompts_dir, data_dir if data_dir is not None else app[SETTINGS].data_dir)
    app.router.add_get(rf"/media/prompts/{{lang:{LANG}}}/{{name:{NAME}}}.wav", files.prompt)
    app.router.add_get(r"/media/tts/{digest:[0-9a-f]{64}}.wav", files.tts)
    app.router.add_get(
        rf"/media/uploads/{{recorder_key:{KEY_CHARS}}}/{{token:[0-9a-f]{{32}}}}"
        rf"/{{name:{NAME}}}.wav", files.uploaded)
    return files
