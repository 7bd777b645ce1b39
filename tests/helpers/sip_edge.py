"""The SIP edge from outside (tests/test_sip_edge.py): the project's fail2ban jail run inside a
test namespace (`python -m tests.helpers.sip_edge` under `ip netns exec`, so its nftables table
is that namespace's, never the host's), sipvicious and SIPp run from other namespaces, and a
bare SIP request whose From user the test chooses."""

from __future__ import annotations

import dataclasses
import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def jail(ns: str, env: dict[str, str], instance: str, action: str, **edge: Any) -> Any:
    """fail2ban.<action> (up, down, banned, status) for the Asterisk instance `instance` with
    the settings `env` and Edge fields `edge`, inside namespace `ns`."""
    job = json.dumps({"env": env, "instance": instance, "action": action, "edge": edge})
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "tests.helpers.sip_edge"], input=job, capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"fail2ban {action} in {ns}:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def _jail_here() -> None:
    from ivr.cli import asterisk_config
    from ivr.provision.edge import fail2ban
    from ivr.settings import Settings

    job = json.loads(sys.stdin.read())
    settings = Settings.from_mapping(job["env"])
    cfg = dataclasses.replace(asterisk_config(settings), instance=job["instance"])
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in job["edge"].items()}
    edge = dataclasses.replace(settings.edge, **fields)
    print(json.dumps(getattr(fail2ban, job["action"])(fail2ban.Jail(cfg, edge))))


def sv(ns: str, tool: str, *args: str, timeout: float = 90) -> str:
    """A sipvicious tool (svmap, svwar, svcrack) run from namespace `ns`: what it printed."""
    done = subprocess.run(["ip", "netns", "exec", ns, str(VENV_BIN / f"sipvicious_{tool}"),
                           *args], capture_output=True, text=True, timeout=timeout)
    return done.stdout + done.stderr


def sipp_call(ns: str, local: str, target: str, number: str,
              timeout: float = 40) -> tuple[int, str]:
    """One SIPp call (its built-in uac: INVITE, ACK, a second, BYE) from namespace `ns`:
    (exit status, 0 when the call went through; the SIP messages it saw)."""
    trace = Path(f"/tmp/sipp-{secrets.token_hex(4)}.log")
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "sipp", "-sn", "uac", "-s", number, "-m", "1",
             "-i", local, "-p", "5070", "-d", "1000", "-timeout", "20s", "-timeout_error",
             "-nostdin", "-trace_msg", "-message_file", str(trace), f"{target}:5060"],
            capture_output=True, text=True, timeout=timeout, cwd="/tmp")
        return done.returncode, trace.read_text(errors="replace") if trace.exists() else ""
    finally:
        trace.unlink(missing_ok=True)


def request(ns: str, local: str, target: str, from_user: str, method: str = "INVITE") -> str:
    """One out-of-dialog request with From user `from_user`, from namespace `ns`: the status
    line of the final answer ("no answer" when none comes in 4 s)."""
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                           "tests.helpers.sip_edge", "request", local, target, from_user,
                           method], capture_output=True, text=True, cwd=REPO, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"the request from {ns} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def _request_here(local: str, target: str, from_user: str, method: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, 0))
    sock.settimeout(4)
    port = sock.getsockname()[1]
    sdp = (f"v=0\r\no=x 1 1 IN IP4 {local}\r\ns=-\r\nc=IN IP4 {local}\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    body = sdp if method == "INVITE" else ""
    sock.sendto((
        f"{method} sip:1000@{target}:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
        f"From: <sip:{from_user}@{target}>;tag={secrets.token_hex(6)}\r\n"
        f"To: <sip:1000@{target}>\r\nCall-ID: {secrets.token_hex(10)}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <sip:{from_user}@{local}:{port}>\r\nMax-Forwards: 70\r\n"
        "P-Asserted-Identity: <sip:+15550001111@example.com>\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n{body}").encode(), (target, 5060))
    try:
        while True:
            first = sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
            if not first.startswith("SIP/2.0 1"):
                print(first)
                return
    except TimeoutError:
        print("no answer")


if __name__ == "__main__":
    if sys.argv[1:2] == ["request"]:
        _request_here(*sys.argv[2:6])
    else:
        _jail_here()
