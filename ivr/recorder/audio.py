"""Audio downloads: a recording's wav_url / mp3_url (`/{play_key}/recording.{ext}`, the seed's
URL shape) and uploaded prompts. The play key is the capability: 20 random characters; a
recorder with link_ttl_seconds serves its audio only through signed links that expire
(`?expires=&signature=`, ivr/delivery/links.py). FileResponse answers Range requests (206) and
conditional requests itself."""

from __future__ import annotations

from aiohttp import web

from ivr.core.errors import NotFound
from ivr.core.web import SETTINGS
from ivr.delivery.links import LinkRefused, check_link
from ivr.recorder.context import RECORDER, audio_links
from ivr.recorder.models import take_path

CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


async def recording_audio(request: web.Request) -> web.StreamResponse:
    play_key, ext = request.match_info["play_key"], request.match_info["ext"]
    signed = "expires" in request.query or "signature" in request.query
    if signed:
        why = check_link(audio_links(request).key, play_key, request.query.get("expires", ""),
                         request.query.get("signature", ""))
        if why is not None:
            raise LinkRefused(why)
    recording = await request.app[RECORDER].recording_for_play_key(play_key)
    if recording is not None and recording.link_ttl_seconds is not None and not signed:
        raise LinkRefused("this recording's audio is served through signed links only; use "
                          "the wav_url / mp3_url the API returns now")
    if recording is None or recording.accepted_take is None or not (
            recording.has_wav_file if ext == "wav" else recording.has_mp3_file):
        raise NotFound(f"no {ext} audio for play key {play_key}")
    path = take_path(request.app[SETTINGS].data_dir, play_key, recording.accepted_take, ext)
    if not path.is_file():
        raise NotFound(f"no {ext} audio for play key {play_key}")
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[ext]})


async def prompt_audio(request: web.Request) -> web.StreamResponse:
    path = await request.app[RECORDER].prompt_file(request.match_info["play_key"])
    if path is None or path.stem != request.match_info["name"] or not path.is_file():
        raise NotFound("no such prompt audio")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})
