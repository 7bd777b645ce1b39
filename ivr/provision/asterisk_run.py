"""The Asterisk process of one instance: started chrooted as its own user, found again by its
root and `-C` file, probed over ARI until it has fully booted, stopped; and the configuration
folder it reads, written so that it cannot alter it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ivr.core.errors import ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig
from ivr.provision.chroot import (
    _CHROOT_ENV,
    Progress,
    _ids,
    _inside,
    _own,
    _read,
    _remove_tree,
    _run,
    _tail,
)

# Folders Asterisk writes to (paths inside the root); they belong to its user.
_WRITABLE = ("var/lib/asterisk", "var/spool/asterisk", "var/log/asterisk", "var/run/asterisk",
             "var/cache/asterisk")
# Written by `ivr trunk` (ivr/provision/trunks/apply.py) between starts, not from the settings: kept
# when the configuration folder is rewritten, and not part of its digest (a trunk change is
# a reload, never a restart).
TRUNKS_FILE = "generated/pjsip_trunks.conf"


def cli(cfg: AsteriskConfig, command: str, *, timeout: float = 15.0) -> str:
    """Run one Asterisk CLI command (`asterisk -rx`) in the running Asterisk, as its user."""
    return _run(["chroot", "--userspec=asterisk:asterisk", str(cfg.root),
                 *cfg.argv, "-rx", command], f"asterisk -rx {command!r}",
                env={**_CHROOT_ENV, "HOME": "/var/lib/asterisk"}, timeout=timeout)


def log_path(cfg: AsteriskConfig) -> Path:
    """Asterisk's log (notices, warnings, errors; see logger.conf), inside the root."""
    return cfg.root / cfg.dirs["log"] / "messages.log"


def rest_api_dir(cfg: AsteriskConfig) -> Path:
    """ARI's Swagger 1.1 contract as shipped with this Asterisk."""
    return cfg.root / "usr/share/asterisk/rest-api"


def spool_recording_dir(cfg: AsteriskConfig) -> Path:
    """Where ARI stores recordings (`/recordings/stored/{name}`)."""
    return cfg.root / cfg.dirs["spool"] / "recording"


def _write_config(cfg: AsteriskConfig, files: dict[str, bytes]) -> None:
    """ROOT/etc/asterisk: owned by root, group asterisk, 0750 folders and 0640 files. Asterisk
    reads it through its group; root rewrites it without needing CAP_DAC_OVERRIDE (files owned
    by asterisk would be unreadable to such a root), and Asterisk cannot alter it."""
    _, gid = _ids(cfg.root)
    etc = cfg.root / cfg.etc
    files = dict(files)
    if TRUNKS_FILE not in files and (etc / TRUNKS_FILE).is_file():
        files[TRUNKS_FILE] = (etc / TRUNKS_FILE).read_bytes()
    if etc.is_symlink() or etc.is_file():
        etc.unlink()
    if etc.exists():
        _own(etc, 0, 0)  # a root prepared by an earlier version: asterisk-owned
        _remove_tree(etc)
    staging = cfg.root / f"{cfg.etc}.new"
    if staging.exists():
        _remove_tree(staging)
    staging.mkdir(mode=0o750)
    for rel, data in sorted(files.items()):
        target = staging / rel
        if not target.parent.exists():
            target.parent.mkdir(mode=0o750, parents=True)
            os.chown(target.parent, 0, gid)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as out:
            os.fchown(out.fileno(), 0, gid)
            out.write(data)
    os.chown(staging, 0, gid)
    staging.chmod(0o750)
    staging.rename(etc)


def _prepare_dirs(cfg: AsteriskConfig) -> None:
    uid, gid = _ids(cfg.root)
    for rel in (*_WRITABLE, *cfg.dirs.values()):
        folder = _inside(cfg.root, rel)
        folder.mkdir(parents=True, exist_ok=True)
        _own(folder, uid, gid)
    # Without it every POST /channels/{id}/record answers 500.
    recording = spool_recording_dir(cfg)
    if not recording.exists():
        spool = recording.parent
        st = spool.stat()
        os.chown(spool, 0, st.st_gid)  # hand it to root for a moment: no CAP_DAC_OVERRIDE
        try:
            recording.mkdir(mode=0o755)  # readable to the engine too
            os.chown(recording, uid, gid)
        finally:
            os.chown(spool, uid, gid)


def _process_root(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return ""


def _is_our_asterisk(cfg: AsteriskConfig, pid: int, *, trust_unknown_root: bool = False) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    if state in ("Z", "X") or not argv or not argv[0].endswith(b"asterisk"):
        return False
    if b"-r" in argv or b"-rx" in argv or b"-f" not in argv:
        return False  # a remote console (asterisk -rx), not the daemon
    conf = argv[argv.index(b"-C") + 1] if b"-C" in argv[:-1] else b""
    if conf != (f"/{cfg.etc}/asterisk.conf".encode() if cfg.instance else b""):
        return False  # another instance from the same root
    root = _process_root(pid)  # unreadable without CAP_SYS_PTRACE
    return root == str(cfg.root.resolve()) or (not root and trust_unknown_root)


def _find_pid(cfg: AsteriskConfig) -> int | None:
    """The running Asterisk of this root: from the pid file, else (stale or lost pid file) by
    looking at every process's root folder."""
    with contextlib.suppress(ValueError):
        pid = int(_read(cfg.pidfile) or "0")
        if pid and _is_our_asterisk(cfg, pid, trust_unknown_root=True):
            return pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_our_asterisk(cfg, int(entry.name)):
            cfg.pidfile.write_text(f"{entry.name}\n")
            return int(entry.name)
    cfg.pidfile.unlink(missing_ok=True)
    return None


def _port_taken(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        # As Asterisk binds: connections in TIME_WAIT from a stopped Asterisk do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _wait_ports_free(cfg: AsteriskConfig, wait: float = 5.0) -> None:
    net = cfg.net
    checks = [(*net.ari_bind, socket.SOCK_STREAM, "TCP", "ARI"),
              (net.sip_bind, net.sip_port, socket.SOCK_DGRAM, "UDP", "SIP")]
    if net.ari_tls:
        checks.append((*net.ari_tls_bind, socket.SOCK_STREAM, "TCP", "ARI over TLS"))
    deadline = time.monotonic() + wait  # a stopping Asterisk lets go of its sockets last
    for host, port, kind, proto, what in checks:
        label = f"{proto} {host}:{port} ({what})"
        while _port_taken(host, port, kind):
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"{label} is taken by another program (another Asterisk?); "
                    f"`ss -lntup | grep :{port}` names it")
            time.sleep(0.1)


def _start(cfg: AsteriskConfig) -> int:
    # setsid --fork: Asterisk gets its own session and is nobody's child here, so it outlives
    # the caller (make, pytest) and never lingers as its zombie.
    with cfg.console_log.open("ab") as out:
        out.write(f"--- {time.strftime('%F %T')} starting Asterisk\n".encode())
        out.flush()
        launcher = subprocess.Popen(
            ["setsid", "--fork", "chroot", str(cfg.root),
             *cfg.argv, "-f", "-U", "asterisk", "-G", "asterisk"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=_CHROOT_ENV, start_new_session=True,
        )
        launcher.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _is_our_asterisk(cfg, int(entry.name)):
                cfg.pidfile.write_text(f"{entry.name}\n")
                return int(entry.name)
        time.sleep(0.05)
    raise ProvisionError(f"Asterisk did not start; see {cfg.console_log}:\n"
                         + _tail(cfg.console_log))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _stop(cfg: AsteriskConfig, pid: int, progress: Progress) -> None:
    with contextlib.suppress(ProvisionError):
        cli(cfg, "core stop now", timeout=15)
    for sig, wait in ((None, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            progress(f"Asterisk (pid {pid}) is still running: sending {sig.name}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                cfg.pidfile.unlink(missing_ok=True)
                return
            time.sleep(0.05)
    raise ProvisionError(f"Asterisk (pid {pid}) does not stop, even on SIGKILL")


# --- ARI probe -------------------------------------------------------------------------------
def _ari_get(cfg: AsteriskConfig, path: str, timeout: float = 2.0) -> object:
    request = urllib.request.Request(cfg.probe_url + "/ari" + path)
    token = base64.b64encode(f"{cfg.ari_user}:{cfg.ari_password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def _ari_info(cfg: AsteriskConfig) -> dict[str, dict[str, object]] | None:
    try:
        info = _ari_get(cfg, "/asterisk/info?only=system")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "system" in info else None


def _wait_ready(cfg: AsteriskConfig, pid: int, timeout: float) -> str:
    """Until ARI answers with our credentials and every module has loaded."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ProvisionError(
                f"Asterisk exited while starting; see {log_path(cfg)} and {cfg.console_log}:\n"
                + _tail(cfg.console_log))
        try:
            info = _ari_get(cfg, "/asterisk/info?only=system")
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code == 401:
                raise ProvisionError(
                    "ARI refused the configured user and password (check "
                    f"{cfg.root}/{cfg.etc}/generated/ari_users.conf)") from exc
        except (OSError, ValueError) as exc:
            last = str(exc)
        else:
            # ARI answers before the last modules (chan_pjsip, ...) have loaded.
            cli(cfg, "core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            return str(info["system"]["version"])  # type: ignore[index]
        time.sleep(0.1)
    raise ProvisionError(
        f"ARI did not answer at {cfg.probe_url} within {timeout:.0f}s ({last}); see "
        f"{log_path(cfg)}:\n" + _tail(log_path(cfg)))
