"""The public SIP edge under attack (issue #20 items 1 and 2), across network namespaces with
the real tools: a project Asterisk (an instance, SIP on every address of its namespace, as on a
host facing the internet) with a carrier trunk known by its address, the softphone account
over TLS with SRTP required, and the project's fail2ban jail with its nftables ban inside that
namespace. Around it:

- `attk1`: enumeration (sipvicious svmap, svwar by REGISTER and INVITE, forced) and bare
  requests claiming the names of trusted endpoints (`ivr-loopback`, `loadgen`): it learns no
  account, and every one of them gets the same 401 a wrong guess gets;
- `attk2`: REGISTER brute force (svcrack, 40 wrong passwords): banned, then no answer at all;
  the ban lifts after its bantime;
- `call`: the carrier (SIPp), whose call still goes through during the ban;
- the root namespace: baresip calling the softphone account over TLS with SRTP (its
  certificate the development one `ivr edge cert` makes); plain RTP is refused.

Set up once for the module (about 15 s); a part that cannot start fails the test."""

from __future__ import annotations

import asyncio
import audioop
import dataclasses
import os
import secrets
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.cli import asterisk_config
from ivr.provision import asterisk as provision
from ivr.provision.trunks import apply
from ivr.provision.trunks.model import build
from ivr.settings import REPO_ROOT, Settings
from ivr.telephony.softphone import Softphone, SoftphoneError
from tests.helpers.netns import Net, asterisk_up, free_subnet
from tests.helpers.sip_edge import jail, request, sipp_call, sv

pytestmark = pytest.mark.asterisk

BANTIME = 20  # seconds: short, so the test sees the ban lift
MAXRETRY = 5
NAMES = ("softphone", "ivr-loopback", "loadgen", "loadgen-out", "trunk-legit", "1000", "admin",
         "100", "200", "asterisk")
DIALPLAN = """\
; The edge test's Asterisk: what is dialled only has to answer.
[ivr-inbound]
exten => 2000,1,Answer()
 same => n,Set(GLOBAL(EDGE_SECURE)=${CHANNEL(pjsip,secure)}/${CHANNEL(rtp,secure)})
 same => n,Echo()
exten => _X.,1,Answer()
 same => n,Wait(10)
 same => n,Hangup()
"""


@dataclass
class Edge:
    octets: str
    cfg: provision.AsteriskConfig
    env: dict[str, str]
    ns: dict[str, str]  # role -> namespace

    def addr(self, host: int) -> str:
        return f"{self.octets}.{host}"


@pytest.fixture(scope="module")
def edge(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    provision.build_root(asterisk_config(base_settings), progress=lambda line: None)
    pid = os.getpid()
    net = Net(f"e{pid % 100000}")
    cfg: provision.AsteriskConfig | None = None
    try:
        octets = free_subnet(pid + 7)
        ns = {role: net.namespace(role) for role in ("edge", "attk1", "call", "attk2")}
        net.link(None, f"{octets}.1", ns["edge"], f"{octets}.2")  # baresip <-> edge
        net.link(ns["attk1"], f"{octets}.5", ns["edge"], f"{octets}.6")
        net.link(ns["call"], f"{octets}.9", ns["edge"], f"{octets}.10")
        net.link(ns["attk2"], f"{octets}.13", ns["edge"], f"{octets}.14")
        dialplan = tmp_path_factory.mktemp("edge-dialplan")
        shutil.copytree(REPO_ROOT / "dialplan", dialplan, dirs_exist_ok=True)
        (dialplan / "ivr-inbound.conf").write_text(DIALPLAN)
        env = {"IVR_ASTERISK_ROOT": str(base_settings.asterisk_root), "IVR_ARI_USER": "ivr",
               "IVR_ARI_PASSWORD": secrets.token_urlsafe(18), "IVR_ARI_APP": "edge",
               "IVR_SOFTPHONE_USER": "softphone",
               "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(18), "IVR_SIP_BIND": "0.0.0.0",
               "IVR_RTP_ADDRESS": f"{octets}.2", "IVR_SIP_TLS": "true",
               "IVR_SIP_SRTP": "required"}
        cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)),
                                  instance=f"edge{pid}", dialplan_dir=dialplan)
        asterisk_up(ns["edge"], env, instance=cfg.instance, dialplan_dir=str(dialplan))
        # The carrier: known by its address alone, as `ivr trunk add legit --host ...` makes it.
        apply.apply(cfg, [build("legit", f"{octets}.9")], Settings.from_mapping(env).network)
        made = Edge(octets, cfg, env, ns)
    except Exception as exc:  # a real part that cannot start fails the test, never skips it
        _tear_down(net, cfg)
        pytest.fail(f"the edge could not be set up: {exc}", pytrace=False)
    try:
        yield made
    finally:
        _tear_down(net, cfg)


def _tear_down(net: Net, cfg: provision.AsteriskConfig | None) -> None:
    if cfg is not None:
        provision.down(cfg, progress=lambda line: None, purge=True)
        # The instance's jail folder and development certificate, beside the root.
        for folder in (cfg.state_dir / f"fail2ban-{cfg.instance}", cfg.dev_cert[0].parent):
            shutil.rmtree(folder, ignore_errors=True)
    net.close()  # the namespaces go, and with them any nftables table left in them


def test_an_outsider_learns_no_account_and_names_let_nothing_in(edge: Edge) -> None:
    target = edge.addr(6)
    users = _wordlist("users", list(NAMES))
    try:
        assert "ivr-asterisk" in sv(edge.ns["attk1"], "svmap", target)  # the port answers
        for extra in ([], ["--force"], ["-m", "INVITE", "--force"]):
            found = sv(edge.ns["attk1"], "svwar", "-d", str(users), *extra, target)
            assert "found nothing" in found, found
            assert not any(f"| {name} " in found for name in NAMES), found
    finally:
        users.unlink(missing_ok=True)
    # Claiming a trusted endpoint's name (the INVITE that was answered as `loadgen` before
    # issue #20), a real account or none: the same challenge, never a call.
    answers = {user: request(edge.ns["attk1"], edge.addr(5), target, user)
               for user in ("loadgen", "ivr-loopback", "softphone", "nobody-here")}
    assert set(answers.values()) == {"SIP/2.0 401 Unauthorized"}, answers


def _wordlist(kind: str, words: list[str]) -> Path:
    path = Path(f"/tmp/edge-{kind}-{os.getpid()}.txt")
    path.write_text("\n".join(words) + "\n")
    return path


def _banned(edge: Edge) -> list[str]:
    return list(jail(edge.ns["edge"], edge.env, edge.cfg.instance, "banned",
                     **_jail_edge()))


def _jail_edge() -> dict[str, object]:
    return {"ban": True, "ban_maxretry": MAXRETRY, "ban_findtime": 60, "ban_bantime": BANTIME,
            "ban_ignore": ["127.0.0.0/8"]}


def _nft(ns: str | None) -> str:
    run = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*run, "nft", "list", "ruleset"], capture_output=True,
                          text=True).stdout


async def test_register_brute_force_is_banned_and_the_carrier_still_calls_in(
        edge: Edge) -> None:
    attacker, target = edge.ns["attk2"], edge.addr(14)
    passwords = _wordlist("pw", [f"guess{i}-{secrets.token_hex(3)}" for i in range(40)])
    host_rules = _nft(None)
    up = jail(edge.ns["edge"], edge.env, edge.cfg.instance, "up", **_jail_edge())
    assert "ivr-sip" in up
    try:
        cracking = asyncio.create_task(asyncio.to_thread(
            sv, attacker, "svcrack", "-u", "softphone", "-d", str(passwords), target))
        deadline = time.monotonic() + 20
        while edge.addr(13) not in await asyncio.to_thread(_banned, edge):
            assert time.monotonic() < deadline, "the brute-forcer was not banned in 20 s"
            await asyncio.sleep(0.3)
        banned_at = time.monotonic()
        # Banned: no answer at all (svmap sees no device), while the carrier's call, from
        # another address at the same moment, goes through.
        scan = asyncio.create_task(asyncio.to_thread(sv, attacker, "svmap", target,
                                                     timeout=30))
        status, messages = await asyncio.to_thread(sipp_call, edge.ns["call"], edge.addr(9),
                                                   edge.addr(10), "1000")
        assert status == 0 and "SIP/2.0 200 OK" in messages, messages[-2000:]
        assert "ivr-asterisk" not in await scan
        assert await asyncio.to_thread(request, attacker, edge.addr(13), target,
                                       "softphone") == "no answer"
        assert time.monotonic() - banned_at < BANTIME, "too slow to see the ban in force"
        # The ban is in the edge's nftables only.
        assert edge.addr(13) in _nft(edge.ns["edge"])
        assert _nft(None) == host_rules
        cracked = await cracking
        assert "found nothing" in cracked, cracked[-1500:]
        # The ban lifts once its time is up.
        while edge.addr(13) in await asyncio.to_thread(_banned, edge):
            assert time.monotonic() - banned_at < BANTIME + 15, "the ban did not lift"
            await asyncio.sleep(0.5)
        assert time.monotonic() - banned_at >= BANTIME - 2
        assert request(attacker, edge.addr(13), target, "softphone") == \
            "SIP/2.0 401 Unauthorized"
    finally:
        os.unlink(passwords)
        jail(edge.ns["edge"], edge.env, edge.cfg.instance, "down", **_jail_edge())
    assert "addr-set-ivr-sip" not in _nft(edge.ns["edge"])  # stopped: its set is gone


async def test_a_softphone_calls_over_tls_with_srtp(edge: Edge, tmp_path: Path) -> None:
    crt, _ = edge.cfg.dev_cert
    heard = tmp_path / "heard.wav"
    password = edge.env["IVR_SOFTPHONE_PASSWORD"]
    phone = Softphone("softphone", password, REPO_ROOT / "tests/data/speech-short.wav",
                      heard=heard, seconds=6, server=f"{edge.addr(2)}:5061",
                      listen=edge.addr(1), tls=True, srtp=True, cafile=crt)
    try:
        await phone.start()
        await phone.dial("2000")
        await phone.wait_for("CALL_CLOSED", 15)  # its microphone file ends: it hangs up
    finally:
        await phone.stop()
    shown = provision.cli(edge.cfg, "dialplan show globals")
    assert "EDGE_SECURE=1/1" in shown, shown  # TLS signalling and SRTP media, Asterisk says
    with wave.open(str(heard)) as w:  # Echo() sent the caller's speech back through SRTP
        frames = w.readframes(w.getnframes())
        assert audioop.rms(frames, w.getsampwidth()) > 200, "nothing came back"
    # Plain RTP to the same account is refused: SRTP is required (IVR_SIP_SRTP=required).
    plain = Softphone("softphone", password, seconds=3, server=f"{edge.addr(2)}:5060",
                      listen=edge.addr(1))
    try:
        await plain.start()
        with pytest.raises(SoftphoneError, match="not answered"):
            await plain.dial("2000", timeout=8)
    finally:
        await plain.stop()
