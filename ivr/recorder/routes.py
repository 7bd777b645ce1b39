"""Everything the recorder serves over HTTP, registered in one place."""

from __future__ import annotations

from aiohttp import web

from ivr.recorder import audio, myvox, rest


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/vr", myvox.handle)
    app.router.add_route("POST", "/vr", myvox.handle)
    app.router.add_get(r"/{play_key:[A-Z0-9]{20}}/recording.{ext:wav|mp3}",
                       audio.recording_audio)
    app.router.add_get(r"/prompts/{play_key:[A-Z0-9]{20}}/{name:[a-z0-9_]+}.wav",
                       audio.prompt_audio)
    rest.add_routes(app)
