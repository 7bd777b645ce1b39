"""The whole scale-out topology in network namespaces (issue #24 item 4, docs/scale-out.md):
Kamailio in front of two media nodes (Asterisk instances provisioned as `ivr asterisk up --role
media` with IVR_ENGINE_POOL=true, the proxy an IP-authenticated trunk on each), two engines
(`ivr serve`, IVR_ENGINE_ID a and b, each driving both nodes: IVR_ARI_URL and IVR_ARI_NODES), one
Postgres, and SIPp calling the proxy from a caller namespace. The calls dial a DID no number has:
the engine that claims each answers it ("not in service") and SIPp hangs up a second later.

Shown, with the figures printed: calls spread over both nodes and both engines; node2 stopped,
it leaves the dispatcher within the probe interval and every new call lands on node1 and is
answered; engine a killed, every new call is answered by engine b."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ivr.cli import asterisk_config
from ivr.core.errors import ConfigError
from ivr.provision import asterisk as provision
from ivr.provision import kamailio
from ivr.provision.asterisk_conf import render
from ivr.provision.trunks import apply
from ivr.provision.trunks.model import build
from ivr.settings import Settings, ws_url
from tests.conftest import free_port, start_serve
from tests.helpers.netns import Net, asterisk_up, free_subnet
from tests.helpers.scale import lan, proxy_up, sipp, tear_down, until

pytestmark = pytest.mark.asterisk

DID = "15550177"  # no number has it: "not in service", answered by whichever engine claims it


@dataclass
class Site:
    net: Net
    octets: str
    ns: dict[str, str]
    nodes: dict[str, provision.AsteriskConfig]
    env: dict[str, dict[str, str]]
    proxy: kamailio.ProxyConfig
    folder: Path
    app: str

    def addr(self, host: int) -> str:
        return f"{self.octets}.{host}"

    def node_uri(self, name: str) -> str:
        return f"sip:{self.addr({'node1': 2, 'node2': 3}[name])}:5060"


def _node_env(base: Settings, octets: str, host: int, app: str, password: str
              ) -> dict[str, str]:
    sip = f"{octets}.{host}"
    return {"IVR_ASTERISK_ROOT": str(base.asterisk_root), "IVR_ARI_USER": "ivr",
            "IVR_ARI_PASSWORD": password, "IVR_SOFTPHONE_USER": "softphone",
            "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12),
            "IVR_ARI_URL": f"http://{sip}:8088", "IVR_ARI_BIND": f"{sip}:8088",
            "IVR_SIP_BIND": sip, "IVR_RTP_ADDRESS": sip, "IVR_ARI_APP": app,
            "IVR_ENGINE_POOL": "true", "IVR_PUBLIC_URL": f"http://{octets}.5:8080"}


@pytest.fixture(scope="module")
def site(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    provision.build_root(asterisk_config(base_settings),
                         progress=lambda line: print(f"[asterisk] {line}"))
    pid = os.getpid()
    net = Net(f"s{pid % 1000}")
    folder = tmp_path_factory.mktemp("scale")
    started: list[provision.AsteriskConfig] = []
    proxy = None
    app, password = f"scale{pid}", secrets.token_urlsafe(18)
    try:
        octets = free_subnet(pid + 21)
        ns = lan(net, octets, {"proxy": 1, "node1": 2, "node2": 3, "caller": 4}, root=5)
        nodes, envs = {}, {}
        for name, host in (("node1", 2), ("node2", 3)):
            env = {**_node_env(base_settings, octets, host, app, password),
                   "IVR_NODE_NAME": name}
            cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)),
                                      instance=f"{name}s{pid}", media_host=True)
            started.append(cfg)
            asterisk_up(ns[name], env, instance=cfg.instance, media_host=True)
            # The proxy as an IP-authenticated trunk: every call from it is a carrier's call.
            apply.apply(cfg, [build("kamailio", f"{octets}.1")],
                        Settings.from_mapping(env).network)
            nodes[name], envs[name] = cfg, env
        proxy = kamailio.ProxyConfig(folder / "proxy", f"{octets}.1", 5060,
                                     (f"{octets}.2", f"{octets}.3"), probe_interval=1)
        proxy_up(ns["proxy"], proxy)
        made = Site(net, octets, ns, nodes, envs, proxy, folder, app)
    except Exception as exc:  # a real part that cannot start fails the test
        tear_down(net, started, proxy)
        pytest.fail(f"the scale-out namespaces could not be set up: {exc}", pytrace=False)
    try:
        yield made
    finally:
        tear_down(net, started, proxy)


@dataclass
class Engines:
    procs: dict[str, asyncio.subprocess.Process]


@pytest.fixture(scope="module")
async def engines(site: Site, settings: Settings) -> AsyncIterator[Engines]:
    made = Engines({})
    env = site.env["node1"]

    async def start(engine: str) -> None:
        port = free_port()
        ours = dataclasses.replace(settings, http_port=port,
                                   public_url=f"http://{site.addr(5)}:{port}")
        made.procs[engine] = await start_serve(
            ours, IVR_ARI_URL=env["IVR_ARI_URL"], IVR_ARI_NODES=site.env["node2"]["IVR_ARI_URL"],
            IVR_ARI_USER=env["IVR_ARI_USER"], IVR_ARI_PASSWORD=env["IVR_ARI_PASSWORD"],
            IVR_ARI_APP=site.app, IVR_ENGINE_ID=engine, IVR_HTTP_HOST="0.0.0.0",
            IVR_DIALER_ENABLED="false", IVR_ARI_SHARDS="2",
            IVR_ASTERISK_ROOT="/nonexistent/remote-asterisk")

    try:
        await asyncio.gather(start("a"), start("b"))
        yield made
    finally:
        for proc in made.procs.values():
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


async def _round(site: Site, pool: asyncpg.Pool, calls: int) -> dict[str, Any]:
    """`calls` SIPp calls through the proxy: which node (Kamailio's log) and which engine (the
    call log) each went to."""
    log_at = site.proxy.log.stat().st_size
    since = await pool.fetchval("SELECT now()")
    began = time.monotonic()
    done = await asyncio.to_thread(sipp, site.ns["caller"], site.folder, site.addr(1),
                                   site.addr(4), calls, DID)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    log = site.proxy.log.read_text()[log_at:]
    nodes = {name: len(re.findall(rf"new INVITE \S+ to node {re.escape(site.node_uri(name))}",
                                  log)) for name in site.nodes}
    rows = await pool.fetch(
        "SELECT engine, count(*) AS n FROM calls WHERE started_at >= $1 AND dialed LIKE $2"
        " GROUP BY engine", since, f"%{DID}")
    engines = {str(r["engine"]).removeprefix(f"{site.app}."): int(r["n"]) for r in rows}
    return {"nodes": nodes, "engines": engines, "seconds": round(took, 1)}


async def test_calls_spread_over_nodes_and_engines(site: Site, engines: Engines,
                                                   pool: asyncpg.Pool) -> None:
    await until(lambda: set(kamailio.nodes_state(site.proxy).values()) == {"AP"},
                 "both nodes answer the proxy's OPTIONS")
    got = await _round(site, pool, 20)
    print(f"20 calls through Kamailio, 2 nodes, 2 engines: {got}")
    assert got["nodes"] == {"node1": 10, "node2": 10}, got
    assert sum(got["engines"].values()) == 20 and set(got["engines"]) == {"a", "b"}, got


async def test_a_media_node_down(site: Site, engines: Engines, pool: asyncpg.Pool) -> None:
    provision.down(site.nodes["node2"], progress=lambda line: None)
    stopped = time.monotonic()
    await until(lambda: not kamailio.nodes_state(site.proxy)[
        site.node_uri("node2")].startswith("A"), "the proxy took node2 out")
    out_after = time.monotonic() - stopped
    got = await _round(site, pool, 10)
    print(f"node2 stopped, out of the dispatcher after {out_after:.1f}s (probe every "
          f"{site.proxy.probe_interval}s); 10 new calls: {got}")
    assert got["nodes"] == {"node1": 10, "node2": 0}, got
    assert sum(got["engines"].values()) == 10, got


async def test_an_engine_down(site: Site, engines: Engines, pool: asyncpg.Pool) -> None:
    proc = engines.procs["a"]
    proc.send_signal(signal.SIGKILL)  # a crash: no drain, its websockets just close
    await proc.wait()
    got = await _round(site, pool, 10)
    print(f"engine a killed; 10 new calls: {got}")
    assert got["engines"] == {"b": 10}, got


def test_nodes_settings() -> None:
    base = {"IVR_ARI_PASSWORD": "x" * 24, "IVR_SOFTPHONE_PASSWORD": "y" * 12,
            "IVR_ASTERISK_ROOT": "/nonexistent/root"}
    one = Settings.from_mapping(base)
    assert (one.ari_nodes, one.node_name) == ((), "")
    assert b"systemname" not in render(asterisk_config(one))["asterisk.conf"]
    two = Settings.from_mapping({**base, "IVR_ARI_NODES": " http://10.0.0.3:8088/, https://n3:8089",
                                 "IVR_NODE_NAME": "node-2"})
    assert two.ari_nodes == ("http://10.0.0.3:8088", "https://n3:8089")
    assert ws_url(two.ari_nodes[1]) == "wss://n3:8089/ari/events"
    conf = render(asterisk_config(two))["asterisk.conf"].decode()
    assert "[options]\nsystemname = node-2\n" in conf
    for name, value in (("IVR_ARI_NODES", "ftp://x"), ("IVR_ARI_NODES", "http://"),
                        ("IVR_NODE_NAME", "node 2")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_mapping({**base, name: value})
    # A node off loopback is an ARI others may try: a weak password is refused.
    with pytest.raises(ConfigError, match="too weak"):
        Settings.from_mapping({**base, "IVR_ARI_PASSWORD": "short-pw1",
                               "IVR_ARI_NODES": "http://10.0.0.3:8088"})
