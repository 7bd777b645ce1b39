"""Kamailio in front of two Asterisk media nodes (issue #24 item 1), on one LAN of network
namespaces (a bridge): `proxy` runs Kamailio from deploy/kamailio/ (ivr/provision/kamailio.py),
`node1` and `node2` each an Asterisk instance from the project's root that answers calls from
the proxy, `caller` runs SIPp (Debian's sip-tester) calling the proxy.

Shown: calls spread over both nodes (round robin over the nodes that answer OPTIONS); with
node2 stopped, the probe takes it out and every new call lands on node1 and succeeds; each
call's ACK and BYE (sent by SIPp along the route set of the 200 OK) reach the node through the
proxy (record-route), seen in Kamailio's log. Everything is removed after the module."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.cli import asterisk_config
from ivr.core.errors import ConfigError
from ivr.provision import asterisk as provision
from ivr.provision import kamailio
from ivr.settings import REPO_ROOT, Settings
from tests.helpers.netns import Net, asterisk_up, free_subnet
from tests.helpers.scale import lan, proxy_up, sipp, tear_down, until

pytestmark = pytest.mark.asterisk

NODE_PJSIP = """\
[transport-udp]
type = transport
protocol = udp
bind = {sip}:5060

; Every call comes from the proxy: known by its address.
[proxy]
type = endpoint
transport = transport-udp
context = from-proxy
allow = !all,ulaw
direct_media = no
media_address = {sip}
bind_rtp_to_media_address = yes

[proxy]
type = identify
endpoint = proxy
match = {proxy}
"""

NODE_DIALPLAN = """\
[from-proxy]
exten => _X.,1,Set(GLOBAL(CALLS)=$[0${{CALLS}} + 1])
 same => n,Answer()
 same => n,Wait(30)
 same => n,Hangup()
"""



@dataclass
class Site:
    net: Net
    octets: str
    nodes: dict[str, provision.AsteriskConfig]
    node_ns: dict[str, str]
    node_env: dict[str, dict[str, str]]
    proxy: kamailio.ProxyConfig
    proxy_ns: str
    caller_ns: str
    folder: Path

    def addr(self, host: int) -> str:
        return f"{self.octets}.{host}"


def _node_conf(folder: Path, sip: str, proxy: str) -> tuple[Path, Path]:
    conf, dialplan = folder / "conf", folder / "dialplan"
    shutil.copytree(REPO_ROOT / "asterisk-conf", conf)
    (conf / "pjsip.conf").write_text(NODE_PJSIP.format(sip=sip, proxy=proxy))
    dialplan.mkdir()
    (dialplan / "node.conf").write_text(NODE_DIALPLAN.format())
    return conf, dialplan


@pytest.fixture(scope="module")
def site(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    provision.build_root(asterisk_config(base_settings),
                         progress=lambda line: print(f"[asterisk] {line}"))
    pid = os.getpid()
    net = Net(f"{pid % 10000}")
    folder = tmp_path_factory.mktemp("kamailio")
    started: list[provision.AsteriskConfig] = []
    proxy = None
    try:
        octets = free_subnet(pid + 13)
        ns = lan(net, octets, {"proxy": 1, "node1": 2, "node2": 3, "caller": 4})
        nodes, envs = {}, {}
        for name, host in (("node1", 2), ("node2", 3)):
            sip = f"{octets}.{host}"
            env = {"IVR_ASTERISK_ROOT": str(base_settings.asterisk_root), "IVR_ARI_USER": "ivr",
                   "IVR_ARI_PASSWORD": secrets.token_urlsafe(18),
                   "IVR_SOFTPHONE_USER": "softphone",
                   "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12),
                   "IVR_ARI_URL": f"http://{sip}:8088", "IVR_ARI_BIND": f"{sip}:8088",
                   "IVR_SIP_BIND": sip, "IVR_RTP_ADDRESS": sip, "IVR_ARI_APP": name}
            conf, dialplan = _node_conf(folder / name, sip, f"{octets}.1")
            cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)),
                                      instance=f"{name}k{pid}", conf_dir=conf,
                                      dialplan_dir=dialplan)
            started.append(cfg)
            asterisk_up(ns[name], env, instance=cfg.instance, conf_dir=str(conf),
                        dialplan_dir=str(dialplan))
            nodes[name], envs[name] = cfg, env
        proxy = kamailio.ProxyConfig(folder / "proxy", f"{octets}.1", 5060,
                                     (f"{octets}.2", f"{octets}.3"), probe_interval=1)
        proxy_up(ns["proxy"], proxy)
        made = Site(net, octets, nodes, {"node1": ns["node1"], "node2": ns["node2"]}, envs,
                    proxy, ns["proxy"], ns["caller"], folder)
    except Exception as exc:  # a real part that cannot start fails the test
        tear_down(net, started, proxy)
        pytest.fail(f"the proxy's namespaces could not be set up: {exc}", pytrace=False)
    try:
        yield made
    finally:
        tear_down(net, started, proxy)


def _calls(site: Site, name: str) -> int:
    out = provision.cli(site.nodes[name], "dialplan show globals")
    found = re.search(r"CALLS=(\d+)", out)
    return int(found[1]) if found else 0


async def test_calls_spread_over_both_nodes_and_follow_their_route(site: Site) -> None:
    await until(lambda: set(kamailio.nodes_state(site.proxy).values()) == {"AP"},
                 "both nodes answer the proxy's OPTIONS")
    before = {n: _calls(site, n) for n in site.nodes}
    log_at = site.proxy.log.stat().st_size
    done = await asyncio.to_thread(sipp, site.caller_ns, site.folder, site.addr(1),
                                    site.addr(4), 10)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    spread = {n: _calls(site, n) - before[n] for n in site.nodes}
    print(f"10 calls through Kamailio: {spread}")
    assert spread == {"node1": 5, "node2": 5}, spread  # round robin over two live nodes
    log = site.proxy.log.read_text()[log_at:]
    # Every call's ACK and BYE came back through the proxy along the recorded route.
    assert len(re.findall(r"in-dialog ACK to sip:\S+ via", log)) == 10, log[-2000:]
    assert len(re.findall(r"in-dialog BYE to sip:\S+ via", log)) == 10, log[-2000:]


async def test_a_node_that_stops_answering_gets_no_new_calls(site: Site) -> None:
    provision.down(site.nodes["node2"], progress=lambda line: None)
    stopped = time.monotonic()
    node2 = f"sip:{site.addr(3)}:5060"
    # Flags: A active, I inactive, T trying (missed probes below the threshold), P probed.
    await until(lambda: not kamailio.nodes_state(site.proxy)[node2].startswith("A"),
                 f"the proxy took node2 out: {kamailio.nodes_state(site.proxy)}", timeout=15)
    took = time.monotonic() - stopped
    before = _calls(site, "node1")
    done = await asyncio.to_thread(sipp, site.caller_ns, site.folder, site.addr(1),
                                    site.addr(4), 6)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    print(f"node2 stopped: out of the dispatcher after {took:.1f}s (probe every "
          f"{site.proxy.probe_interval}s); 6 of 6 new calls on node1")
    assert _calls(site, "node1") - before == 6


def test_ivr_proxy_up_status_down(tmp_path: Path, base_settings: Settings) -> None:
    """The command an operator runs, on loopback, in front of a node nobody answers at: the
    proxy runs, reports that node down, and stops."""
    port = _free_udp_port()
    env = {**os.environ, "IVR_ASTERISK_ROOT": str(tmp_path / "root"),
           "IVR_PROXY_BIND": f"127.0.0.1:{port}", "IVR_PROXY_NODES": "127.0.0.1:9",
           "IVR_PROXY_PROBE_INTERVAL": "1"}

    def ivr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivr", "proxy", *args], env=env,
                              capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)

    try:
        up = ivr("up")
        assert up.returncode == 0 and f"udp:127.0.0.1:{port}" in up.stdout, up.stderr
        deadline = time.monotonic() + 10
        while "sip:127.0.0.1:9: down" not in (status := ivr("status")).stdout:
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(0.3)
        assert status.returncode == 0
    finally:
        down = ivr("down")
    assert down.returncode == 0 and "down" in down.stdout
    gone = ivr("status")
    assert gone.returncode == 1 and "not running" in gone.stdout
    cfg = (tmp_path / "kamailio" / "kamailio.cfg").read_text()
    assert f"listen=udp:127.0.0.1:{port}" in cfg and "@@" not in cfg


def test_bad_proxy_settings_are_refused() -> None:
    base = {"IVR_ARI_PASSWORD": "x" * 24, "IVR_SOFTPHONE_PASSWORD": "y" * 12}
    assert Settings.from_mapping(base).proxy.nodes == ("127.0.0.1:5060",)
    spelled = Settings.from_mapping({**base, "IVR_PROXY_NODES": "10.0.0.2, 10.0.0.3:5070"})
    assert spelled.proxy.nodes == ("10.0.0.2:5060", "10.0.0.3:5070")
    for name, value in (("IVR_PROXY_NODES", "node-one"), ("IVR_PROXY_NODES", "10.0.0.2:0"),
                        ("IVR_PROXY_BIND", "127.0.0.1"), ("IVR_PROXY_BIND", "127.0.0.1:5060"),
                        ("IVR_PROXY_PROBE_INTERVAL", "0")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_mapping({**base, name: value})


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
