"""Kamailio as the SIP entry in front of several Asterisk media nodes (docs/scale-out.md):
deploy/kamailio/kamailio.cfg with this deployment's addresses filled in, the dispatcher's list
of nodes, and the process (`kamailio -DD`, Debian 12's package) started and stopped from code,
as Asterisk is. Everything it writes lives in one folder (the configuration, the pid file, its
log and its control socket), so several proxies (tests) never meet."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.core.errors import ProvisionError
from ivr.settings import REPO_ROOT

TEMPLATE = REPO_ROOT / "deploy" / "kamailio" / "kamailio.cfg"
_FIELD = re.compile(r"@@(\w+)@@")
_NODE = re.compile(r"^(?:sip:)?([A-Za-z0-9.-]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class ProxyConfig:
    folder: Path  # where its configuration, pid file, log and control socket live
    address: str  # the address it listens on (carriers and phones send here)
    port: int = 5060
    nodes: tuple[str, ...] = ()  # the media nodes' SIP addresses, host[:port]
    probe_interval: int = 2  # seconds between OPTIONS to each node
    fr_timer_ms: int = 2000  # a node silent this long on a new request: the next one

    @property
    def cfg_file(self) -> Path:
        return self.folder / "kamailio.cfg"

    @property
    def pidfile(self) -> Path:
        return self.folder / "kamailio.pid"

    @property
    def log(self) -> Path:
        return self.folder / "kamailio.log"

    @property
    def ctl(self) -> Path:
        return self.folder / "kamailio.ctl"


def node_uris(nodes: tuple[str, ...]) -> list[str]:
    uris = []
    for node in nodes:
        match = _NODE.match(node.strip())
        if match is None:
            raise ProvisionError(f"media node {node!r}: give host or host:port")
        uris.append(f"sip:{match[1]}:{match[2] or 5060}")
    if not uris:
        raise ProvisionError("no media nodes: give at least one (IVR_PROXY_NODES)")
    return uris


def render(cfg: ProxyConfig) -> dict[str, str]:
    """File name -> text, validated before anything is written."""
    if not re.fullmatch(r"[0-9.]+|[A-Za-z0-9.-]+", cfg.address):
        raise ProvisionError(f"proxy address {cfg.address!r}: give an IP address or host name")
    if not 1 <= cfg.probe_interval <= 3600:
        raise ProvisionError("the probe interval must be 1 to 3600 seconds")
    fields = {"listen": f"{cfg.address}:{cfg.port}", "alias": f"{cfg.address}:{cfg.port}",
              "ctl": str(cfg.ctl), "dispatcher_list": str(cfg.folder / "dispatcher.list"),
              "probe_interval": str(cfg.probe_interval), "fr_timer_ms": str(cfg.fr_timer_ms)}
    text = _FIELD.sub(lambda m: fields[m[1]], TEMPLATE.read_text())
    nodes = "".join(f"1 {uri} 0 0\n" for uri in node_uris(cfg.nodes))
    return {"kamailio.cfg": text, "dispatcher.list": "# set id, node, flags, priority\n" + nodes}


def running(cfg: ProxyConfig) -> int | None:
    """Kamailio's pid while it runs."""
    return _pid(cfg)


def describe(flags: str) -> str:
    """The dispatcher's flags in words: A active, I inactive, D disabled, T trying (a probe
    missed, below the threshold); then P probed, X not probed yet."""
    state = {"A": "up", "I": "down", "D": "disabled", "T": "failing"}.get(flags[:1], flags)
    return state + (", probed" if "P" in flags[1:] else ", not probed yet")


def _pid(cfg: ProxyConfig) -> int | None:
    try:
        pid = int(cfg.pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def up(cfg: ProxyConfig, *, timeout: float = 10.0) -> int:
    """Write the configuration, check it (`kamailio -c`), start Kamailio unless it runs;
    returns its pid once it listens."""
    files = render(cfg)
    cfg.folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (cfg.folder / name).write_text(text)
    running = _pid(cfg)
    if running is not None:
        return running
    check = subprocess.run(["kamailio", "-c", "-f", str(cfg.cfg_file)], capture_output=True,
                           text=True)
    if check.returncode != 0:
        raise ProvisionError(f"Kamailio refuses {cfg.cfg_file}:\n{check.stderr[-2000:]}")
    cfg.pidfile.unlink(missing_ok=True)  # Kamailio writes it (and refuses a live one)
    with cfg.log.open("ab") as log:
        proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg.cfg_file), "-P", str(cfg.pidfile)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProvisionError(f"Kamailio stopped at start (log: {cfg.log}):\n"
                                 f"{cfg.log.read_text()[-2000:]}")
        if cfg.ctl.exists() and cfg.pidfile.exists():
            return proc.pid
        time.sleep(0.1)
    proc.kill()
    raise ProvisionError(f"Kamailio did not come up in {timeout:.0f}s (log: {cfg.log})")


def down(cfg: ProxyConfig) -> None:
    pid = _pid(cfg)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cfg.pidfile.unlink(missing_ok=True)


def nodes_state(cfg: ProxyConfig) -> dict[str, str]:
    """Each node's dispatcher state (`kamcmd dispatcher.list`): flags AP active and probed,
    IP inactive and probed, and so on."""
    done = subprocess.run(["kamcmd", "-s", f"unix:{cfg.ctl}", "dispatcher.list"],
                          capture_output=True, text=True, timeout=5)
    if done.returncode != 0:
        raise ProvisionError(f"kamcmd dispatcher.list: {done.stderr.strip()}")
    states: dict[str, str] = {}
    uri = None
    for line in done.stdout.splitlines():
        line = line.strip()
        if line.startswith("URI:"):
            uri = line.split(":", 1)[1].strip()
        elif line.startswith("FLAGS:") and uri is not None:
            states[uri] = line.split(":", 1)[1].strip()
    return states
