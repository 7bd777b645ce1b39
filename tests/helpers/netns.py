"""Several "hosts" on one machine: network namespaces joined by veth pairs, and the project's
Asterisk provisioned inside one (`python -m tests.helpers.netns up` under `ip netns exec`, so
its port checks, start and ARI probe all see that namespace's addresses). Everything made here
is removed by `Net.close()`; names carry the test's pid so concurrent sessions never meet."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Net:
    tag: str  # short and unique: interface names are at most 15 characters
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # veth ends in the root namespace

    def namespace(self, role: str) -> str:
        name = f"ivr-{role}-{self.tag}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def link(self, a: str | None, a_addr: str, b: str, b_addr: str, prefix: int = 30) -> None:
        """A veth pair from namespace `a` (None: the root one) to `b`, addressed."""
        end_a, end_b = f"v{self.tag}{len(self.links)}a", f"v{self.tag}{len(self.links)}b"
        ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
        self.links.append(end_a)
        for end, ns, addr in ((end_a, a, a_addr), (end_b, b, b_addr)):
            ip("link", "set", end, "netns", ns) if ns else None
            run = ["netns", "exec", ns, "ip"] if ns else []
            ip(*run, "addr", "add", f"{addr}/{prefix}", "dev", end)
            ip(*run, "link", "set", end, "up")

    def close(self) -> None:
        for end in self.links:  # deleting one end deletes its peer
            subprocess.run(["ip", "link", "del", end], capture_output=True)
        for ns in self.namespaces:  # a namespace's own veth ends go with it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def free_subnet(pid: int) -> str:
    """10.A.B for a test's /30 links (.0, .4, .8, ...): one no route of this machine uses yet."""
    routes = ip("-4", "route", "show", "table", "all")
    for step in range(250):
        n = pid + step
        octets = f"10.{200 + n % 50}.{(n // 50) % 250}"
        if f"{octets}." not in routes:
            return octets
    raise RuntimeError("no free 10.x.y.0/24 for the namespace links")


def asterisk_up(ns: str, env: dict[str, str], **replace: str | bool) -> None:
    """`provision.up()` for the settings `env` with AsteriskConfig fields replaced (instance,
    conf_dir, dialplan_dir, media_host), run inside namespace `ns`. Raises with its output on
    failure."""
    job = json.dumps({"env": env, "replace": replace})
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "tests.helpers.netns", "up"], input=job, capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"Asterisk in {ns} did not come up:\n{done.stdout}{done.stderr}")


def _up_here() -> None:
    from ivr.cli import asterisk_config
    from ivr.provision import asterisk as provision
    from ivr.settings import Settings

    job = json.loads(sys.stdin.read())
    fields = {k: Path(v) if k.endswith("_dir") else v for k, v in job["replace"].items()}
    cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(job["env"])), **fields)
    print(provision.up(cfg, timeout=60))




def invite(ns: str, local: str, target: str, ruri_user: str, to_user: str,
           timeout: float = 30) -> str:
    """One SIP call from namespace `ns` (from `local`, port 5071) to `target`:5060 with the
    Request-URI's user and the To header's user chosen apart, as a carrier that sends every call
    to the registered contact does; answered, it waits for the other side's BYE. Returns the
    final response's status line."""
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "tests.helpers.netns", "invite", local, target, ruri_user, to_user],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the INVITE from {ns} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def _invite_here(local: str, target: str, ruri_user: str, to_user: str) -> None:
    """A minimal UAC (INVITE, ACK, then 200 to the BYE): just enough SIP for one call."""
    import secrets
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, 5071))
    sock.settimeout(20)
    call_id, tag, branch = (secrets.token_hex(8) for _ in range(3))
    sdp = (f"v=0\r\no=carrier 1 1 IN IP4 {local}\r\ns=-\r\nc=IN IP4 {local}\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
    via = f"Via: SIP/2.0/UDP {local}:5071;rport;branch=z9hG4bK{branch}"
    common = (f"From: <sip:+15557770004@{local}>;tag={tag}\r\nTo: <sip:{to_user}@{target}>\r\n"
              f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\n")
    sock.sendto((f"INVITE sip:{ruri_user}@{target}:5060 SIP/2.0\r\n{via}\r\n{common}"
                 f"CSeq: 1 INVITE\r\nContact: <sip:carrier@{local}:5071>\r\n"
                 f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
                 ).encode(), (target, 5060))
    while True:
        message = sock.recv(65535).decode(errors="replace")
        first = message.split("\r\n", 1)[0]
        if first.startswith("SIP/2.0 1"):
            continue
        if not first.startswith("SIP/2.0 200"):
            print(first)
            return
        to = next(h for h in message.split("\r\n") if h.lower().startswith("to:"))
        sock.sendto((f"ACK sip:{ruri_user}@{target}:5060 SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {local}:5071;rport;branch=z9hG4bK{secrets.token_hex(8)}"
                     f"\r\nFrom: <sip:+15557770004@{local}>;tag={tag}\r\n{to}\r\n"
                     f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\nCSeq: 1 ACK\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), (target, 5060))
        break
    while True:  # the engine hangs up once "not in service" has played
        message = sock.recv(65535).decode(errors="replace")
        if message.startswith("BYE "):
            headers = [h for h in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
                       if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(headers)
                         + "\r\nContent-Length: 0\r\n\r\n").encode(), (target, 5060))
            print(first + "; hung up by the far end")
            return


if __name__ == "__main__":
    if sys.argv[1:] == ["up"]:
        _up_here()
    elif sys.argv[1:2] == ["invite"]:
        _invite_here(*sys.argv[2:6])
