"""ARI over TLS against the real Asterisk, and the address settings as Asterisk reads them.

A second Asterisk runs from the project's root beside the shared one (its own folders and
ports: `AsteriskConfig.instance`), configured from settings that differ from every default: SIP
on 127.0.0.2 and another port, NAT addresses, local networks, an RTP range, ARI's plain listener
on another port and a TLS listener with a certificate signed by a CA made here (openssl). The
engine's own ARI sessions (ivr/telephony/ari_tls.py, as app.py builds them) must trust it by
the CA or by the pinned fingerprint, and refuse it with a clear error otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from ivr.cli import asterisk_config
from ivr.console.phone_service import ConsolePhone, ws_url
from ivr.core.errors import IvrError, TelephonyError, Unavailable
from ivr.provision import asterisk as provision
from ivr.settings import Settings
from ivr.telephony import webrtc
from ivr.telephony.ari_tls import ari_connector
from ivr.telephony.events import Event, EventStream
from ivr.telephony.rest import AriClient, basic_auth
from tests.helpers.sipws import options_status


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path  # signed nothing we serve
    cert: Path
    key: Path
    sha256: str  # the certificate's fingerprint, as openssl prints it (colons)


def _openssl(*args: str, cwd: Path) -> str:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)}: {done.stderr}", pytrace=False)
    return done.stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
                 f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=ivr test {name}", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ari.key", "-out", "ari.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "ari.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "ari.crt", cwd=d)
    printed = _openssl("x509", "-in", "ari.crt", "-noout", "-fingerprint", "-sha256", cwd=d)
    return Pki(d / "ca.crt", d / "other-ca.crt", d / "ari.crt", d / "ari.key",
               printed.strip().split("=", 1)[1])


def _free(kind: int, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsAsterisk:
    env: dict[str, str]  # the IVR_* settings it was provisioned from
    cfg: provision.AsteriskConfig

    def settings(self, **override: str) -> Settings:
        return Settings.from_mapping({**self.env, **override})


@pytest.fixture(scope="module")
def tls_asterisk(base_settings: Settings, asterisk: object, pki: Pki) -> Iterator[TlsAsterisk]:
    """The second Asterisk, started for this module and removed after it."""
    plain, tls = _free(socket.SOCK_STREAM), _free(socket.SOCK_STREAM)
    env = {
        "IVR_ASTERISK_ROOT": str(base_settings.asterisk_root),
        "IVR_ARI_USER": base_settings.ari_user,
        "IVR_ARI_PASSWORD": secrets.token_urlsafe(18),
        "IVR_SOFTPHONE_USER": base_settings.softphone_user,
        "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12),
        "IVR_ARI_URL": f"https://127.0.0.1:{tls}",
        "IVR_ARI_BIND": f"127.0.0.1:{plain}",
        "IVR_ARI_TLS_BIND": f"127.0.0.1:{tls}",
        "IVR_ARI_TLS_CERT": str(pki.cert),
        "IVR_ARI_TLS_KEY": str(pki.key),
        "IVR_ARI_CA_FILE": str(pki.ca),
        "IVR_SIP_BIND": "127.0.0.2",
        "IVR_SIP_PORT": str(_free(socket.SOCK_DGRAM, "127.0.0.2")),
        "IVR_SIP_EXTERNAL_ADDRESS": "203.0.113.5",
        "IVR_RTP_EXTERNAL_ADDRESS": "203.0.113.6",
        "IVR_LOCAL_NET": "10.0.0.0/8,192.168.0.0/16",
        "IVR_RTP_PORTS": "31000-31100",
    }
    cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)),
                              instance=f"tls{os.getpid()}")
    try:
        provision.up(cfg, timeout=90, progress=lambda line: print(f"[tls asterisk] {line}"))
    except IvrError as exc:  # a real part that cannot start fails the test, never skips it
        provision.down(cfg, progress=lambda line: None, purge=True)
        pytest.fail(f"the TLS Asterisk could not be provisioned: {exc.message}", pytrace=False)
    try:
        yield TlsAsterisk(env, cfg)
    finally:
        provision.down(cfg, progress=lambda line: None, purge=True)


def test_asterisk_runs_the_address_settings(tls_asterisk: TlsAsterisk) -> None:
    cfg, env = tls_asterisk.cfg, tls_asterisk.env
    transport = provision.cli(cfg, "pjsip show transport transport-udp")
    assert f"127.0.0.2:{env['IVR_SIP_PORT']}" in transport
    for line in ("external_signaling_address  : 203.0.113.5",
                 "external_media_address      : 203.0.113.6",
                 "local_net                   : 10.0.0.0/255.0.0.0",
                 "local_net                   : 192.168.0.0/255.255.0.0"):
        assert line in transport
    rtp = provision.cli(cfg, "rtp show settings")
    assert "Port start:      31000" in rtp and "Port end:        31100" in rtp
    http = provision.cli(cfg, "http show status")
    assert f"Server Enabled and Bound to {env['IVR_ARI_BIND']}" in http
    assert f"HTTPS Server Enabled and Bound to {env['IVR_ARI_TLS_BIND']}" in http
    assert f"contact              : sip:127.0.0.2:{env['IVR_SIP_PORT']}" in provision.cli(
        cfg, "pjsip show aor ivr-loopback")
    # The loopback trunk is known by this Asterisk's own SIP address and port only.
    identify = provision.cli(cfg, "pjsip show identify ivr-loopback")
    assert f"Match: 127.0.0.2:{env['IVR_SIP_PORT']}/32" in identify, identify
    # The shared Asterisk kept its own configuration.
    shared = dataclasses.replace(cfg, instance="")
    assert "127.0.0.2" not in provision.cli(shared, "pjsip show transport transport-udp")


@contextlib.asynccontextmanager
async def ari_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """An ARI session as the engine builds it (app.py), on these settings."""
    async with aiohttp.ClientSession(
        headers=basic_auth(settings.ari_user, settings.ari_password),
        connector=ari_connector(settings, limit=10),
        timeout=aiohttp.ClientTimeout(total=10, connect=5),
    ) as session:
        yield session


async def _events_arrive(settings: Settings) -> None:
    """REST over https and events over wss: a channel placed into our app shows up."""
    assert settings.ari_url.startswith("https://")
    assert settings.ari_ws_url.startswith("wss://")
    app = f"ivr-tls-test-{os.getpid()}"
    got: asyncio.Queue[Event] = asyncio.Queue()
    async with ari_session(settings) as session:
        ari = AriClient(session, settings.ari_url)
        assert "system" in await ari.asterisk_info()
        stream = EventStream(session, settings.ari_ws_url, [app], got.put_nowait)
        stream.start()
        try:
            await stream.wait_connected(10)
            channel = f"tls-{secrets.token_hex(4)}"
            await ari.create_channel(channel, "Local/1000@ivr-app-direct", app=app)
            try:
                while True:
                    event = await asyncio.wait_for(got.get(), 10)
                    if event.get("type") == "StasisStart":
                        assert event["channel"]["id"] == channel
                        break
            finally:
                await ari.hangup(channel)
        finally:
            await stream.stop()


async def test_the_engine_trusts_ari_by_its_ca(tls_asterisk: TlsAsterisk) -> None:
    await _events_arrive(tls_asterisk.settings())


async def test_the_engine_trusts_ari_by_a_pinned_fingerprint(tls_asterisk: TlsAsterisk,
                                                            pki: Pki) -> None:
    await _events_arrive(tls_asterisk.settings(IVR_ARI_CA_FILE="",
                                               IVR_ARI_CERT_SHA256=pki.sha256))


@pytest.mark.parametrize(
    ("trust", "named"),
    [("ca", "IVR_ARI_CA_FILE"), ("pin", "IVR_ARI_CERT_SHA256"), ("system", "IVR_ARI_CA_FILE")],
)
async def test_an_untrusted_certificate_is_refused_clearly(
        tls_asterisk: TlsAsterisk, pki: Pki, trust: str, named: str) -> None:
    override = {
        "ca": {"IVR_ARI_CA_FILE": str(pki.other_ca)},
        # The right certificate's fingerprint with one digit changed.
        "pin": {"IVR_ARI_CA_FILE": "",
                "IVR_ARI_CERT_SHA256": ("0" if pki.sha256[0] != "0" else "1") + pki.sha256[1:]},
        "system": {"IVR_ARI_CA_FILE": ""},  # the system's CAs never signed ours
    }[trust]
    settings = tls_asterisk.settings(**override)
    async with ari_session(settings) as session:
        ari = AriClient(session, settings.ari_url)
        with pytest.raises(TelephonyError, match=named) as refused:
            await ari.asterisk_info()
        assert "certificate" in refused.value.message
        stream = EventStream(session, settings.ari_ws_url, ["ivr-tls-refused"],
                             lambda event: None, max_backoff=0.5)
        stream.start()
        try:
            for _ in range(100):
                if stream.last_error:
                    break
                await asyncio.sleep(0.05)
            assert not stream.connected
            assert ("Certificate" in stream.last_error
                    or "Fingerprint" in stream.last_error), stream.last_error
        finally:
            await stream.stop()


async def test_browsers_reach_sip_over_wss_on_the_tls_listener(
        tls_asterisk: TlsAsterisk, pki: Pki) -> None:
    """The console phone behind an https console: its SIP goes over wss:// to ARI's TLS
    listener, where a pushed WebRTC account is let in with its password and refused without."""
    settings = tls_asterisk.settings(IVR_PUBLIC_URL="https://127.0.0.1:8443")
    url = ws_url(settings)
    assert url == f"wss://127.0.0.1:{settings.network.ari_tls_bind[1]}/ws"
    trusted = ssl.create_default_context(cafile=str(pki.ca))
    account = webrtc.WebRtcAccount(f"{webrtc.PREFIX}{secrets.token_hex(8)}",
                                   secrets.token_urlsafe(18), "tls test")
    async with ari_session(settings) as session:
        ari = AriClient(session, settings.ari_url)
        await webrtc.push(ari, account, settings.network.rtp_address)
        try:
            assert await options_status(url, account.name, account.password,
                                        ssl_context=trusted) == 200
            assert await options_status(url, account.name, "wrong-password",
                                        ssl_context=trusted) == 401
        finally:
            await webrtc.remove(ari, account.name)
        assert await options_status(url, account.name, account.password,
                                    ssl_context=trusted) == 401
    # An https console whose Asterisk has no TLS listener gets no phone, and is told why.
    plain = Settings.from_mapping({**{k: v for k, v in tls_asterisk.env.items()
                                      if not k.startswith("IVR_ARI_TLS") and k not in (
                                          "IVR_ARI_CA_FILE", "IVR_ARI_URL")},
                                   "IVR_PUBLIC_URL": "https://127.0.0.1:8443"})
    with pytest.raises(Unavailable, match="TLS listener"):
        await ConsolePhone(None, None, plain).issue(None)  # type: ignore[arg-type]
