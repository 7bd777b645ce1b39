"""Scale-out test parts (docs/scale-out.md): one LAN of network namespaces on a bridge,
Kamailio started inside one of them, and SIPp calling through it from another."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ivr.provision import asterisk as provision
from ivr.provision import kamailio
from ivr.settings import REPO_ROOT
from tests.helpers.netns import Net, ip

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="call through the proxy">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def lan(net: Net, octets: str, hosts: dict[str, int], root: int | None = None
        ) -> dict[str, str]:
    """One bridge in a namespace of its own, and a namespace per host on it (10.A.B.n/24);
    with `root`, the root namespace (the engines) on it too, at 10.A.B.root."""
    lan = net.namespace("lan")
    ip("netns", "exec", lan, "ip", "link", "add", "br0", "type", "bridge")
    ip("netns", "exec", lan, "ip", "link", "set", "br0", "up")
    made = {}
    for role, host in [*hosts.items(), *([("", root)] if root is not None else [])]:
        a, b = f"k{net.tag}{host}a", f"k{net.tag}{host}b"
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        ip("link", "set", a, "netns", lan)
        ip("netns", "exec", lan, "ip", "link", "set", a, "master", "br0", "up")
        if not role:  # the root namespace keeps its end (deleted with the lan namespace)
            ip("addr", "add", f"{octets}.{host}/24", "dev", b)
            ip("link", "set", b, "up")
            continue
        ns = net.namespace(role)
        ip("link", "set", b, "netns", ns)
        ip("netns", "exec", ns, "ip", "addr", "add", f"{octets}.{host}/24", "dev", b)
        ip("netns", "exec", ns, "ip", "link", "set", b, "up")
        made[role] = ns
    return made


def proxy_up(ns: str, cfg: kamailio.ProxyConfig) -> None:
    """`kamailio.up(cfg)` inside namespace `ns` (its listen address is there)."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", _PROXY_UP], capture_output=True,
        text=True, timeout=30, cwd=REPO_ROOT,
        env={**os.environ, "P_FOLDER": str(cfg.folder), "P_ADDR": cfg.address,
             "P_NODES": ",".join(cfg.nodes), "P_PROBE": str(cfg.probe_interval)})
    if done.returncode != 0:
        raise RuntimeError(f"Kamailio did not come up:\n{done.stdout}{done.stderr}")


_PROXY_UP = """
import os
from pathlib import Path
from ivr.provision import kamailio
print(kamailio.up(kamailio.ProxyConfig(
    Path(os.environ["P_FOLDER"]), os.environ["P_ADDR"], 5060,
    tuple(os.environ["P_NODES"].split(",")), probe_interval=int(os.environ["P_PROBE"]))))
"""


def sipp(ns: str, folder: Path, proxy: str, local: str, calls: int, service: str = "2000",
         rate: int = 10) -> subprocess.CompletedProcess[str]:
    """`calls` calls from namespace `ns` (address `local`) to `service` at the proxy, each
    answered, held a second and hung up by SIPp along the route set of its 200 OK."""
    scenario = folder / "uac.xml"
    scenario.write_text(SCENARIO)
    return subprocess.run(
        ["ip", "netns", "exec", ns, "sipp", "-sf", str(scenario),
         f"{proxy}:5060", "-i", local, "-p", "5070", "-s", service,
         "-m", str(calls), "-r", str(rate), "-l", str(calls), "-nostdin", "-timeout", "60s",
         "-timeout_error"], capture_output=True, text=True, timeout=90)


def tear_down(net: Net, started: list[provision.AsteriskConfig],
              proxy: kamailio.ProxyConfig | None) -> None:
    """Kamailio, the Asterisk instances (purged) and the namespaces, whatever came up."""
    if proxy is not None:
        kamailio.down(proxy)
    for cfg in reversed(started):
        provision.down(cfg, progress=lambda line: None, purge=True)
    net.close()


async def until(check: Callable[[], object], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(what)
