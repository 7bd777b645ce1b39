"""A carrier trunk across network namespaces (issue #19 item 5): three "hosts" on this machine.

- `carrier`: a second Asterisk from the project's root acting as the carrier: a registrar that
  demands digest auth from our account, and the caller that dials our DID.
- `media`: the project's Asterisk (another instance, provisioned as `ivr asterisk up --role
  media` does), SIP and RTP on its private address toward the carrier, ARI on another address
  toward the engine; our trunk is added the way `ivr trunk add` adds it (the generated pjsip
  file and a reload).
- the engine, in the root namespace: it drives the media Asterisk over ARI across a veth pair
  and serves prompts over IVR_PUBLIC_URL on its own address; takes come back over ARI only.

Through that a caller at the carrier dials our recorder's number in its national form: the trunk
registers, the call crosses the namespaces into the recorder flow, the caller keys the PIN and
records a take that is saved, and the SDP each side sent carries the namespace addresses (a
trunk change mid-call keeps the call). Unknown DIDs (with a 00 prefix, in the To header) are
answered "not in service"; /healthz and /metrics report the trunk; a call out by the trunk
passes the carrier's challenge with our caller id, and so does a call-control application's
call given that trunk; the carrier cut off shows as the trunk offline (that application's call
out then fails at once, cause "trunk down" in its webhook), and back online; a restarted
carrier still reaches us, and a restarted media Asterisk keeps its trunk. Namespaces and both
Asterisks are set up once for the module (about 45 s in all) and removed after it; a part that
cannot start fails the test."""

from __future__ import annotations

import asyncio
import audioop
import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ivr.app import CALLCONTROL, TELEPHONY, Telephony, create_app
from ivr.callcontrol.errors import TrunkDown
from ivr.callcontrol.live import LiveCall
from ivr.callcontrol.models import Application, Destination, OutboundRequest
from ivr.cli import asterisk_config
from ivr.core.errors import InvalidParameter, IvrError
from ivr.provision import asterisk as provision
from ivr.provision.trunks import apply
from ivr.provision.trunks import store as trunks
from ivr.provision.trunks.model import Trunk, build
from ivr.settings import REPO_ROOT, Network, Settings
from tests.callcontrol.conftest import Webhooks
from tests.helpers.netns import Net, asterisk_up, free_subnet, invite, ip
from tests.phone.conftest import recordings_of, start_session
from tests.phone.test_api_initiated import audio
from tests.receiver import serving
from tests.recorder.conftest import fresh_number
from tests.telephony_harness import Caller, calls_from, wav_seconds

pytestmark = pytest.mark.asterisk

ACCOUNT = "ivr-acme"  # our account at the carrier
# /healthz's details and /metrics off loopback (the test reads them across the media link).
METRICS_TOKEN = secrets.token_urlsafe(24)
MONITOR = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass
class Site:
    net: Net
    octets: str  # 10.A.B: the three /30 links are .0, .4, .8
    carrier_cfg: provision.AsteriskConfig
    media_cfg: provision.AsteriskConfig
    carrier_env: dict[str, str]
    media_env: dict[str, str]
    trunk: Trunk  # ours, as `ivr trunk add` stores it

    @property
    def network(self) -> Network:
        return Settings.from_mapping(self.media_env).network

    def addr(self, host: int) -> str:
        return f"{self.octets}.{host}"

    @property
    def carrier_sip(self) -> str:
        return self.addr(9)

    @property
    def media_sip(self) -> str:
        return self.addr(10)


CARRIER_PJSIP = """\
[global]
type = global
user_agent = test-carrier
endpoint_identifier_order = username,auth_username,ip

[transport-udp]
type = transport
protocol = udp
bind = {sip}:5060

; The customer account our trunk registers as: digest auth on every request, the account
; known by the From user (REGISTER) or by the digest's user (a call whose From is a caller id).
[{account}]
type = endpoint
identify_by = username,auth_username
transport = transport-udp
context = carrier-from-customer
allow = !all,ulaw
auth = {account}
aors = {account}
direct_media = no
rtp_symmetric = yes
media_address = {sip}
bind_rtp_to_media_address = yes
dtmf_mode = rfc4733

[{account}]
type = auth
auth_type = userpass
username = {account}
password = {password}

[{account}]
type = aor
max_contacts = 1
remove_existing = yes
"""

CARRIER_DIALPLAN = """\
; A caller at the carrier: Local/NUMBER@ivr-inbound dials the customer's registered contact.
[ivr-inbound]
exten => _X.,1,Dial(PJSIP/${{EXTEN}}@{account},20)
 same => n,Hangup()

; Calls from the customer (our trunk, digest-authenticated): remember who and what they dialled.
[carrier-from-customer]
exten => _X.,1,Set(GLOBAL(LAST_DIALLED)=${{EXTEN}})
 same => n,Goto(carrier-answer,s,1)
exten => _+X.,1,Set(GLOBAL(LAST_DIALLED)=${{EXTEN}})
 same => n,Goto(carrier-answer,s,1)

[carrier-answer]
exten => s,1,Set(GLOBAL(LAST_FROM)=${{CALLERID(num)}})
 same => n,Answer()
 same => n,Wait(30)
"""


def _carrier_conf(folder: Path, sip: str, password: str) -> tuple[Path, Path]:
    conf, dialplan = folder / "conf", folder / "dialplan"
    shutil.copytree(REPO_ROOT / "asterisk-conf", conf)
    (conf / "pjsip.conf").write_text(CARRIER_PJSIP.format(sip=sip, account=ACCOUNT,
                                                         password=password))
    dialplan.mkdir()
    (dialplan / "carrier.conf").write_text(CARRIER_DIALPLAN.format(account=ACCOUNT))
    return conf, dialplan


def _env(base: Settings, **extra: str) -> dict[str, str]:
    return {"IVR_ASTERISK_ROOT": str(base.asterisk_root), "IVR_ARI_USER": "ivr",
            "IVR_ARI_PASSWORD": secrets.token_urlsafe(18),
            "IVR_SOFTPHONE_USER": "softphone",
            "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12), **extra}


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # Only the root is shared with the project's own Asterisk, which this module never uses.
    provision.build_root(asterisk_config(base_settings),
                         progress=lambda line: print(f"[asterisk] {line}"))
    pid = os.getpid()
    net = Net(f"{pid % 100000}")
    started: list[provision.AsteriskConfig] = []
    try:
        octets = free_subnet(pid)
        media, carrier = net.namespace("media"), net.namespace("carrier")
        net.link(None, f"{octets}.1", media, f"{octets}.2")  # engine <-> media (ARI, prompts)
        net.link(None, f"{octets}.5", carrier, f"{octets}.6")  # test <-> carrier (its ARI)
        net.link(carrier, f"{octets}.9", media, f"{octets}.10")  # carrier <-> media (SIP, RTP)
        http_port = _free_port(f"{octets}.1")  # the engine's, on its end of the media link
        carrier_env = _env(base_settings, IVR_ARI_URL=f"http://{octets}.6:8088",
                           IVR_ARI_BIND=f"{octets}.6:8088", IVR_SIP_BIND=f"{octets}.9",
                           IVR_RTP_ADDRESS=f"{octets}.9", IVR_ARI_APP="carrier")
        media_env = _env(base_settings, IVR_ARI_URL=f"http://{octets}.2:8088",
                         IVR_ARI_BIND=f"{octets}.2:8088", IVR_SIP_BIND=f"{octets}.10",
                         IVR_RTP_ADDRESS=f"{octets}.10", IVR_ARI_APP=f"ivr-netns-{pid}",
                         IVR_PUBLIC_URL=f"http://{octets}.1:{http_port}",
                         IVR_HTTP_PORT=str(http_port))
        conf, dialplan = _carrier_conf(tmp_path_factory.mktemp("carrier"), f"{octets}.9",
                                       password := secrets.token_urlsafe(12))
        carrier_cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(carrier_env)),
                                          instance=f"carrier{pid}", conf_dir=conf,
                                          dialplan_dir=dialplan)
        media_cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(media_env)),
                                        instance=f"media{pid}", media_host=True)
        trunk = build("acme", f"{octets}.9", username=ACCOUNT, password=password)
        made = Site(net, octets, carrier_cfg, media_cfg, carrier_env, media_env, trunk)
        started.append(carrier_cfg)
        asterisk_up(carrier, carrier_env, instance=carrier_cfg.instance, conf_dir=str(conf),
                    dialplan_dir=str(dialplan))
        started.append(media_cfg)
        asterisk_up(media, media_env, instance=media_cfg.instance, media_host=True)
        # Every SIP message the carrier sends or receives, SDP included, into its sip.log.
        for command in ("logger add channel sip.log verbose", "pjsip set logger on"):
            provision.cli(carrier_cfg, command)
        apply.apply(media_cfg, [trunk], made.network)
    except Exception as exc:  # a real part that cannot start fails the test, never skips it
        _tear_down(net, started)
        pytest.fail(f"the namespaces could not be set up: {exc}", pytrace=False)
    try:
        yield made
    finally:
        _tear_down(net, started)


def _tear_down(net: Net, started: list[provision.AsteriskConfig]) -> None:
    for cfg in reversed(started):
        provision.down(cfg, progress=lambda line: None, purge=True)
    net.close()


@pytest.fixture(scope="module")
async def netns_app(site: Site, settings: Settings) -> AsyncIterator[web.Application]:
    """The engine, on the root namespace's end of the media link: ARI over it, prompts served
    on it, and an Asterisk root it cannot read (no shared file system: takes come over ARI)."""
    env = site.media_env
    ours = dataclasses.replace(
        settings, ari_url=env["IVR_ARI_URL"], ari_user=env["IVR_ARI_USER"],
        ari_password=env["IVR_ARI_PASSWORD"], ari_app=env["IVR_ARI_APP"],
        public_url=env["IVR_PUBLIC_URL"], http_port=int(env["IVR_HTTP_PORT"]),
        asterisk_root=Path("/nonexistent/remote-asterisk"), dialer_enabled=False,
        security=dataclasses.replace(settings.security, metrics_token=METRICS_TOKEN))
    app = create_app(ours)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, site.addr(1), ours.http_port).start()
    try:
        await app[TELEPHONY].events.wait_connected(10)
        yield app
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def netns_engine(netns_app: web.Application) -> Telephony:
    return netns_app[TELEPHONY]


@pytest.fixture(scope="module")
async def voice_app(netns_app: web.Application, site: Site, pool: asyncpg.Pool
                    ) -> AsyncIterator[tuple[Application, Webhooks]]:
    """A call-control application whose calls leave by trunk acme, and its webhook receiver."""
    with contextlib.suppress(InvalidParameter):  # the trunk, as `ivr trunk add` stores it
        await trunks.add(pool, site.trunk)
    hooks = Webhooks()
    async with serving(hooks, "/hook") as base:
        control = netns_app[CALLCONTROL]
        made = await control.create_application(
            webhook_url=f"{base}/hook", numbers=[fresh_number("737")], trunk="acme")
        hooks.secrets.append(made.webhook_secret)
        yield await control.authenticate(made.app_id, made.app_key), hooks


async def _call_out(netns_app: web.Application, app: Application, to: str) -> LiveCall:
    return await netns_app[CALLCONTROL].originate(app, OutboundRequest(
        from_number=app.numbers[0], to=Destination(to, is_sip=False), name=None,
        owner_ref=None, event_url=None, action_on_connect=None, timeout=15))


@pytest.fixture(scope="module")
async def carrier_caller(site: Site) -> AsyncIterator[Caller]:
    """Calls placed at the carrier (its ARI, across the test link), with tests/data served to
    it from this end of that link."""
    env = site.carrier_env
    url = env["IVR_ARI_URL"]
    async with calls_from(url, env["IVR_ARI_USER"], env["IVR_ARI_PASSWORD"],
                          url.replace("http", "ws", 1) + "/ari/events",
                          site.addr(5)) as harness:
        yield harness


async def _until(check: Any, what: str, timeout: float = 20) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f}s")


async def _registered(site: Site) -> apply.TrunkState | None:
    trunk = build("acme", site.carrier_sip, username=ACCOUNT, password="x")
    state = (await asyncio.to_thread(apply.states, site.media_cfg, [trunk]))["acme"]
    return state if state.registration == "Registered" else None


async def test_the_trunk_registers_with_digest_auth(site: Site) -> None:
    await _until(lambda: _registered(site), "our trunk did not register")
    # A new AOR's first OPTIONS comes at a random moment within its qualify period: ask now.
    await asyncio.to_thread(provision.cli, site.media_cfg, "pjsip qualify trunk-acme")

    async def reachable() -> apply.TrunkState | None:
        state = await _registered(site)
        return state if state and state.up else None

    state = await _until(reachable, "the carrier did not answer our OPTIONS")
    assert state.reachable.startswith("Avail"), state


async def test_the_engine_reports_the_trunk_over_ari(site: Site, netns_engine: Telephony) -> None:
    """/healthz and /metrics, from ARI's endpoint state: right for an Asterisk elsewhere."""
    await asyncio.to_thread(provision.cli, site.media_cfg, "pjsip qualify trunk-acme")
    base = site.media_env["IVR_PUBLIC_URL"]
    async with aiohttp.ClientSession(headers=MONITOR) as http:
        async def online() -> dict[str, Any] | None:
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
            return body if body.get("trunks", {}).get("states") == {"acme": "online"} else None

        body = await _until(online, "/healthz did not report the trunk online")
        assert body["status"] == "ok" and body["trunks"]["down"] == []
        async with http.get(f"{base}/metrics") as resp:
            assert 'ivr_trunk_up{trunk="acme"} 1' in await resp.text()
    # The carrier sees our contact at the media namespace's address.
    contacts = await asyncio.to_thread(provision.cli, site.carrier_cfg, "pjsip show contacts")
    assert f"{ACCOUNT}/sip:{ACCOUNT}@{site.media_sip}:5060" in contacts, contacts


async def test_a_carrier_call_reaches_the_recorder_across_namespaces(
    site: Site, netns_engine: Telephony, carrier_caller: Caller, make_recorder: Any,
    api: TestClient, pool: asyncpg.Pool,
) -> None:
    await _until(lambda: _registered(site), "our trunk did not register")
    rec = await make_recorder()
    s = await start_session(rec, [None])
    national = rec.number.removeprefix("+1")  # as many US carriers send it
    leg = await carrier_caller.dial(national, caller_id="+15557770002")
    await leg.press(s["pin"] + "#")

    async def recording() -> bool:
        return any(c.live_recording for c in netns_engine.runner.calls.values())

    await _until(recording, "the engine did not start recording the carrier's caller")
    # A trunk change mid-call is a pjsip reload: this call goes on. The new trunks bring the
    # TCP and TLS listeners with them.
    more = [site.trunk, build("backup", site.carrier_sip, transport="tcp"),
            build("secure", site.carrier_sip, transport="tls")]
    done = await asyncio.to_thread(apply.apply, site.media_cfg, more, site.network)
    assert done.reloaded
    await leg.say("speech-fox.wav")
    await leg.press("#")
    await asyncio.sleep(1.0)
    await leg.press("9")  # done: keep the take, end the session
    assert await leg.wait_hangup(20), "the engine hangs up after goodbye"

    r = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert r["recording_state"] == "recorded", r
    wav = await audio(api, r["wav_url"])
    assert 3.5 < wav_seconds(wav) < 5.5, wav_seconds(wav)
    assert audioop.rms(wav[44:], 2) > 200, "the take holds the caller's speech"
    assert r["caller_id"] == "+15557770002", "the carrier's caller id came through"
    row = await pool.fetchrow("SELECT dialed, flow FROM calls WHERE caller_id = $1",
                              "+15557770002")
    assert row is not None and (row["dialed"], row["flow"]) == (national, "recorder"), row
    # Both SDPs name the namespace addresses (pjsip's logger, in the carrier's verbose log).
    sdp = _sip_log(site)
    assert f"c=IN IP4 {site.carrier_sip}" in sdp, "the carrier's offer"
    assert f"c=IN IP4 {site.media_sip}" in sdp, "our answer"
    assert "127.0.0.1" not in "".join(re.findall(r"c=IN IP4 \S+", sdp))
    transports = await asyncio.to_thread(provision.cli, site.media_cfg, "pjsip show transports")
    assert f"transport-tcp             tcp      0      0  {site.media_sip}:5060" in transports
    assert f"transport-tls             tls      0      0  {site.media_sip}:5061" in transports
    await asyncio.to_thread(apply.apply, site.media_cfg, [site.trunk], site.network)
    # The listeners go with the last trunk that used them (docs/deploy.md says so).
    transports = await asyncio.to_thread(provision.cli, site.media_cfg, "pjsip show transports")
    assert "transport-tcp" not in transports and "transport-tls" not in transports
    assert await _registered(site), "the trunk left in place stays registered"


def _sip_log(site: Site) -> str:
    path = site.carrier_cfg.root / site.carrier_cfg.dirs["log"] / "sip.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def test_unknown_dids_are_not_in_service(
    site: Site, netns_engine: Telephony, carrier_caller: Caller, pool: asyncpg.Pool,
) -> None:
    """Two at once, the trunk in `--did-from to` mode (for carriers that send every call to
    the registered contact): a raw INVITE whose Request-URI names our account and whose To
    names the number, and the carrier's own call dialled with an international prefix (its To
    is its Request-URI), which the trunk dialplan makes +15125550199."""
    await _until(lambda: _registered(site), "our trunk did not register")
    await asyncio.to_thread(apply.apply, site.media_cfg,
                            [dataclasses.replace(site.trunk, did_from="to")], site.network)

    async def carrier_call() -> bool:
        leg = await carrier_caller.dial("0015125550199", caller_id="+15557770003")
        return await leg.wait_hangup(20)

    try:
        status, hung_up = await asyncio.gather(
            asyncio.to_thread(invite, site.net.namespaces[1], site.carrier_sip, site.media_sip,
                              ACCOUNT, "+15125550198"),
            carrier_call())
    finally:
        await asyncio.to_thread(apply.apply, site.media_cfg, [site.trunk], site.network)
    assert status == "SIP/2.0 200 OK; hung up by the far end", status
    assert hung_up, "not in service ends the call"
    rows = await pool.fetch("SELECT caller_id, dialed, flow FROM calls WHERE caller_id = ANY($1)",
                            ["+15557770003", "+15557770004"])
    assert sorted((r["caller_id"], r["dialed"], r["flow"]) for r in rows) == [
        ("+15557770003", "+15125550199", "not-in-service"),
        ("+15557770004", "+15125550198", "not-in-service")]


async def test_a_call_out_by_the_trunk(site: Site, netns_engine: Telephony) -> None:
    """`PJSIP/NUMBER@trunk-acme` (what the dialer dials with IVR_DIALER_TRUNK=trunk-acme)
    leaves by the carrier: its INVITE answers the carrier's digest challenge, and the caller id
    asked for is the From the carrier sees."""
    channel = f"out-{secrets.token_hex(4)}"
    # Once answered the channel runs ivr-after-stasis (a hang-up): nothing else needs it.
    await netns_engine.ari.originate(channel, "PJSIP/+15125550123@trunk-acme",
                                     context="ivr-after-stasis", extension="s", priority=1,
                                     caller_id="+15557770006", timeout=15)

    async def seen() -> str | None:
        shown = await asyncio.to_thread(provision.cli, site.carrier_cfg, "dialplan show globals")
        return shown if "LAST_FROM=+15557770006" in shown else None

    shown = await _until(seen, "the carrier did not get our call")
    assert "LAST_DIALLED=+15125550123" in shown, shown


async def test_call_control_leaves_by_the_applications_trunk(
    site: Site, netns_app: web.Application, voice_app: tuple[Application, Webhooks],
) -> None:
    """An application given trunk acme: its outbound call leaves by the carrier, with the
    application's number as the caller id."""
    app, _ = voice_app
    live = await _call_out(netns_app, app, "+15125550124")

    async def seen() -> str | None:
        shown = await asyncio.to_thread(provision.cli, site.carrier_cfg, "dialplan show globals")
        return shown if "LAST_DIALLED=+15125550124" in shown else None

    shown = await _until(seen, "the carrier did not get the call-control call")
    assert f"LAST_FROM={app.numbers[0]}" in shown, shown
    with contextlib.suppress(IvrError):
        await live.hangup()


async def test_the_carrier_goes_away_and_comes_back(
    site: Site, netns_app: web.Application, netns_engine: Telephony, carrier_caller: Caller,
    pool: asyncpg.Pool, voice_app: tuple[Application, Webhooks],
) -> None:
    """The carrier unreachable: the engine reports the trunk down (OPTIONS unanswered), and a
    call-control call out by it fails at once with the cause "trunk down" in its webhook; up
    again once it answers; restarted, it still reaches our DID (it keeps our registration)."""
    base = site.media_env["IVR_PUBLIC_URL"]
    media_end = f"v{site.net.tag}2b"  # the media namespace's end of the SIP link
    media_ns = site.net.namespaces[0]

    async def trunk(state: str) -> bool:
        await asyncio.to_thread(provision.cli, site.media_cfg, "pjsip qualify trunk-acme")
        async with aiohttp.ClientSession(headers=MONITOR) as http, \
                http.get(f"{base}/healthz") as resp:
            body = await resp.json()
        return body.get("trunks", {}).get("states", {}).get("acme") == state

    ip("netns", "exec", media_ns, "ip", "link", "set", media_end, "down")
    try:
        await _until(lambda: trunk("offline"), "/healthz did not report the trunk down")
        app, hooks = voice_app
        with pytest.raises(TrunkDown, match="trunk acme is down"):
            await _call_out(netns_app, app, "+15125550125")

        def ended() -> dict[str, Any] | None:
            return next((e for e in hooks.events if e.get("to") == "+15125550125"
                         and e.get("state") == "disconnected"), None)

        await hooks.wait_until(lambda: ended() is not None, 10,
                               lambda: f"no disconnected event: {hooks.events}")
        assert (ended() or {}).get("cause") == "trunk down", hooks.events
        row = await pool.fetchrow("SELECT state, cause FROM cc_calls WHERE to_number = $1",
                                  "+15125550125")
        assert row is not None and (row["state"], row["cause"]) == ("failed", "trunk down")
    finally:
        ip("netns", "exec", media_ns, "ip", "link", "set", media_end, "up")
    await _until(lambda: trunk("online"), "/healthz did not report the trunk back")

    cfg = site.carrier_cfg
    await asyncio.to_thread(provision.down, cfg, progress=lambda line: None)
    await asyncio.to_thread(asterisk_up, site.net.namespaces[1], site.carrier_env,
                            instance=cfg.instance, conf_dir=str(cfg.conf_dir),
                            dialplan_dir=str(cfg.dialplan_dir))
    await carrier_caller.events.wait_connected(20)
    leg = await carrier_caller.dial("5125550197", caller_id="+15557770005")
    assert await leg.wait_hangup(20)
    row = await pool.fetchrow("SELECT flow FROM calls WHERE caller_id = $1", "+15557770005")
    assert row is not None and row["flow"] == "not-in-service"


async def test_a_restarted_media_asterisk_keeps_its_trunk(
    site: Site, netns_engine: Telephony,
) -> None:
    """`ivr asterisk up` after a stop rewrites the configuration but carries the trunk file
    over: the trunk registers again by itself, and the engine's event socket comes back across
    the link (/healthz ok, the trunk online)."""
    cfg = site.media_cfg
    await asyncio.to_thread(provision.down, cfg, progress=lambda line: None)
    await asyncio.to_thread(asterisk_up, site.net.namespaces[0], site.media_env,
                            instance=cfg.instance, media_host=True)
    await _until(lambda: _registered(site), "our trunk did not register after the restart")
    base = site.media_env["IVR_PUBLIC_URL"]

    async def healthy() -> bool:
        await asyncio.to_thread(provision.cli, cfg, "pjsip qualify trunk-acme")
        async with aiohttp.ClientSession(headers=MONITOR) as http, \
                http.get(f"{base}/healthz") as resp:
            body = await resp.json()
        return (resp.status == 200 and body["ari"]["connected"]
                and body.get("trunks", {}).get("down") == [])

    await _until(healthy, "the engine did not get back to a healthy trunk", timeout=30)
