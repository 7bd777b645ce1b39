"""The project's own Asterisk 22, provisioned from code and idempotent.

No Docker engine runs on these machines, so Asterisk lives in a Debian sid root file system
(debootstrap) in a cache folder outside git, and runs in a chroot as its own user: root here
lacks CAP_DAC_OVERRIDE and could not read Asterisk's 0640 files. Where Docker runs, operators
use asterisk-conf/Dockerfile with the same configuration.

The configuration is the repo's asterisk-conf/ and dialplan/, copied in on every `up()`, plus
generated include files holding what comes from settings (ARI user, softphone secret, the app
name). A change to any of it restarts Asterisk; an unchanged, healthy Asterisk is left alone."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ivr.core.errors import ProvisionError

Progress = Callable[[str], None]
PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav")
_APT_OPTS = ("-o", "Acquire::Check-Valid-Until=false", "-o", "Dpkg::Use-Pty=0")
_BUILT_MARK = ".ivr-built"
# Folders Asterisk writes to; they must belong to its user.
_ASTERISK_DIRS = ("etc/asterisk", "var/lib/asterisk", "var/spool/asterisk", "var/log/asterisk",
                  "var/run/asterisk", "var/cache/asterisk")


@dataclass(frozen=True)
class AsteriskConfig:
    root: Path
    conf_dir: Path
    dialplan_dir: Path
    ari_url: str
    ari_user: str
    ari_password: str
    ari_app: str
    softphone_user: str
    softphone_password: str
    engine_http_url: str = "http://127.0.0.1:8080"

    @property
    def state_dir(self) -> Path:
        return self.root.parent

    @property
    def pidfile(self) -> Path:
        return self.state_dir / f"{self.root.name}.pid"

    @property
    def console_log(self) -> Path:
        return self.state_dir / "asterisk.out"


@dataclass(frozen=True)
class AsteriskInfo:
    version: str
    pid: int
    ari_url: str
    started: bool  # False when an already running Asterisk was kept

    def __str__(self) -> str:
        how = "started" if self.started else "already running"
        return f"Asterisk {self.version} ({how}, pid {self.pid}), ARI at {self.ari_url}"


@dataclass(frozen=True)
class AsteriskStatus:
    built: bool
    running: bool
    pid: int | None
    ari: bool
    version: str
    channels: int | None
    log: Path

    def __str__(self) -> str:
        if not self.built:
            return "Asterisk: not built yet (ivr asterisk up builds it)"
        if not self.running:
            return f"Asterisk: built, not running (log: {self.log})"
        ari = f"ARI answering, {self.channels} channel(s)" if self.ari else "ARI not answering"
        return f"Asterisk {self.version}: running (pid {self.pid}), {ari}; log: {self.log}"


# --- public ---------------------------------------------------------------------------------
def up(cfg: AsteriskConfig, *, timeout: float = 120.0, progress: Progress = print) -> AsteriskInfo:
    with _lock(cfg):
        _ensure_root(cfg, progress)
        digest = _render_config(cfg)
        pid = _running_pid(cfg)
        marker = cfg.state_dir / f"{cfg.root.name}.config-sha256"
        if pid and marker.exists() and marker.read_text() == digest:
            info = _ari_info(cfg)
            if info is not None:
                return AsteriskInfo(info["system"]["version"], pid, cfg.ari_url, started=False)
        if pid:
            progress("configuration changed: restarting Asterisk")
            _stop(cfg, pid)
        _check_ports_free(cfg)
        pid = _start(cfg)
        marker.write_text(digest)
        progress("waiting for ARI to answer ...")
        version = _wait_for_ari(cfg, pid, timeout)
        return AsteriskInfo(version, pid, cfg.ari_url, started=True)


def down(cfg: AsteriskConfig, *, progress: Progress = print) -> None:
    with _lock(cfg):
        pid = _running_pid(cfg)
        if pid:
            progress(f"stopping Asterisk (pid {pid}) ...")
            _stop(cfg, pid)
        _unmount(cfg.root)


def status(cfg: AsteriskConfig) -> AsteriskStatus:
    built = (cfg.root / _BUILT_MARK).exists()
    pid = _running_pid(cfg) if built else None
    info = _ari_info(cfg) if pid else None
    channels = None
    if info is not None:
        with contextlib.suppress(OSError, ValueError):
            listed = _ari_get(cfg, "/channels")
            channels = len(listed) if isinstance(listed, list) else None
    return AsteriskStatus(
        built=built, running=pid is not None, pid=pid, ari=info is not None,
        version=info["system"]["version"] if info else _built_version(cfg), channels=channels,
        log=log_path(cfg),
    )


def log_path(cfg: AsteriskConfig) -> Path:
    return cfg.root / "var/log/asterisk/messages.log"


def rest_api_dir(cfg: AsteriskConfig) -> Path:
    return cfg.root / "usr/share/asterisk/rest-api"


def spool_recording_dir(cfg: AsteriskConfig) -> Path:
    return cfg.root / "var/spool/asterisk/recording"


# --- the root file system --------------------------------------------------------------------
@contextlib.contextmanager
def _lock(cfg: AsteriskConfig) -> Iterator[None]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.state_dir / f"{cfg.root.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(cmd: list[str], what: str, *, env: dict[str, str] | None = None,
         timeout: float = 900) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError as exc:
        raise ProvisionError(f"{what}: {exc.filename} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{what}: no answer after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise ProvisionError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def _mirror() -> str:
    """The Debian mirror this machine's apt already uses (sid comes from the same one)."""
    candidates = []
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                for word in line.split():
                    if word.startswith(("http://", "https://")):
                        candidates.append(word.rstrip("/"))
    for url in candidates:
        if url.endswith("/debian"):
            return url
    return "http://deb.debian.org/debian"


def _ensure_root(cfg: AsteriskConfig, progress: Progress) -> None:
    if (cfg.root / _BUILT_MARK).exists():
        return
    if shutil.which("debootstrap") is None:
        progress("installing debootstrap ...")
        _run(["apt-get", "install", "-y", "-q", "debootstrap"], "apt-get install debootstrap")
    building = cfg.root.with_name(cfg.root.name + ".building")
    if building.exists():  # an interrupted build: never trust half a root
        _unmount(building)
        shutil.rmtree(building)
    if cfg.root.exists():
        _unmount(cfg.root)
        shutil.rmtree(cfg.root)
    mirror = _mirror()
    progress(f"building a Debian sid root in {cfg.root} (first time only, about a minute) ...")
    _run(["debootstrap", "--variant=minbase", "sid", str(building), mirror], "debootstrap sid")
    # No daemons may start inside the chroot during installation.
    policy = building / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8"}
    progress("installing Asterisk 22 in it ...")
    _mount(building)
    try:
        _run(["chroot", str(building), "apt-get", *_APT_OPTS, "update"], "apt-get update (sid)",
             env=env)
        _run(["chroot", str(building), "apt-get", *_APT_OPTS, "install", "-y",
              "--no-install-recommends", *PACKAGES], "apt-get install asterisk", env=env)
        _run(["chroot", str(building), "apt-get", "clean"], "apt-get clean", env=env)
    finally:
        _unmount(building)
    version = _run(["chroot", str(building), "dpkg-query", "-W", "-f=${Version}", "asterisk"],
                   "dpkg-query asterisk").strip()
    # Keep the package's sample configuration aside: only the project's files are loaded.
    shipped = building / "etc/asterisk"
    shipped.rename(building / "etc/asterisk.dist")
    shipped.mkdir()
    (building / _BUILT_MARK).write_text(version + "\n")
    building.rename(cfg.root)
    progress(f"Asterisk {version} installed")


def _built_version(cfg: AsteriskConfig) -> str:
    with contextlib.suppress(OSError):
        return (cfg.root / _BUILT_MARK).read_text().strip()
    return ""


# --- configuration ---------------------------------------------------------------------------
def _generated(cfg: AsteriskConfig) -> dict[str, str]:
    ari = urlsplit(cfg.ari_url)
    if ari.hostname not in ("127.0.0.1", "localhost"):
        raise ProvisionError(
            f"IVR_ARI_URL points at {ari.hostname}: the project's own Asterisk listens on "
            "127.0.0.1 only; for a remote Asterisk, configure that host instead of running "
            "`ivr asterisk up`")
    return {
        "http_bind.conf": f"bindaddr = 127.0.0.1\nbindport = {ari.port or 8088}\n",
        "ari_users.conf": (
            f"[{cfg.ari_user}]\ntype = user\nread_only = no\npassword_format = plain\n"
            f"password = {cfg.ari_password}\n"
        ),
        "pjsip_accounts.conf": (
            f"[{cfg.softphone_user}](endpoint-defaults)\nauth = {cfg.softphone_user}-auth\n"
            f"aors = {cfg.softphone_user}\n\n"
            f"[{cfg.softphone_user}-auth]\ntype = auth\nauth_type = userpass\n"
            f"username = {cfg.softphone_user}\npassword = {cfg.softphone_password}\n\n"
            f"[{cfg.softphone_user}]\ntype = aor\nmax_contacts = 5\nremove_existing = yes\n"
        ),
        "extensions_globals.conf": (
            f"IVR_APP = {cfg.ari_app}\nIVR_HTTP = {cfg.engine_http_url}\n"
        ),
    }


def _render_config(cfg: AsteriskConfig) -> str:
    """Write the configuration into the root; returns a digest of all of it."""
    files: dict[str, bytes] = {}
    for path in sorted(cfg.conf_dir.glob("*.conf")):
        files[path.name] = path.read_bytes()
    for path in sorted(cfg.dialplan_dir.glob("*.conf")):
        files[f"dialplan/{path.name}"] = path.read_bytes()
    for name, text in _generated(cfg).items():
        files[f"generated/{name}"] = text.encode()
    uid, gid = _asterisk_ids(cfg.root)
    etc = cfg.root / "etc/asterisk"
    if etc.exists():
        shutil.rmtree(etc)
    digest = hashlib.sha256()
    for rel, data in sorted(files.items()):
        target = etc / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o640)
        digest.update(rel.encode() + b"\0" + data + b"\0")
    for folder in [etc, *(p for p in etc.rglob("*") if p.is_dir())]:
        folder.chmod(0o750)
    for rel in _ASTERISK_DIRS:
        folder = cfg.root / rel
        folder.mkdir(parents=True, exist_ok=True)
        _chown_tree(folder, uid, gid)
    # Without it every POST /channels/{id}/record answers 500.
    recording = spool_recording_dir(cfg)
    recording.mkdir(parents=True, exist_ok=True)
    os.chown(recording, uid, gid)
    return digest.hexdigest()


def _asterisk_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    raise ProvisionError(f"no asterisk user in {root}/etc/passwd: rebuild (remove {root})")


def _chown_tree(folder: Path, uid: int, gid: int) -> None:
    os.chown(folder, uid, gid)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


# --- process ---------------------------------------------------------------------------------
def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as info:
        return any(line.split()[4] == target for line in info)


def _mount(root: Path) -> None:
    for sub, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
        point = root / sub
        point.mkdir(exist_ok=True)
        if not _mounted(point):
            _run(["mount", *args, str(point)], f"mount {point}")


def _unmount(root: Path) -> None:
    for sub in ("dev", "proc"):
        point = root / sub
        if point.exists() and _mounted(point):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _running_pid(cfg: AsteriskConfig) -> int | None:
    try:
        pid = int(cfg.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if cmdline and cmdline[0].endswith(b"asterisk"):
        return pid
    return None


def _port_open(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        # As Asterisk binds: connections in TIME_WAIT from a stopped Asterisk do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_ports_free(cfg: AsteriskConfig, wait: float = 5.0) -> None:
    ari_port = urlsplit(cfg.ari_url).port or 8088
    deadline = time.monotonic() + wait  # a stopping Asterisk lets go of its sockets last
    while time.monotonic() < deadline and (
        _port_open(ari_port) or _port_open(5060, socket.SOCK_DGRAM)
    ):
        time.sleep(0.1)
    if _port_open(ari_port):
        raise ProvisionError(f"127.0.0.1:{ari_port} is taken by another program: is another "
                             f"Asterisk running? (`ss -ltnp sport = :{ari_port}` tells which)")
    if _port_open(5060, socket.SOCK_DGRAM):
        raise ProvisionError("UDP 127.0.0.1:5060 (SIP) is taken by another program")


def _start(cfg: AsteriskConfig) -> int:
    _mount(cfg.root)
    with cfg.console_log.open("ab") as out:
        proc = subprocess.Popen(
            ["chroot", str(cfg.root), "asterisk", "-f", "-U", "asterisk", "-G", "asterisk"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cfg.pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def _stop(cfg: AsteriskConfig, pid: int) -> None:
    with contextlib.suppress(ProvisionError):
        _run(["chroot", "--userspec=asterisk:asterisk", str(cfg.root), "asterisk", "-rx",
              "core stop now"], "asterisk -rx 'core stop now'", timeout=15)
    for sig, wait in ((None, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                cfg.pidfile.unlink(missing_ok=True)
                return
            time.sleep(0.1)
    raise ProvisionError(f"Asterisk (pid {pid}) does not stop")


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- ARI probe -------------------------------------------------------------------------------
def _ari_get(cfg: AsteriskConfig, path: str, timeout: float = 2.0) -> object:
    request = urllib.request.Request(cfg.ari_url.rstrip("/") + "/ari" + path)
    token = base64.b64encode(f"{cfg.ari_user}:{cfg.ari_password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def _ari_info(cfg: AsteriskConfig) -> dict[str, dict[str, str]] | None:
    try:
        info = _ari_get(cfg, "/asterisk/info?only=system")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _wait_for_ari(cfg: AsteriskConfig, pid: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ProvisionError(
                f"Asterisk exited during start-up; see {cfg.console_log} and {log_path(cfg)}:\n"
                + _tail(cfg.console_log))
        try:
            info = _ari_get(cfg, "/asterisk/info?only=system")
            return str(info["system"]["version"])  # type: ignore[index]
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code == 401:
                raise ProvisionError("ARI refused IVR_ARI_USER/IVR_ARI_PASSWORD") from exc
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise ProvisionError(f"ARI did not answer at {cfg.ari_url} within {timeout:.0f}s ({last}); "
                         f"see {log_path(cfg)}")


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
