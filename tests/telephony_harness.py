"""The call harness: the real Asterisk (brought up once per test session through the same code
path as `make asterisk`), the engine's telephony worker with flows the tests register, a
`caller` that places calls into the inbound dialplan over Local channels, and a driver for the
baresip softphone over SIP.

A caller leg is the `;1` half of `Local/NUMBER@ivr-inbound`; the `;2` half runs the inbound
dialplan into the engine's Stasis app. The leg sits in the harness's own Stasis app, so the test
can play speech into the call, send DTMF, and hear (snoop + record) what the engine plays."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import io
import itertools
import os
import secrets
import time
import urllib.parse
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from ivr.app import TELEPHONY, Telephony, create_app
from ivr.cli import asterisk_config
from ivr.core.errors import IvrError
from ivr.core.web import POOL
from ivr.provision import asterisk as provision
from ivr.settings import Settings
from ivr.telephony.call import Call
from ivr.telephony.events import Event, EventStream, Router
from ivr.telephony.rest import AriClient, AriHttpError, basic_auth
from ivr.telephony.runner import Route
from ivr.telephony.softphone import Softphone, SoftphoneError
from tests.helpers.leaks import LeakCheck, Started
from tests.helpers.tcp_proxy import pipe

DATA = Path(__file__).resolve().parent / "data"
# The caller's own Stasis app and channel ids, one per test session: concurrent suites never
# share them.
CALLER_APP = f"ivr-test-caller-{os.getpid()}"
CALLER_PREFIX = f"caller-{os.getpid()}-"


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / float(w.getframerate())


# --- Asterisk ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def asterisk(base_settings: Settings) -> Iterator[object]:
    """The real Asterisk, up with this checkout's configuration and kept so for the whole
    session: another suite needing a different configuration waits instead of restarting it
    under our calls."""
    cfg = asterisk_config(base_settings)
    try:
        info = provision.up(cfg, progress=lambda line: print(f"[asterisk] {line}"))
    except IvrError as exc:
        pytest.fail(f"the real Asterisk could not be provisioned: {exc.message}", pytrace=False)
    except Exception as exc:  # the suite must fail, never skip, without its real parts
        pytest.fail(f"the real Asterisk could not be provisioned: {exc}", pytrace=False)
    with provision.in_use(cfg):
        yield info
    _check_no_channel_left(cfg)


def _check_no_channel_left(cfg: provision.AsteriskConfig) -> None:
    """Asterisk's own testsuite ends every run by checking no channel is left behind. When
    another suite is using Asterisk too, only this session's calls can be judged."""
    with provision.sole_user(cfg) as alone:
        left: list[str] = []
        for _ in range(50):
            left = [str(c["name"]) for c in provision.channels(cfg)
                    if alone or str(c["id"]).startswith(CALLER_PREFIX)]
            if not left:
                return
            time.sleep(0.2)
        pytest.fail(f"channels left in Asterisk: {left}", pytrace=False)


@pytest.fixture(scope="session")
def ari_started() -> Started:
    """The playbacks and recordings this session's ARI clients start (for the leak check)."""
    return Started()


@pytest.fixture(scope="session")
async def ari(base_settings: Settings, asterisk: object,
              ari_started: Started) -> AsyncIterator[AriClient]:
    async with aiohttp.ClientSession(
        headers=basic_auth(base_settings.ari_user, base_settings.ari_password)
    ) as session:
        client = AriClient(session, base_settings.ari_url)
        ari_started.watch(client)
        yield client


def _port(url: str) -> int:
    return urllib.parse.urlsplit(url).port or 0


def _ours(channel_id: str, holds_engine_app: bool) -> bool:
    """Whether a channel (or bridge) is this session's to judge: its callers' legs, and while
    it holds the engine's Stasis app (engine_lock), whatever else is not another session's
    caller (the engine's own legs, snoops and bridges, calls from the softphone)."""
    if channel_id.startswith(CALLER_PREFIX):
        return True
    return holds_engine_app and not channel_id.startswith("caller-")


@pytest.fixture(autouse=True)
def _leak_check_targets(request: pytest.FixtureRequest) -> LeakCheck | None:
    """What leak_check watches, for real-call tests (marked `asterisk`, or using it). A sync
    fixture: the async fixtures it asks for lazily (ari, engine) are set up by pytest-asyncio,
    which cannot happen from inside an async fixture's running loop."""
    names = request.fixturenames
    if request.node.get_closest_marker("asterisk") is None and "asterisk" not in names:
        return None
    client = request.getfixturevalue("ari") if "asterisk" in names else None
    engine = request.getfixturevalue("engine") if "engine" in names else None
    holds = "engine_lock" in names
    settings: Settings = request.getfixturevalue("base_settings")
    pooled = {_port(settings.ari_url), _port(settings.database_url)}
    if engine is not None:
        pooled.add(engine.proxy.port)
    return LeakCheck(client, lambda i: _ours(i, holds), request.getfixturevalue("ari_started"),
                     engine, frozenset(pooled))


@pytest.fixture(autouse=True)
async def leak_check(_leak_check_targets: LeakCheck | None) -> AsyncIterator[None]:
    """After every real-call test nothing of it may be left: channels, bridges, live
    recordings or playbacks in Asterisk, call tasks in the engine, connections out of the
    engine's pool, open files, exceptions nobody retrieved (tests/helpers/leaks.py). A leak
    fails the test."""
    check = _leak_check_targets
    if check is None:
        yield
        return
    await check.before()
    yield
    leaks = await check.after()
    if leaks:
        pytest.fail("left behind by the test: " + "; ".join(leaks), pytrace=False)


# --- a TCP proxy between the engine and Asterisk, to cut the event socket mid-call -----------
class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._events: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._refuse_until = 0.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        self.drop_events()

    def drop_events(self, refuse_for: float = 0.0) -> int:
        """Cut every ARI event websocket now (as a network failure would: no close frame),
        refusing new ones for `refuse_for` seconds. Returns how many were cut."""
        self._refuse_until = asyncio.get_running_loop().time() + refuse_for
        cut = 0
        for pair in list(self._events):
            for writer in pair:
                writer.transport.abort()
            cut += 1
        self._events.clear()
        return cut

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(65536)
        is_events = first.startswith(b"GET /ari/events")
        if is_events and asyncio.get_running_loop().time() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        if is_events:
            self._events.add(pair)
        up_writer.write(first)

        async def upstream(data: bytes) -> bool:
            # A websocket may also start on a kept-alive connection that first carried REST
            # requests: it is an event socket from then on.
            if b"GET /ari/events" in data:
                if asyncio.get_running_loop().time() < self._refuse_until:
                    return False  # refused as a new connection would be
                self._events.add(pair)
            return True

        await asyncio.gather(pipe(reader, up_writer, upstream), pipe(up_reader, writer))
        self._events.discard(pair)


# --- the engine under test ------------------------------------------------------------------
class TestRoutes:
    """Dialled number -> flow, registered by each test on a number of its own; any other
    number gets the product's own routing (recorders, line check)."""

    __test__ = False
    _numbers = itertools.count(7001)

    def __init__(self) -> None:
        self.flows: dict[str, Route] = {}

    def add(self, flow: Callable[[Call], Awaitable[None]], name: str = "test",
            number: str | None = None) -> str:
        """A number reaching `flow`: the next short one, or `number` (the dialer's tests need
        7-15 digit numbers)."""
        number = number or str(next(self._numbers))
        self.flows[number] = Route(name, flow)
        return number

    async def choose(self, call: Call) -> Route | None:
        return self.flows.get(call.dialed)


@dataclass
class Engine:
    tel: Telephony
    routes: TestRoutes
    proxy: TcpProxy
    url: str  # the web app's base URL (the API, and the audio Asterisk fetches)
    pool: asyncpg.Pool  # the engine's own database pool (a test may route it elsewhere)


@pytest.fixture(scope="session")
def engine_lock(base_settings: Settings) -> Iterator[None]:
    """One test session at a time owns the configured Stasis app (SIP calls reach it through
    the dialplan): a second suite run on this machine waits here instead of stealing calls."""
    path = base_settings.asterisk_root.parent / "engine-tests.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("[engine] another test session holds the Stasis app; waiting ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
async def engine(
    settings: Settings, pool: asyncpg.Pool, ari: AriClient, engine_lock: None,
    ari_started: Started,
) -> AsyncIterator[Engine]:
    """The real application (web app + telephony worker: event socket, router, runner, call
    log), talking to Asterisk through a proxy the tests can cut."""
    ari_port = int(settings.ari_url.rsplit(":", 1)[1])
    proxy = TcpProxy(ari_port)
    await proxy.start()
    routes = TestRoutes()
    # The dialer's tests run their own workers (with their own pace): none inside the engine.
    proxied = dataclasses.replace(settings, ari_url=f"http://127.0.0.1:{proxy.port}",
                                  dialer_enabled=False)
    app = create_app(proxied, route_override=routes.choose)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.http_port)
    await site.start()
    tel = app[TELEPHONY]
    ari_started.watch(tel.ari)
    try:
        await tel.events.wait_connected(10)
        yield Engine(tel, routes, proxy, settings.public_url, app[POOL])
    finally:
        await runner.cleanup()
        await proxy.close()


# --- the caller -----------------------------------------------------------------------------
@dataclass
class CallerLeg:
    """The caller's end of one call."""

    call: Call
    answered: asyncio.Future[None]
    harness: Caller
    listening: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.call.id

    async def say(self, wav_name: str) -> None:
        """Play a file from tests/data into the call, as the caller's voice; returns when it has
        been played."""
        await self.call.play(f"sound:{self.harness.media_url}/{wav_name}")

    async def press(self, digits: str, between_ms: int = 150) -> None:
        await self.call.send_dtmf(digits, between_ms=between_ms)

    async def hangup(self) -> None:
        await self.call.hangup()

    async def wait_hangup(self, timeout: float = 30) -> bool:
        return await self.call.wait_gone(timeout)


class Caller:
    def __init__(self, ari: AriClient, session: aiohttp.ClientSession, ws_url: str,
                 media_url: str) -> None:
        self.ari = ari
        self.media_url = media_url
        self.router = Router(lambda event: None)
        self.events = EventStream(session, ws_url, [CALLER_APP], self.router.dispatch)
        self.legs: list[CallerLeg] = []

    async def dial(
        self, number: str, caller_id: str = "5551234567", timeout: float = 15,
        app: str | None = None, context: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> CallerLeg:
        """Call `number` through the inbound dialplan; returns once the engine answers. With
        `app`, the call goes to that Stasis app instead of the configured one (through the
        `ivr-app-direct` context), for a second engine such as an `ivr serve` under test. With
        `context`, through that dialplan context instead (`ivr-agi`: FastAGI), with the
        channel variables `variables`."""
        channel_id = f"{CALLER_PREFIX}{secrets.token_hex(6)}"
        call = Call(self.ari, {"id": channel_id}, [])
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def sink(event: Event) -> None:
            if event["type"] == "StasisStart" and not answered.done():
                answered.set_result(None)
            elif event["type"] in ("ChannelDestroyed", "StasisEnd") and not answered.done():
                answered.set_exception(AssertionError(f"call to {number} ended unanswered"))
            call.feed(event)

        self.router.register(channel_id, sink)
        leg = CallerLeg(call, answered, self)
        self.legs.append(leg)
        context = context or ("ivr-inbound" if app is None else "ivr-app-direct")
        variables = {**(variables or {}), **({"IVR_TARGET_APP": app} if app else {})}
        await self.ari.originate(
            channel_id, f"Local/{number}@{context}", app=CALLER_APP, caller_id=caller_id,
            timeout=int(timeout), variables=variables or None,
        )
        try:
            await asyncio.wait_for(asyncio.shield(answered), timeout)
        except TimeoutError:
            with contextlib.suppress(IvrError):
                await self.ari.hangup(channel_id)
            raise AssertionError(f"call to {number} not answered in {timeout}s") from None
        return leg

    async def hangup_all(self) -> None:
        for leg in self.legs:
            with contextlib.suppress(IvrError):
                await leg.call.hangup()
        self.legs.clear()


@contextlib.asynccontextmanager
async def calls_from(ari_url: str, user: str, password: str, ws_url: str, host: str,
                     started: Started | None = None) -> AsyncIterator[Caller]:
    """Callers on the Asterisk at `ari_url`, with tests/data served to it on `host` (the
    voice callers `say`)."""
    media = web.Application()
    media.router.add_static("/", DATA)
    runner = web.AppRunner(media, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession(headers=basic_auth(user, password)) as session:
        harness = Caller(AriClient(session, ari_url), session, ws_url, f"http://{host}:{port}")
        if started is not None:
            started.watch(harness.ari)
        harness.events.start()
        await harness.events.wait_connected(10)
        yield harness
        await harness.hangup_all()
        await harness.events.stop()
    await runner.cleanup()


@pytest.fixture(scope="session")
async def caller(base_settings: Settings, ari: AriClient,
                 ari_started: Started) -> AsyncIterator[Caller]:
    s = base_settings
    async with calls_from(s.ari_url, s.ari_user, s.ari_password, s.ari_ws_url, "127.0.0.1",
                          ari_started) as harness:
        yield harness


@pytest.fixture
async def stored_recordings(ari: AriClient) -> AsyncIterator[list[str]]:
    """Names a test recorded in Asterisk; deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(AriHttpError):
            await ari.delete_stored_recording(name)


# --- baresip, a real softphone --------------------------------------------------------------
# The driver is the package's own (`ivr softphone call` runs the same code).
@pytest.fixture
async def softphone(
    base_settings: Settings, asterisk: object
) -> AsyncIterator[Callable[[Path], Awaitable[Softphone]]]:
    phones: list[Softphone] = []

    async def start(speech: Path) -> Softphone:
        phone = Softphone(base_settings.softphone_user, base_settings.softphone_password,
                          speech)
        phones.append(phone)
        try:
            await phone.start()
        except SoftphoneError as exc:
            pytest.fail(exc.message, pytrace=False)
        return phone

    yield start
    for phone in phones:
        await phone.stop()


__all__ = ["DATA", "Caller", "CallerLeg", "Engine", "Softphone", "TcpProxy", "wav_seconds"]
