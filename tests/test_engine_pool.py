"""Several engines, one Postgres (issue #24 item 2): two `ivr serve` processes (engines `a` and
`b` of one pool, HTTP ports of their own, the test's database and data folder) drive one
Asterisk, which offers every incoming call to both (StasisBroadcast, IVR_ENTRY = broadcast): the
first engine to claim a call runs it.

The Asterisk is an instance of its own in a namespace (provisioned as `ivr asterisk up --role
media` does, IVR_ENGINE_POOL=true), so the shared one on 127.0.0.1 is never touched; the engines
run in the root namespace and reach it over a veth pair, and it fetches their prompts over it.
Shown: calls spread over both engines; a recorder session opened through engine B's API and
voiced by whichever engine took the call is seen live by the other engine's API, and is not
taken from its engine when the other one restarts meanwhile (its start-up recovery runs); with
engine A killed, every new call goes to B and is answered."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from ivr.callcontrol.service import CallControl
from ivr.cli import asterisk_config
from ivr.core.errors import ConfigError
from ivr.provision import asterisk as provision
from ivr.settings import Settings
from ivr.telephony.engines import STALE
from ivr.telephony.rest import basic_auth
from tests.callcontrol.conftest import Webhooks
from tests.conftest import free_port, start_serve
from tests.helpers.netns import Net, asterisk_up, free_subnet
from tests.helpers.phone import Recorder, new_number, recordings_of, start_session
from tests.helpers.vr import Dev, Vr, as_list, fresh_number
from tests.receiver import serving
from tests.telephony_harness import Caller, CallerLeg, calls_from

pytestmark = pytest.mark.asterisk

SHORT = "speech-short.wav"


@dataclass
class Pool:
    net: Net
    octets: str
    cfg: provision.AsteriskConfig
    env: dict[str, str]  # the media Asterisk's settings (ARI URL, user, password, app)
    settings: Settings  # the test's database and data folder
    ports: dict[str, int]  # engine id -> its HTTP port
    procs: dict[str, asyncio.subprocess.Process]

    @property
    def app(self) -> str:
        return self.env["IVR_ARI_APP"]

    def url(self, engine: str) -> str:
        return f"http://127.0.0.1:{self.ports[engine]}"

    async def start(self, engine: str) -> None:
        port = self.ports[engine]
        ours = dataclasses.replace(self.settings, http_port=port,
                                   public_url=f"http://{self.octets}.1:{port}")
        self.procs[engine] = await start_serve(
            ours, IVR_ARI_URL=self.env["IVR_ARI_URL"], IVR_ARI_USER=self.env["IVR_ARI_USER"],
            IVR_ARI_PASSWORD=self.env["IVR_ARI_PASSWORD"], IVR_ARI_APP=self.app,
            IVR_ENGINE_ID=engine, IVR_HTTP_HOST="0.0.0.0", IVR_OPEN_SIGNUP="true",
            IVR_DIALER_ENABLED="false", IVR_ARI_SHARDS="2",
            # The suite's relaxations (tests/conftest.py settings): its sign-ups and failures
            # from 127.0.0.1 add up in the one database.
            IVR_SIGNUP_PER_HOUR=str(self.settings.security.signup_per_hour),
            IVR_AUTH_ADDRESS_FAILURES=str(self.settings.security.auth_address_failures),
            IVR_ALLOW_PRIVATE_URLS="true",  # webhooks to the test's receiver on loopback
            # No file system shared with the media host: takes come over ARI.
            IVR_ASTERISK_ROOT="/nonexistent/remote-asterisk")

    async def stop(self, engine: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(engine, None)
        if proc is not None and proc.returncode is None:
            proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _env(base: Settings, octets: str, pid: int) -> dict[str, str]:
    return {"IVR_ASTERISK_ROOT": str(base.asterisk_root), "IVR_ARI_USER": "ivr",
            "IVR_ARI_PASSWORD": secrets.token_urlsafe(18), "IVR_SOFTPHONE_USER": "softphone",
            "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12),
            "IVR_ARI_URL": f"http://{octets}.2:8088", "IVR_ARI_BIND": f"{octets}.2:8088",
            "IVR_SIP_BIND": f"{octets}.2", "IVR_RTP_ADDRESS": f"{octets}.2",
            "IVR_ARI_APP": f"pool{pid}", "IVR_ENGINE_POOL": "true",
            "IVR_PUBLIC_URL": f"http://{octets}.1:8080"}


@pytest.fixture(scope="module")
def media(base_settings: Settings) -> Iterator[tuple[Net, str, provision.AsteriskConfig,
                                                     dict[str, str]]]:
    provision.build_root(asterisk_config(base_settings),
                         progress=lambda line: print(f"[asterisk] {line}"))
    pid = os.getpid()
    net = Net(f"p{pid % 10000}")
    cfg = None
    try:
        octets = free_subnet(pid + 7)
        ns = net.namespace("pool")
        net.link(None, f"{octets}.1", ns, f"{octets}.2")
        env = _env(base_settings, octets, pid)
        cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)),
                                  instance=f"pool{pid}", media_host=True)
        asterisk_up(ns, env, instance=cfg.instance, media_host=True)
    except Exception as exc:  # a real part that cannot start fails the test
        if cfg is not None:
            provision.down(cfg, progress=lambda line: None, purge=True)
        net.close()
        pytest.fail(f"the pool's Asterisk could not be set up: {exc}", pytrace=False)
    try:
        yield net, octets, cfg, env
    finally:
        provision.down(cfg, progress=lambda line: None, purge=True)
        net.close()


@pytest.fixture(scope="module")
async def engines(media: Any, settings: Settings) -> AsyncIterator[Pool]:
    net, octets, cfg, env = media
    made = Pool(net, octets, cfg, env, settings, {"a": free_port(), "b": free_port()}, {})
    try:
        await asyncio.gather(made.start("a"), made.start("b"))
        yield made
    finally:
        for engine in list(made.procs):
            await made.stop(engine)


@pytest.fixture(scope="module")
async def caller(engines: Pool) -> AsyncIterator[Caller]:
    env = engines.env
    url = env["IVR_ARI_URL"]
    async with calls_from(url, env["IVR_ARI_USER"], env["IVR_ARI_PASSWORD"],
                          url.replace("http", "ws", 1) + "/ari/events",
                          f"{engines.octets}.1") as harness:
        yield harness


async def _engine_of(pool: asyncpg.Pool, leg: CallerLeg, timeout: float = 10) -> str:
    """Which engine's app runs the call (the call log's row for its inbound half)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        engine = await pool.fetchval("SELECT engine FROM calls WHERE channel_id = $1",
                                     leg.id + ";2")
        if engine:
            return str(engine)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no engine recorded the call {leg.id}")


async def _calls(caller: Caller, pool: asyncpg.Pool, n: int) -> list[str]:
    """`n` concurrent calls to a number nobody has ("not in service"): the engine of each."""
    legs = await asyncio.gather(*(caller.dial("5550001", caller_id=f"55512{i:05d}")
                                  for i in range(n)))
    engines = await asyncio.gather(*(_engine_of(pool, leg) for leg in legs))
    await asyncio.gather(*(leg.wait_hangup(20) for leg in legs))
    return list(engines)


async def test_calls_spread_over_both_engines(engines: Pool, caller: Caller,
                                              pool: asyncpg.Pool) -> None:
    got = await _calls(caller, pool, 16)
    spread = {e: got.count(e) for e in sorted(set(got))}
    print(f"16 calls over the pool: {spread}")
    assert _both(spread, engines.app), spread
    assert sum(spread.values()) == 16


def _both(spread: dict[str, int], app: str) -> bool:
    """Calls on an app of each engine (an engine's app or one of its shards, a-0, a-1 ...)."""
    return all(any(k == f"{app}.{e}" or k.startswith(f"{app}.{e}-") for k in spread)
               for e in ("a", "b"))


class _Api:
    """/vr on one engine, as tests.helpers.vr.Vr expects its client."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.base + path, **kw)

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.post(self.base + path, **kw)


async def _recorder(api: _Api, pool: asyncpg.Pool, settings: Settings) -> Recorder:
    await new_number(pool, settings)
    username, password = "pool" + secrets.token_hex(4), secrets.token_urlsafe(12)
    vr = Vr(api, Dev(username, password, ""))  # type: ignore[arg-type]
    await vr.ok("CreateDeveloper")
    tree = await vr.ok("CreateVoiceRecorder", "json", audio_format="wav")
    recorder = tree["voice_recorder"]
    dev = Dev(username, password, recorder["voice_recorder_key"])
    number = as_list(recorder["phone_number_list"]["phone_number_info"])[0]["phone_number"]
    return Recorder(Vr(api, dev), dev.recorder_key, number,  # type: ignore[arg-type]
                    recorder.get("callback_secret", ""))


async def _state(vr: Vr, key: str) -> str:
    return str((await vr.ok("GetSessionStatus", "json", recording_session_key=key))[
        "session_state"])


async def _until_state(vr: Vr, key: str, states: set[str], timeout: float = 20) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        state = await _state(vr, key)
        if state in states:
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"session never {states} (last {state})")


async def test_a_session_on_one_engine_is_seen_and_left_alone_by_the_other(
        engines: Pool, caller: Caller, pool: asyncpg.Pool, settings: Settings) -> None:
    async with aiohttp.ClientSession() as http:
        rec = await _recorder(_Api(http, engines.url("b")), pool, settings)
        s = await start_session(rec, ["Pool take"])
        leg = await caller.dial(rec.number, caller_id="5557770101")
        await leg.press(s["pin"] + "#")
        running = (await _engine_of(pool, leg)).split(".")[-1].split("-")[0]
        other = "b" if running == "a" else "a"
        # The other engine's API sees the call's session live.
        other_vr = Vr(_Api(http, engines.url(other)), rec.vr.dev)  # type: ignore[arg-type]
        assert await _until_state(other_vr, s["session_key"], {"called", "recording"})
        # The other engine restarts mid-call: its recovery finds a live session whose channel
        # it does not run, and leaves it (and the call) to the engine that has it.
        await engines.stop(other)
        await engines.start(other)
        assert await _until_state(other_vr, s["session_key"], {"recording"}) == "recording"
        channel = await pool.fetchval(
            "SELECT channel_id FROM recording_sessions WHERE session_key = $1",
            s["session_key"])
        assert channel == leg.id + ";2"
        await asyncio.sleep(0.5)  # the beep
        await leg.say(SHORT)
        await leg.press("#")
        await asyncio.sleep(1.0)  # the take stops; the review menu starts
        await leg.press("9")  # keep it, done
        assert await leg.wait_hangup(20)
        await _until_state(other_vr, s["session_key"], {"ended"})
        recordings = await recordings_of(rec, s["list_key"])
        (only,) = recordings.values()
        assert only["recording_state"] == "recorded", only
        print(f"session voiced by engine {running}, seen and left alone by engine {other}")


async def test_with_an_engine_down_every_new_call_goes_to_the_other(
        engines: Pool, caller: Caller, pool: asyncpg.Pool) -> None:
    await engines.stop("a", signal.SIGKILL)  # a crash: no drain, its sockets just close
    try:
        got = await _calls(caller, pool, 8)
        spread = {e: got.count(e) for e in sorted(set(got))}
        print(f"8 calls with engine a killed: {spread}")
        assert all(e.startswith(f"{engines.app}.b") for e in got), spread
        assert len(got) == 8
    finally:
        with contextlib.suppress(Exception):
            await engines.start("a")


def test_an_engine_of_a_pool_has_apps_of_its_own() -> None:
    base = {"IVR_ARI_PASSWORD": "x" * 24, "IVR_SOFTPHONE_PASSWORD": "y" * 12}
    alone = Settings.from_mapping(base)
    assert (alone.stasis_app, alone.engine_pool) == ("ivr", False)
    member = Settings.from_mapping({**base, "IVR_ENGINE_ID": "east-a"})
    assert (member.stasis_app, member.engine_pool) == ("ivr.east-a", True)
    media = Settings.from_mapping({**base, "IVR_ENGINE_POOL": "yes"})
    assert (media.stasis_app, asterisk_config(media).engine_pool) == ("ivr", True)
    for bad in ("a.b", "x y", "é", "east-1"):
        with pytest.raises(ConfigError, match="IVR_ENGINE_ID"):
            Settings.from_mapping({**base, "IVR_ENGINE_ID": bad})


async def test_an_engine_that_dies_mid_session_is_taken_over(
        engines: Pool, caller: Caller, pool: asyncpg.Pool, settings: Settings) -> None:
    """Engine a killed while it voices a session: b finds it silent (table engines), resumes
    the session on the caller's channel ("one moment", the recording again) and the caller
    finishes it; nothing is left locked."""
    async with aiohttp.ClientSession() as http:
        rec = await _recorder(_Api(http, engines.url("b")), pool, settings)
        s = await start_session(rec, ["Taken over"])
        b = engines.procs["b"]
        b.send_signal(signal.SIGSTOP)  # the call goes to a: b cannot claim it meanwhile
        try:
            leg = await caller.dial(rec.number, caller_id="5557770102")
        finally:
            b.send_signal(signal.SIGCONT)
        assert await _engine_of(pool, leg) == f"{engines.app}.a"
        await leg.press(s["pin"] + "#")
        assert await _until_state(rec.vr, s["session_key"], {"recording"}) == "recording"
        killed = time.monotonic()
        await engines.stop("a", signal.SIGKILL)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while await _engine_of(pool, leg) != f"{engines.app}.b":
                assert loop.time() < deadline, "engine b never took the call over"
                await asyncio.sleep(0.2)
            took = time.monotonic() - killed
            assert await _until_state(rec.vr, s["session_key"], {"recording"}) == "recording"
            await asyncio.sleep(1.0)  # "one moment", the recording's name, the beep
            await leg.say(SHORT)
            await leg.press("#")
            await asyncio.sleep(1.0)
            await leg.press("9")
            assert await leg.wait_hangup(20)
            await _until_state(rec.vr, s["session_key"], {"ended"})
            (only,) = (await recordings_of(rec, s["list_key"])).values()
            assert only["recording_state"] == "recorded", only
            print(f"engine a killed mid-take: b resumed the session after {took:.1f}s "
                  f"(engines silent for {STALE:.0f}s are dead); take saved")
        finally:
            await engines.start("a")


async def test_call_control_on_the_other_engine_is_passed_on(
        engines: Pool, caller: Caller, pool: asyncpg.Pool) -> None:
    """A call-control call runs on one engine; the application accepts it and hangs it up
    through the other engine's API, which passes each request on (table engines: its URL)."""
    hooks = Webhooks()
    async with serving(hooks, "/hook") as base, aiohttp.ClientSession() as http:
        made = await CallControl(pool, allow_private_urls=True).create_application(
            webhook_url=f"{base}/hook", numbers=[number := fresh_number("737")])
        hooks.secrets.append(made.webhook_secret)
        auth = basic_auth(made.app_id, made.app_key)
        dialing = asyncio.create_task(caller.dial(number, caller_id="5557770103"))
        vid = (await hooks.wait_first_for_number(number))["voice_id"]
        running = await pool.fetchval(
            "SELECT c.engine FROM cc_calls v JOIN calls c ON c.channel_id = v.channel_id"
            " WHERE v.voice_id = $1", uuid.UUID(vid))
        other = "b" if running == f"{engines.app}.a" else "a"
        async with http.post(f"{engines.url(other)}/voice/v1/call/{vid}/accept",
                             headers=auth) as resp:
            assert resp.status == 200, await resp.text()
        leg = await dialing
        await hooks.wait(vid, "connected")
        async with http.delete(f"{engines.url(other)}/voice/v1/call/{vid}",
                               headers=auth) as resp:
            body = await resp.json()
            assert (resp.status, body["state"]) == (200, "success"), body
        assert (await hooks.wait(vid, "disconnected"))["cause"] == "hangup requested"
        assert await leg.wait_hangup(10)
        assert hooks.bad_signatures == 0
        print(f"call-control call on {running}: accept and hang-up sent to engine {other}, "
              "passed on")
