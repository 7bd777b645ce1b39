"""Building the dialer for a process: inside `ivr serve` it shares the engine's ARI client,
event router and Stasis app; `ivr dialer run` has its own event socket on IVR_DIALER_APP and
serves the audio Asterisk fetches (TTS, converted audio files) itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from aiohttp import web

from ivr.core import db
from ivr.core.web import SETTINGS
from ivr.dialer.flow import Speech, Telephone
from ivr.dialer.kinds import load_hooks
from ivr.dialer.worker import DialerWorker
from ivr.media.routes import add_routes as add_media_routes
from ivr.settings import Settings
from ivr.telephony.ari_tls import ari_connector
from ivr.telephony.events import EventStream, Router
from ivr.telephony.rest import AriClient, basic_auth
from ivr.telephony.runner import CallRunner

log = logging.getLogger(__name__)


def telephone(settings: Settings, ari: AriClient, router: Router, app: str) -> Telephone:
    return Telephone(ari, router, app, settings.dialer_trunk,
                     Speech(settings.data_dir, settings.public_url))


async def run_alone(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """`ivr dialer run`: the worker and nothing else, until SIGTERM / SIGINT."""
    await db.prepare_database(settings.database_url)
    pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size)
    session = aiohttp.ClientSession(
        headers=basic_auth(settings.ari_user, settings.ari_password),
        connector=ari_connector(settings, limit=200, limit_per_host=200, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=30, connect=5))
    ari = AriClient(session, settings.ari_url)
    # Channels of ours are registered before they exist; anything else in the app (left by
    # a worker that died) is settled by the lease sweep, not here.
    router = Router(lambda event: None)
    # One app per process: two workers on one Stasis app would take each other's events.
    app = f"{settings.dialer_app}-{os.getpid()}"
    tel = telephone(settings, ari, router, app)
    events = EventStream(session, settings.ari_ws_url, [app], router.dispatch, tel.resync)
    media = web.Application()
    media[SETTINGS] = settings
    add_media_routes(media)
    runner = web.AppRunner(media, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    worker = DialerWorker(pool, settings, tel, load_hooks(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    events.start()
    try:
        await events.wait_connected(30)
        worker.start()
        log.info("dialer %s running: trunk %s, %.2f calls/s, %d at once, Stasis app %s",
                 worker.name, settings.dialer_trunk, settings.dialer_cps,
                 settings.dialer_channels, app)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("dialer stopping: no new calls; letting calls in progress finish")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await worker.stop(settings.shutdown_grace)
        await events.stop()
        await runner.cleanup()
        await session.close()
        await pool.close()


@contextlib.asynccontextmanager
async def in_serve(settings: Settings, pool: asyncpg.Pool, ari: AriClient,
                   runner: CallRunner) -> AsyncIterator[DialerWorker | None]:
    """The worker inside `ivr serve` (unless IVR_DIALER_ENABLED=false) on the engine's router
    and Stasis app, resynchronised with the runner; stopped with it."""
    if not settings.dialer_enabled:
        yield None
        return
    tel = telephone(settings, ari, runner.router, runner.app)
    runner.resync_hooks.append(tel.resync)
    worker = DialerWorker(pool, settings, tel, load_hooks(settings))
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop(settings.shutdown_grace)
