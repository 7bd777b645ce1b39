"""The operators' path (issue #19 item 4): compose.yaml's three images (Asterisk, the engine,
PostgreSQL) built and run with podman, the stack brought up from a .env, /healthz answering, and
a call taken.

The stack runs in a network namespace of its own (compose.yaml's `network_mode` is
IVR_COMPOSE_NETWORK, `ns:/run/netns/NAME` here), so its ports never meet the suite's: SIP, RTP,
ARI and the API are bound to the namespace's end of a veth pair (the address settings), the
database to its loopback. The call is Asterisk calling itself over real SIP on that address
(the `ivr-loopback` trunk) into the line check, which records the caller and plays the take
back: seen from ARI's events. Asterisk's configuration in the container is checked to be byte
for byte what `ivr asterisk up`'s renderer makes of the same .env.

No registry is reachable here: the base images are imported from local root file systems (the
sid root the suite's Asterisk runs from, a debootstrap of Debian 12), cached by a hash of what
made them, and podman's layer cache keeps an unchanged image's build to seconds. This test
fails, never skips, where podman cannot run."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.cli import asterisk_config
from ivr.provision import asterisk as provision
from ivr.provision.asterisk_conf import render
from ivr.provision.chroot import _mirror
from ivr.settings import Settings
from ivr.telephony.rest import basic_auth
from tests.helpers import containers
from tests.helpers.netns import Net, free_subnet

pytestmark = pytest.mark.timeout(1500)
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"  # pip inside the build trusts what this host does


def _env(addr: str, app: str) -> dict[str, str]:
    return {
        "IVR_ARI_URL": f"http://{addr}:8088", "IVR_ARI_BIND": f"{addr}:8088",
        "IVR_ARI_USER": "ivr", "IVR_ARI_PASSWORD": secrets.token_urlsafe(18),
        "IVR_ARI_APP": app, "IVR_ARI_SHARDS": "2",
        "IVR_SOFTPHONE_USER": "softphone", "IVR_SOFTPHONE_PASSWORD": secrets.token_urlsafe(12),
        "IVR_SIP_BIND": addr, "IVR_RTP_ADDRESS": addr, "IVR_RTP_PORTS": "30000-30100",
        "IVR_HTTP_HOST": addr, "IVR_HTTP_PORT": "8080", "IVR_NICE": "0",
        "IVR_POSTGRES_PASSWORD": secrets.token_urlsafe(18), "IVR_DEV_NUMBER": "+15125550100",
        "IVR_LOG_LEVEL": "INFO",
        "IVR_METRICS_TOKEN": secrets.token_urlsafe(24),  # /healthz's details from outside
    }


async def _healthy(http: aiohttp.ClientSession, url: str, stack: containers.Stack, token: str,
                   timeout: float = 120) -> dict[str, Any]:
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=3),
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
                if resp.status == 200:
                    return dict(body)
                last = f"{resp.status} {body}"
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            last = repr(exc)
        await asyncio.sleep(0.5)
    logs = "\n".join(f"--- {n}\n{stack.logs(n)[-3000:]}" for n in stack.started)
    raise AssertionError(f"{url} never answered 200 ({last}):\n{logs}")


def _rendered_digests(env: dict[str, str]) -> dict[str, str]:
    """What `ivr asterisk up` writes for these settings, file by file."""
    cfg = dataclasses.replace(asterisk_config(Settings.from_mapping(env)), root=Path("/"))
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in render(cfg).items()}


async def test_operator_stack_from_env(base_settings: Settings, tmp_path: Path) -> None:
    started = time.monotonic()
    containers.ensure_podman()
    containers.remove_stale()
    cfg = asterisk_config(base_settings)
    provision.build_root(cfg, progress=lambda _: None)
    with ThreadPoolExecutor(2) as pool:  # imported once per machine (and per change of input)
        sid = pool.submit(containers.sid_base, cfg.root)
        bookworm = pool.submit(containers.bookworm_base, _mirror(cfg))
        bases = {"IVR_ASTERISK_BASE": sid.result(), "IVR_DEBIAN_BASE": bookworm.result()}
    pid = os.getpid()
    tag = f"k{pid % 100000}"
    net = Net(tag)
    stack: containers.Stack | None = None
    try:
        ns = net.namespace("pkg")
        octets = free_subnet(pid + 25)
        addr = f"{octets}.2"
        net.link(None, f"{octets}.1", ns, addr)
        env = _env(addr, f"ivr-pkg-{tag}")
        env_file = tmp_path / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        stack = containers.Stack(
            project=f"ivr-pkg-{tag}",
            env={**containers.read_env(env_file), **bases, "IVR_ENV_FILE": str(env_file),
                 "IVR_COMPOSE_NETWORK": f"ns:/run/netns/{ns}"},
            build_args={"engine": {"PIP_CERT": "/run/ivr-host-ca.crt"}},
            build_volumes={"engine": [f"{HOST_CA}:/run/ivr-host-ca.crt:ro"]})
        stack.build_all()
        for name in stack.order():
            stack.up(name)
        ari = f"http://{addr}:8088/ari"
        auth = basic_auth(env["IVR_ARI_USER"], env["IVR_ARI_PASSWORD"])
        async with aiohttp.ClientSession(headers=auth) as http:
            health = await _healthy(http, f"http://{addr}:8080/healthz", stack,
                                  env["IVR_METRICS_TOKEN"])
            assert health["database"]["connected"] is True, health

            # One source: the container's files are what the project's renderer writes.
            listed = stack.exec("asterisk", "sh", "-c",
                                "cd /etc/asterisk && find . -type f | sort | xargs sha256sum")
            inside = {line.split()[1][2:]: line.split()[0] for line in listed.splitlines()}
            assert inside == _rendered_digests(env)

            await _call_line_check(http, ari, tag)
        stack.timings["total"] = time.monotonic() - started
        print("packaging timings (s):", json.dumps({k: round(v, 1) for k, v in
                                                    stack.timings.items()}))
    finally:
        if stack is not None:
            stack.down()
        net.close()


async def _call_line_check(http: aiohttp.ClientSession, ari: str, tag: str) -> None:
    """PJSIP/9999@ivr-loopback: out over SIP to the namespace address and back in (the loopback
    trunk, known by that address and port) to the engine's line check, which answers, records
    the caller (who speaks after the greeting; five seconds of silence end the take) and plays
    the take back."""
    app = f"pkg-watch-{tag}"
    ws_url = ari.replace("http", "ws", 1) + f"/events?app={app}&subscribeAll=true"
    events: list[dict[str, Any]] = []
    async with http.ws_connect(ws_url) as ws:
        async with http.post(f"{ari}/channels", params={
                "endpoint": "PJSIP/9999@ivr-loopback", "context": "ivr-loadgen-caller",
                "extension": "s", "priority": "1", "callerId": "pkg <15125550199>"},
                json={"variables": {"LOADGEN_WAIT": "8", "LOADGEN_PLAY": "hello-world&hello-world",
                                    "LOADGEN_HOLD": "15"}}) as resp:
            assert resp.status == 200, await resp.text()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(msg.data)
            events.append(event)
            if event["type"] == "PlaybackStarted" and str(
                    event["playback"].get("media_uri", "")).startswith("recording:linecheck-"):
                break
    kinds = [(e["type"], e.get("recording", {}).get("name") or e.get("playback", {})
              .get("media_uri")) for e in events
             if e["type"].startswith(("Recording", "Playback", "StasisStart"))]
    finished = [e["recording"] for e in events if e["type"] == "RecordingFinished"
                and e["recording"]["name"].startswith("linecheck-")]
    assert finished, f"no line check take recorded; events: {kinds}"
    take = {k: finished[0].get(k) for k in ("duration", "talking_duration", "silence_duration")}
    print("line check take (s):", take)
    assert (take["talking_duration"] or 0) >= 1, (take, kinds)  # the caller's audio arrived
    assert any(e["type"] == "PlaybackStarted" and str(e["playback"].get("media_uri", ""))
               .startswith("recording:linecheck-") for e in events), kinds
