"""How a request handler reaches the recorder service (built from the app's pool and settings,
so it exists exactly when the pool does)."""

from __future__ import annotations

from aiohttp import web

from ivr.core.web import POOL, SETTINGS
from ivr.recorder.service import RecorderService


def service_for(request: web.Request) -> RecorderService:
    settings = request.app[SETTINGS]
    return RecorderService(request.app[POOL], settings.data_dir, open_signup=settings.open_signup)


def base_url(request: web.Request) -> str:
    """Where clients fetch audio from us (IVR_PUBLIC_URL)."""
    return str(request.app[SETTINGS].public_url).rstrip("/")
