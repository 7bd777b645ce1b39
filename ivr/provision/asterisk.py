"""The project's own Asterisk 22, provisioned from code and idempotent.

No Docker engine runs on these machines, so Asterisk lives in a Debian sid root file system
(debootstrap) kept in a cache folder outside git, and runs chrooted as its own user: root here
may lack CAP_DAC_OVERRIDE, and Asterisk running as root then cannot read its 0640 files. Where
Docker runs, operators use asterisk-conf/Dockerfile with the same configuration.

The configuration is the repo's asterisk-conf/ and dialplan/, copied into ROOT/etc/asterisk on
every start, plus generated include files holding what comes from settings (ARI user, softphone
secret, app name, addresses); secrets never live in git. A change to any of it restarts Asterisk;
an unchanged, healthy Asterisk is left alone. State (pid file, config digest, console output,
lock) lives next to ROOT, in ROOT's parent folder.

Nothing here may delete what it did not create: a folder is only ever removed after checking that
no file system (the /proc and /dev binds) is mounted below it."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
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

from ivr.core.errors import ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig, render
from ivr.provision.asterisk_conf import digest as config_digest

__all__ = [
    "AsteriskConfig", "AsteriskInfo", "AsteriskStatus", "ProvisionError", "cli", "down",
    "log_path", "rest_api_dir", "spool_recording_dir", "status", "up",
]

Progress = Callable[[str], None]
# What the root gets: Asterisk, its English prompts (wav), hold music for ARI's /moh, and CA
# certificates so sound:https://... prompts (res_http_media_cache, libcurl) verify.
PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav",
            "ca-certificates")
# APT::Sandbox::User=root: apt downloads as _apt by default, and a root without
# CAP_DAC_OVERRIDE then cannot move those files into place.
_APT = ("apt-get", "-q", "-o", "Acquire::Check-Valid-Until=false", "-o", "Dpkg::Use-Pty=0",
        "-o", "APT::Sandbox::User=root")
_CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
               "LANG": "C.UTF-8", "HOME": "/root"}
_MARKER = ".ivr-built"  # in ROOT: JSON {"asterisk": version, "packages": [...]}
# Folders Asterisk writes to (paths inside the root); they belong to its user.
_WRITABLE = ("var/lib/asterisk", "var/spool/asterisk", "var/log/asterisk", "var/run/asterisk",
             "var/cache/asterisk")


@dataclass(frozen=True)
class AsteriskInfo:
    version: str
    pid: int
    ari_url: str
    started: bool  # False when an already running Asterisk was kept as it was

    def __str__(self) -> str:
        how = "started" if self.started else "already running"
        return f"Asterisk {self.version} ({how}, pid {self.pid}), ARI at {self.ari_url}"


@dataclass(frozen=True)
class AsteriskStatus:
    built: bool
    running: bool
    pid: int | None
    ari: bool  # ARI answers with the configured credentials
    version: str
    channels: int | None
    log: Path

    def __str__(self) -> str:
        if not self.built:
            return "Asterisk: not built yet (`ivr asterisk up` builds it)"
        if not self.running:
            return f"Asterisk {self.version}: built, not running (log: {self.log})"
        ari = f"ARI answering, {self.channels} channel(s)" if self.ari else "ARI not answering"
        return f"Asterisk {self.version}: running (pid {self.pid}), {ari}; log: {self.log}"


# --- public ---------------------------------------------------------------------------------
def up(cfg: AsteriskConfig, *, timeout: float = 180.0,
       progress: Progress = print) -> AsteriskInfo:
    """Build the root if needed, write the configuration, start Asterisk unless it already runs
    with this very configuration, and return once ARI answers. Safe to call concurrently."""
    files = render(cfg)  # validates the settings before anything is touched
    digest = config_digest(files)
    with _flocked(cfg.root_lockfile, fcntl.LOCK_EX):
        _ensure_root(cfg, progress)
    with _lock(cfg):
        running = _running_with(cfg, digest)
        if running is not None:
            return running
    # Waited for outside _lock, so that a suite holding the use lock can still call up().
    with _exclusive_use(cfg, progress), _lock(cfg):
        running = _running_with(cfg, digest)
        if running is not None:
            return running
        pid = _find_pid(cfg)
        if pid is not None:
            same = _read(cfg.digest_file) == digest
            progress("configuration changed: restarting Asterisk" if not same
                     else "Asterisk runs but ARI does not answer: restarting it")
            _stop(cfg, pid, progress)
        cfg.digest_file.unlink(missing_ok=True)
        _write_config(cfg, files)
        _prepare_dirs(cfg)
        _wait_ports_free(cfg)
        _mount(cfg.root)
        progress("starting Asterisk ...")
        pid = _start(cfg)
        progress("waiting for ARI ...")
        try:
            version = _wait_ready(cfg, pid, timeout)
        except ProvisionError:
            with contextlib.suppress(ProvisionError):
                _stop(cfg, pid, lambda line: None)
            raise
        cfg.digest_file.write_text(digest + "\n")
        return AsteriskInfo(version, pid, cfg.ari_url, True)


def down(cfg: AsteriskConfig, *, progress: Progress = print, purge: bool = False) -> None:
    """Stop Asterisk (core stop now, then SIGTERM, then SIGKILL) and unmount /proc and /dev.
    An instance leaves the mounts to the others; with `purge` its folders and state go too."""
    with _lock(cfg):
        pid = _find_pid(cfg)
        if pid is not None:
            progress(f"stopping Asterisk (pid {pid}) ...")
            _stop(cfg, pid, progress)
        cfg.pidfile.unlink(missing_ok=True)
        cfg.digest_file.unlink(missing_ok=True)
        if cfg.root.exists() and not cfg.instance:  # the mounts serve every instance
            _unmount(cfg.root)
        if purge and cfg.instance:
            for rel in (cfg.etc, *cfg.dirs.values()):
                folder = _inside(cfg.root, rel)
                if folder.exists():
                    _remove_tree(folder)
            for path in (cfg.console_log, cfg.usefile):
                path.unlink(missing_ok=True)
    if purge and cfg.instance:
        cfg.lockfile.unlink(missing_ok=True)


def status(cfg: AsteriskConfig) -> AsteriskStatus:
    marker = _marker(cfg.root)
    pid = _find_pid(cfg) if marker else None
    info = _ari_info(cfg) if pid is not None else None
    channels = None
    if info is not None:
        with contextlib.suppress(OSError, ValueError):
            listed = _ari_get(cfg, "/channels")
            channels = len(listed) if isinstance(listed, list) else None
    # The package version without its epoch ("1:22.10.1+dfsg...") reads as ARI reports it.
    version = (str(info["system"]["version"]) if info
               else str(marker.get("asterisk", "")).split(":", 1)[-1])
    return AsteriskStatus(built=bool(marker), running=pid is not None, pid=pid,
                          ari=info is not None, version=version, channels=channels,
                          log=log_path(cfg))


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


@contextlib.contextmanager
def in_use(cfg: AsteriskConfig) -> Iterator[None]:
    """Hold while depending on the running Asterisk (a test suite does, for its whole run):
    `up()` with a different configuration then waits instead of restarting it underneath."""
    with _flocked(cfg.usefile, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def sole_user(cfg: AsteriskConfig) -> Iterator[bool]:
    """True inside when nobody holds `in_use` (no suite depends on Asterisk right now)."""
    with _flocked(cfg.usefile, fcntl.LOCK_EX, wait=False) as held:
        yield held


def channels(cfg: AsteriskConfig) -> list[dict[str, object]]:
    listed = _ari_get(cfg, "/channels")
    return listed if isinstance(listed, list) else []


# --- helpers ---------------------------------------------------------------------------------
def _running_with(cfg: AsteriskConfig, digest: str) -> AsteriskInfo | None:
    """The running Asterisk, when it runs this very configuration and ARI answers."""
    pid = _find_pid(cfg)
    if pid is None or _read(cfg.digest_file) != digest:
        return None
    info = _ari_info(cfg)
    if info is None:
        return None
    return AsteriskInfo(str(info["system"]["version"]), pid, cfg.ari_url, False)


@contextlib.contextmanager
def _flocked(path: Path, mode: int, *, wait: bool = True,
             on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """An flock on `path` for the block. Tried without waiting first: when it is held
    elsewhere, `on_wait` is told, then it waits — or, with wait=False, the block runs without
    the lock and gets False."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, mode)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _exclusive_use(cfg: AsteriskConfig, progress: Progress) -> Iterator[None]:
    def waiting() -> None:
        progress("Asterisk is in use by a running test suite with another configuration; "
                 "waiting for it to finish before restarting ...")

    with _flocked(cfg.usefile, fcntl.LOCK_EX, on_wait=waiting):
        yield


@contextlib.contextmanager
def _lock(cfg: AsteriskConfig) -> Iterator[None]:
    with _flocked(cfg.lockfile, fcntl.LOCK_EX):
        yield


def _run(cmd: list[str], what: str, *, env: dict[str, str] | None = None,
         timeout: float = 900) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise ProvisionError(f"{what}: {exc.filename} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{what}: no answer after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        raise ProvisionError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- the root file system --------------------------------------------------------------------
def _marker(root: Path) -> dict[str, object]:
    text = _read(root / _MARKER)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:  # an early format: just the version
        return {"asterisk": text, "packages": ["asterisk", "asterisk-core-sounds-en-wav"]}
    return data if isinstance(data, dict) else {}


def _mirror(cfg: AsteriskConfig) -> str:
    """The Debian mirror this machine's apt already uses for its own suite (sid is served by
    the same mirror); deb.debian.org when none is found."""
    if cfg.debian_mirror:
        return cfg.debian_mirror.rstrip("/")
    codename = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    entries: list[tuple[str, list[str]]] = []  # (url, suites)
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.name.endswith((".list", ".sources")):
            continue
        with contextlib.suppress(OSError):
            text = path.read_text()
            if path.name.endswith(".list"):
                for line in text.splitlines():
                    words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
                    if len(words) >= 3 and words[0] == "deb":
                        entries.append((words[1], [words[2]]))
            else:
                for stanza in re.split(r"\n\s*\n", text):
                    fields = dict(
                        (k.strip(), v.strip()) for k, _, v in
                        (ln.partition(":") for ln in stanza.splitlines()
                         if ":" in ln and not ln.lstrip().startswith("#"))
                    )
                    if "deb" in fields.get("Types", "").split():
                        for url in fields.get("URIs", "").split():
                            entries.append((url, fields.get("Suites", "").split()))
    for url, suites in entries:
        if codename and codename in suites and url.startswith(("http://", "https://")):
            return url.rstrip("/")
    return "http://deb.debian.org/debian"


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) if path.exists() else str(path)
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _remove_tree(path: Path) -> None:
    """rmtree, but never through a mount (a bind of /dev below it would empty the host's)."""
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True)
        if point in _mounts_under(path):
            subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ProvisionError(f"cannot remove {path}: still mounted below it: {', '.join(left)}")
    _own(path, 0, 0)  # folders of other users (apt's partial/, asterisk's) become listable
    shutil.rmtree(path)


def _chroot(root: Path, *args: str, what: str, timeout: float = 900) -> str:
    return _run(["chroot", str(root), *args], what, env=_CHROOT_ENV, timeout=timeout)


def _apt(root: Path, *args: str, what: str, attempts: int = 3) -> None:
    """apt-get in the root, retried: the package registry sometimes answers 404 for a moment."""
    # apt runs as root here (APT::Sandbox::User=root): its download folders, made for the _apt
    # user by an earlier run, must be root's, or a root without CAP_DAC_OVERRIDE cannot use them.
    for rel in ("var/lib/apt/lists/partial", "var/lib/apt/lists/auxfiles",
                "var/cache/apt/archives/partial"):
        with contextlib.suppress(FileNotFoundError):
            _own(root / rel, 0, 0)
    for attempt in range(1, attempts + 1):
        try:
            _chroot(root, *_APT, *args, what=what)
            return
        except ProvisionError:
            if attempt == attempts:
                raise
            time.sleep(3 * attempt)


def _ensure_root(cfg: AsteriskConfig, progress: Progress) -> None:
    marker = _marker(cfg.root)
    if marker:
        have = marker.get("packages")
        missing = [p for p in PACKAGES if not isinstance(have, list) or p not in have]
        if missing:  # a root built by an earlier version of this file
            progress(f"adding {' '.join(missing)} to the Asterisk root ...")
            _mount(cfg.root)
            _apt(cfg.root, "update", what="apt-get update (sid)")
            _apt(cfg.root, "install", "-y", "--no-install-recommends", *missing,
                 what=f"apt-get install {' '.join(missing)}")
            _chroot(cfg.root, "apt-get", "clean", what="apt-get clean")
            _write_marker(cfg.root)
        return
    if cfg.root.exists() and any(cfg.root.iterdir()):
        raise ProvisionError(
            f"{cfg.root} exists but is not an Asterisk root built by ivr (no {_MARKER} in it): "
            "remove it, or point IVR_ASTERISK_ROOT elsewhere")
    if shutil.which("debootstrap") is None:
        _install_debootstrap(progress)
    if shutil.which("chroot") is None:
        raise ProvisionError("chroot is not installed (it is part of coreutils)")
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    building = cfg.root.with_name(cfg.root.name + ".building")
    if building.exists():  # an interrupted build: never trust half a root
        progress(f"removing an unfinished build in {building} ...")
        _remove_tree(building)
    mirror = _mirror(cfg)
    progress(f"building a Debian sid root in {cfg.root} from {mirror} "
             "(first time only, about a minute) ...")
    try:
        _run(["debootstrap", "--variant=minbase", "sid", str(building), mirror],
             "debootstrap sid", timeout=1800)
        # No service may start inside the root while packages install.
        policy = building / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        progress(f"installing {' '.join(PACKAGES)} in it ...")
        _mount(building)
        try:
            # The mirror's sid Release file may be past its Valid-Until date.
            _apt(building, "update", what="apt-get update (sid)")
            _apt(building, "install", "-y", "--no-install-recommends", *PACKAGES,
                 what="apt-get install asterisk")
            _chroot(building, "apt-get", "clean", what="apt-get clean")
        finally:
            _unmount(building)
        # Keep the package's sample configuration aside: only the project's files are read.
        (building / "etc/asterisk").rename(building / "etc/asterisk.dist")
        _write_marker(building)
        building.rename(cfg.root)  # the root appears complete, or not at all
    except BaseException:
        with contextlib.suppress(Exception):
            if building.exists():
                _remove_tree(building)
        raise
    version = str(_marker(cfg.root).get("asterisk", "")).split(":", 1)[-1]
    progress(f"Asterisk {version} installed in {cfg.root}")


def _install_debootstrap(progress: Progress) -> None:
    progress("debootstrap is missing: apt-get install debootstrap ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "debootstrap"]
    hint = "; install it by hand: apt-get install debootstrap"
    try:
        _run(install, "apt-get install debootstrap", env=env)
    except ProvisionError:  # a fresh machine may have no package lists yet
        _run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", "update"],
             "apt-get update" + hint, env=env)
        _run(install, "apt-get install debootstrap" + hint, env=env)
    if shutil.which("debootstrap") is None:
        raise ProvisionError("debootstrap is still not on PATH after installing it" + hint)


def _write_marker(root: Path) -> None:
    version = _chroot(root, "dpkg-query", "-W", "-f=${Version}", "asterisk",
                      what="dpkg-query asterisk").strip()
    (root / _MARKER).write_text(json.dumps({"asterisk": version, "packages": list(PACKAGES)}))


def _inside(root: Path, path: str) -> Path:
    """ROOT/path with symlinks resolved the way the chroot sees them (ROOT/var/run points to
    /run, which outside the chroot would be the host's /run)."""
    current = root
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise ProvisionError(f"symlink loop at {candidate}")
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                current = root
            continue
        current = candidate
    return current


# --- configuration ---------------------------------------------------------------------------
def _ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    raise ProvisionError(f"no asterisk user in {root}/etc/passwd: remove {root} to rebuild it")


def _write_config(cfg: AsteriskConfig, files: dict[str, bytes]) -> None:
    """ROOT/etc/asterisk: owned by root, group asterisk, 0750 folders and 0640 files. Asterisk
    reads it through its group; root rewrites it without needing CAP_DAC_OVERRIDE (files owned
    by asterisk would be unreadable to such a root), and Asterisk cannot alter it."""
    _, gid = _ids(cfg.root)
    etc = cfg.root / cfg.etc
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


def _own(path: Path, uid: int, gid: int) -> None:
    """chown -R that works without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: a folder is handed
    to root before it is listed; folders that still cannot be listed are skipped."""
    try:
        st = path.lstat()
    except OSError:
        return
    is_dir = path.is_dir() and not path.is_symlink()
    if is_dir:
        if st.st_uid != 0:
            os.lchown(path, 0, st.st_gid)
        with contextlib.suppress(PermissionError):
            for child in path.iterdir():
                _own(child, uid, gid)
    if (st.st_uid, st.st_gid) != (uid, gid) or is_dir:
        os.lchown(path, uid, gid)


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


# --- mounts and the process ------------------------------------------------------------------
def _mounted(point: Path) -> bool:
    target = str(point.resolve())
    with open("/proc/self/mountinfo") as info:
        return any(_unescape(line.split()[4]) == target for line in info)


def _mount(root: Path) -> None:
    for sub, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
        point = root / sub
        point.mkdir(exist_ok=True)
        if not _mounted(point):
            _run(["mount", *args, str(point)], f"mount {point}")


def _unmount(root: Path) -> None:
    for sub in ("dev", "proc"):
        point = root / sub
        for _ in range(5):  # mounts may be stacked by earlier sessions
            if not (point.exists() and _mounted(point)):
                break
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
        if point.exists() and _mounted(point):
            raise ProvisionError(f"cannot unmount {point}: `umount -l {point}` by hand")


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
