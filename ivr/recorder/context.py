"""How a request handler reaches the recorder: its service, built once at start-up (ivr/app.py)
under RECORDER, and the settings its replies are written with."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from ivr.core.throttle import Throttle
from ivr.core.web import SETTINGS
from ivr.delivery.links import AudioLinks
from ivr.recorder.service import RecorderService
from ivr.settings import Settings

RECORDER = web.AppKey("recorder", RecorderService)


def recorder_service(settings: Settings, pool: asyncpg.Pool,
                     throttle: Throttle | None = None) -> RecorderService:
    """The service as the web faces use it: events carry absolute audio URLs and retry for as
    long as the settings say."""
    return RecorderService(pool, settings.data_dir, open_signup=settings.open_signup,
                           public_url=settings.public_url,
                           retry_for=settings.delivery_retry_for, throttle=throttle,
                           max_recorders=settings.security.max_recorders,
                           signups_per_hour=settings.security.signup_per_hour,
                           allow_private_urls=settings.security.allow_private_urls)


def base_url(request: web.Request) -> str:
    """Where clients fetch audio from us (IVR_PUBLIC_URL)."""
    return str(request.app[SETTINGS].public_url).rstrip("/")


def audio_links(request: web.Request) -> AudioLinks:
    """How wav_url / mp3_url are written (signed for recorders with link_ttl_seconds)."""
    settings = request.app[SETTINGS]
    return AudioLinks.for_settings(settings.data_dir, settings.public_url)
