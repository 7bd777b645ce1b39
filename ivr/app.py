"""Wiring: the one place that builds clients (database pool, ARI session, event stream, call
runner) and the web application, and `serve()` with its graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web

from ivr import __version__, agi
from ivr.broadcast.rest import BROADCAST, Broadcast
from ivr.broadcast.rest import add_routes as add_broadcast_routes
from ivr.callcontrol.media import SpokenMedia
from ivr.callcontrol.rest import CALLCONTROL
from ivr.callcontrol.routes import add_routes as add_callcontrol_routes
from ivr.callcontrol.service import CallControl
from ivr.campaigns.service import Campaigns
from ivr.campaigns.web import CAMPAIGNS
from ivr.campaigns.web import add_routes as add_campaign_routes
from ivr.console.phone_service import PHONE, ConsolePhone
from ivr.console.routes import add_routes as add_console_routes
from ivr.core import db
from ivr.core.errors import Forbidden, Unauthorized, Unavailable
from ivr.core.throttle import Limits, Throttle
from ivr.core.web import (
    POOL,
    SETTINGS,
    THROTTLE,
    error_middleware,
    json_response,
    sees_internals,
    tls_context,
    transport_middleware,
)
from ivr.delivery import metrics as delivery_metrics
from ivr.delivery import outbox
from ivr.delivery.retention import RetentionJob
from ivr.delivery.worker import Backoff, DeliveryWorker
from ivr.dialer.accounts import Accounts
from ivr.dialer.kinds import load_hooks
from ivr.dialer.runtime import in_serve as dialer_in_serve
from ivr.dialer.service import Dialer
from ivr.linecheck.flow import line_check, not_in_service
from ivr.media.prompts import PromptCatalog
from ivr.media.routes import add_routes as add_media_routes
from ivr.media.transcode import wav_to_mp3
from ivr.media.tts import EspeakTts
from ivr.recorder.context import RECORDER, recorder_service
from ivr.recorder.events import RecorderEvents, upload_settled
from ivr.recorder.flow import RecorderFlow
from ivr.recorder.phone import RecorderPhone
from ivr.recorder.recovery import Recovery
from ivr.recorder.retention import AudioRetention
from ivr.recorder.routes import add_routes as add_recorder_routes
from ivr.recorder.takes import TakeStore
from ivr.settings import Settings, ws_url
from ivr.telephony import engines, trunk_health
from ivr.telephony.ari_tls import ari_connector
from ivr.telephony.call import Call
from ivr.telephony.call_log import PgCallLog
from ivr.telephony.engines import EngineRegistry
from ivr.telephony.events import EventStreams
from ivr.telephony.rest import AriClient, basic_auth
from ivr.telephony.runner import CallRunner, Route

log = logging.getLogger(__name__)

LINECHECK_NUMBER = "9999"


@dataclass
class Node:
    """One more media node this engine drives (IVR_ARI_NODES): its calls run here too."""

    ari: AriClient
    events: EventStreams
    runner: CallRunner


@dataclass
class Telephony:
    session: aiohttp.ClientSession
    ari: AriClient  # IVR_ARI_URL's Asterisk: calls out (call control, dialer) leave by it
    events: EventStreams
    runner: CallRunner
    others: list[Node] = field(default_factory=list)

    @property
    def runners(self) -> list[CallRunner]:
        return [self.runner, *(node.runner for node in self.others)]


TELEPHONY = web.AppKey("telephony", Telephony)


@dataclass
class Delivery:
    worker: DeliveryWorker
    retention: RetentionJob
    expiry: RetentionJob  # sessions whose PIN was not used in time


DELIVERY = web.AppKey("delivery", Delivery)


RouteOverride = Callable[[Call], Awaitable[Route | None]]


class Dialled:
    """Which flow a dialled number gets: the line check, a recorder's number (a dedicated one
    for call-initiated recorders), else "not in service". One query per new call."""

    def __init__(self, recorder: RecorderFlow, override: RouteOverride | None = None,
                 callcontrol: CallControl | None = None) -> None:
        self.recorder = recorder
        self.override = override
        self.callcontrol = callcontrol

    async def choose(self, call: Call) -> Route:
        if self.override is not None:
            chosen = await self.override(call)
            if chosen is not None:
                return chosen
        if call.dialed == LINECHECK_NUMBER:
            return Route("linecheck", line_check)
        if self.callcontrol is not None:
            chosen = await self.callcontrol.route_for(call)
            if chosen is not None:
                return chosen
        route = await self.recorder.phone.route(call.dialed)
        if route is not None:
            if route.dedicated is not None:
                return Route("recorder-call-in", partial(self.recorder.call_initiated, route=route))
            return Route("recorder", partial(self.recorder.api_initiated, route=route))
        return Route("not-in-service", not_in_service)

    async def adopt(self, call: Call) -> Route | None:
        """After a restart: a channel still voicing a recorder session resumes it; any other
        call a previous engine left is hung up (call control and the dialer keep their own
        state and recover on their side)."""
        session = await self.recorder.phone.resumable(call.id)
        if session is None:
            return None
        return Route("recorder-resumed", partial(self.recorder.resume, session=session))


def recorder_phone(settings: Settings, pool: asyncpg.Pool) -> RecorderPhone:
    """The recorder's phone-side store, as every part that changes sessions must see it: its
    events carry absolute audio URLs and retry for as long as the settings say."""
    return RecorderPhone(pool, settings.data_dir, settings.public_url,
                         settings.delivery_retry_for)


@contextlib.asynccontextmanager
async def telephony(
    settings: Settings, pool: asyncpg.Pool, override: RouteOverride | None = None,
    callcontrol: CallControl | None = None,
) -> AsyncIterator[Telephony]:
    # A large keep-alive pool: every call's steps are REST requests to the same Asterisk.
    session = aiohttp.ClientSession(
        headers=basic_auth(settings.ari_user, settings.ari_password),
        connector=ari_connector(settings, limit=200, limit_per_host=200, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=30, connect=5),
    )
    phone = recorder_phone(settings, pool)
    # The project's own Asterisk on this host (ARI on loopback): takes are read from its spool
    # directly. Any other Asterisk serves them over ARI, even where a root exists here too: no
    # file system is shared with a media host.
    local = urlsplit(settings.ari_url).hostname in ("127.0.0.1", "localhost", "::1")
    spool = settings.asterisk_root / "var/spool/asterisk/recording"
    takes = TakeStore(phone, settings.data_dir, wav_to_mp3,
                      spool if local and spool.is_dir() else None)
    prompts = PromptCatalog(settings.prompts_dir, settings.data_dir, settings.public_url)
    recorder = RecorderFlow(phone, prompts, EspeakTts(settings.data_dir, settings.public_url),
                            takes)
    dialled = Dialled(recorder, override, callcontrol)
    app = settings.stasis_app

    def node(url: str) -> Node:
        """A media node's calls: runner, recovery and event sockets of its own (each node
        resynchronises alone), the same flows and database."""
        node_ari = AriClient(session, url)
        runner = CallRunner(node_ari, app, dialled.choose, PgCallLog(pool, app),
                            shards=settings.ari_shards, apology=prompts.default_media("apology"),
                            pool=settings.ari_app if settings.engine_id else None)
        runner.adopt = dialled.adopt
        if callcontrol is not None:
            callcontrol.attach(node_ari, runner.router, app)
        recovery = Recovery(pool, takes)
        runner.resync_hooks.append(partial(recovery.once, node_ari))
        runner.takeover_hooks.append(partial(recovery.run, node_ari))
        events = EventStreams(session, ws_url(url), runner.apps, runner.router.dispatch,
                              runner.resync)
        events.start()
        return Node(node_ari, events, runner)

    first = node(settings.ari_url)
    ari, events, runner = first.ari, first.events, first.runner
    others = [node(url) for url in settings.ari_nodes]
    for each in (first, *others):
        each.runner.peers = [n.ari for n in (first, *others) if n is not each]
    watch = None
    if settings.engine_id:  # one of a pool: beat, and take over an engine that stops beating
        async def take_over(dead: set[str]) -> int:
            return sum([await n.runner.take_over(dead) for n in (first, *others)])

        watch = asyncio.create_task(engines.watch(
            EngineRegistry(pool, app, settings.public_url), take_over,
            lambda: all(n.events.connected for n in (first, *others))))
    agi_server = None
    try:
        agi_server = await agi.start(settings, recorder, PgCallLog(pool), runner.apology)
        yield Telephony(session, ari, events, runner, others)
    finally:
        await agi.stop(agi_server, settings.shutdown_grace)
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        for each in (first, *others):
            await each.runner.drain(0)
            await each.events.stop()
        await session.close()


async def healthz(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    tel = request.app.get(TELEPHONY)
    database: dict[str, object] = {"connected": False}
    try:
        async with asyncio.timeout(2):
            await pool.fetchval("SELECT 1")
        database["connected"] = True
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        database["error"] = str(exc) or type(exc).__name__
    body: dict[str, object] = {"version": __version__, "database": database}
    healthy = bool(database["connected"])
    if tel is None:
        body["ari"] = {"connected": False, "enabled": False}
    else:
        ari: dict[str, object] = {"connected": tel.events.connected, "app": tel.runner.app,
                                  "connections": tel.events.connections}
        if tel.events.last_error:
            ari["last_error"] = tel.events.last_error
        if tel.others:  # reported, not judged: every engine of a pool sees the same nodes
            ari["nodes"] = [{"connected": n.events.connected, "calls": len(n.runner.calls)}
                            for n in tel.others]
        body["ari"] = ari
        body["calls"] = {"active": len(tel.runner.calls), "accepting": tel.runner.accepting,
                         "handled": tel.runner.finished}
        healthy = healthy and tel.events.connected
        # Reported, not judged: a carrier that is down is no reason to take this engine out
        # of service (calls from other trunks and the API still work).
        trunks = await trunk_health.trunk_states(tel.ari) if tel.events.connected else None
        if trunks:
            body["trunks"] = trunk_health.health(trunks)
        if not tel.runner.accepting:
            # Stopping (SIGTERM): calls in progress finish here, new ones must go elsewhere,
            # so a load balancer has to see this instance as out of service.
            return _health(request, {"status": "draining", **body}, 503)
    if database["connected"]:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            async with asyncio.timeout(2), pool.acquire() as conn:
                backlog = await outbox.backlog(conn)
            delivery = request.app.get(DELIVERY)
            body["delivery"] = delivery_metrics.health(
                backlog, None if delivery is None else delivery.worker)
    body = {"status": "ok" if healthy else "degraded", **body}
    return _health(request, body, 200 if healthy else 503)


def _health(request: web.Request, body: dict[str, object], status: int) -> web.Response:
    """Anyone learns the status (a load balancer needs no more); the version and internals
    only a monitor that may see them (core/web.py sees_internals)."""
    return json_response(body if sees_internals(request) else {"status": body["status"]}, status)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: the outbox backlog and this process's delivery counters."""
    if not sees_internals(request):
        if request.app[SETTINGS].security.metrics_token:
            raise Unauthorized("/metrics needs the bearer token IVR_METRICS_TOKEN")
        raise Forbidden("/metrics answers only on loopback; set IVR_METRICS_TOKEN to scrape "
                        "it from elsewhere")
    try:
        async with asyncio.timeout(5), request.app[POOL].acquire() as conn:
            backlog = await outbox.backlog(conn)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise Unavailable(f"cannot read the outbox: {exc}") from exc
    delivery = request.app.get(DELIVERY)
    text = delivery_metrics.exposition(
        backlog, None if delivery is None else delivery.worker,
        None if delivery is None else delivery.retention.stats)
    tel = request.app.get(TELEPHONY)
    up = tel is not None and tel.events.connected  # no 2 s wait per scrape while ARI is down
    trunks = await trunk_health.trunk_states(tel.ari) if tel is not None and up else None
    if trunks:
        text += trunk_health.exposition(trunks).encode()
    return web.Response(body=text, headers={"Content-Type": delivery_metrics.CONTENT_TYPE})


def delivery_for(settings: Settings, pool: asyncpg.Pool) -> Delivery:
    """The outbox worker (callbacks, uploads) and the audio retention job."""
    worker = DeliveryWorker(
        pool, database_url=settings.database_url, concurrency=settings.delivery_concurrency,
        per_host=settings.delivery_per_host,
        lease_seconds=settings.delivery_lease,
        backoff=Backoff(base=settings.delivery_backoff), on_settled={"upload": upload_settled},
        allow_private=settings.security.allow_private_urls)
    events = RecorderEvents.for_settings(settings.data_dir, settings.public_url,
                                         settings.delivery_retry_for)
    retention = RetentionJob(AudioRetention(pool, settings.data_dir, events).sweep,
                             interval=settings.retention_interval)
    # Expiring sessions is a sweep of its own, off the callers' path (the phone side's
    # lookups already skip sessions past their expiry).
    phone = recorder_phone(settings, pool)
    expiry = RetentionJob(phone.expire_due, interval=settings.session_sweep_interval,
                          name="session expiry")
    return Delivery(worker, retention, expiry)


def create_app(
    settings: Settings, *, with_telephony: bool = True, route_override: RouteOverride | None = None
) -> web.Application:
    """The web application; its start-up also prepares the database and (unless told not to,
    as API-only tests do) starts the telephony worker."""
    # Small bodies for everyone; the few routes that take audio raise it once the client is
    # authenticated (core/web.py upload_body).
    app = web.Application(middlewares=[transport_middleware, error_middleware],
                          client_max_size=settings.security.max_body)
    app[SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        await db.prepare_database(settings.database_url)
        pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size)
        app[POOL] = pool
        sec = settings.security
        app[THROTTLE] = throttle = Throttle(pool, Limits(
            sec.auth_free_failures, sec.auth_address_failures, sec.auth_lock_max,
            sec.auth_address_lock_max))
        app[RECORDER] = recorder_service(settings, pool, throttle)
        app[CALLCONTROL] = callcontrol = CallControl(
            pool, media=SpokenMedia.for_settings(settings.data_dir, settings.public_url,
                                                 settings.prompts_dir), throttle=throttle,
            allow_private_urls=settings.security.allow_private_urls,
            security=settings.security)
        app[DELIVERY] = delivery = delivery_for(settings, pool)
        delivery.worker.start()
        delivery.retention.start()
        delivery.expiry.start()
        app[BROADCAST] = broadcast = Broadcast(
            settings, Accounts(pool, throttle), Dialer(pool, settings, load_hooks(settings)))
        app[CAMPAIGNS] = Campaigns(pool, Dialer(pool, settings, load_hooks(settings)),
                                   settings.data_dir, settings.public_url, throttle)
        try:
            if with_telephony:
                async with telephony(settings, pool, route_override, callcontrol) as tel:
                    app[TELEPHONY] = tel
                    app[PHONE] = phone = ConsolePhone(pool, tel.ari, settings)
                    phone.sweeper.start()
                    try:
                        async with dialer_in_serve(settings, pool, tel.ari, tel.runner):
                            yield
                    finally:
                        await phone.sweeper.stop()
            else:
                yield
        finally:
            await broadcast.close()
            await delivery.expiry.stop()
            await delivery.retention.stop()
            await delivery.worker.stop()
            await callcontrol.close()
            await pool.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_recorder_routes(app)
    add_callcontrol_routes(app)
    add_media_routes(app)
    add_console_routes(app)
    add_broadcast_routes(app)
    add_campaign_routes(app)
    return app


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    app = create_app(settings)
    web_runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await web_runner.setup()
    site = web.TCPSite(web_runner, settings.http_host, settings.http_port,
                       ssl_context=tls_context(settings))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("ivr %s serving on %s://%s:%d (ARI app %r at %s)", __version__,
             "https" if settings.security.http_tls_cert else "http",
             settings.http_host, settings.http_port, settings.stasis_app, settings.ari_url)
    # Everything alive now (modules, settings, the app) lives as long as the process: out of
    # the collector's reach, a full collection no longer walks it, and a full collection is a
    # pause of every call's event loop (0.4 s seen at 400 calls on a busy machine).
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.info("stopping: no new calls; letting calls in progress finish")
        if TELEPHONY in app:
            await asyncio.gather(*(r.drain(settings.shutdown_grace)
                                   for r in app[TELEPHONY].runners))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await web_runner.cleanup()
    log.info("stopped")
