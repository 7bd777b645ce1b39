"""How a request handler reaches the recorder service (built from the app's pool and settings,
so it exists exactly when the pool does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ivr.core.web import POOL, SETTINGS
from ivr.delivery.links import AudioLinks

if TYPE_CHECKING:
    from ivr.recorder.service import RecorderService


def service_for(request: web.Request) -> RecorderService:
    # Imported here: service -> events -> myvox -> this module would otherwise be a cycle
    # (the renderers myvox holds belong in a module of their own; until then, this edge).
    from ivr.recorder.service import RecorderService

    settings = request.app[SETTINGS]
    return RecorderService(request.app[POOL], settings.data_dir, open_signup=settings.open_signup,
                           public_url=settings.public_url,
                           retry_for=settings.delivery_retry_for)


def base_url(request: web.Request) -> str:
    """Where clients fetch audio from us (IVR_PUBLIC_URL)."""
    return str(request.app[SETTINGS].public_url).rstrip("/")


def audio_links(request: web.Request) -> AudioLinks:
    """How wav_url / mp3_url are written (signed for recorders with link_ttl_seconds)."""
    settings = request.app[SETTINGS]
    return AudioLinks.for_settings(settings.data_dir, settings.public_url)
