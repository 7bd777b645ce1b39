"""The project's own Asterisk 22, provisioned from code and idempotent.

No Docker engine runs on these machines, so Asterisk lives in a Debian sid root file system
(debootstrap, provision/chroot.py) kept in a cache folder outside git, and runs chrooted as its
own user (provision/asterisk_run.py): root here may lack CAP_DAC_OVERRIDE, and Asterisk running
as root then cannot read its 0640 files. In a container (asterisk-conf/Dockerfile,
compose.yaml), provision/container.py writes the same configuration with the same code.

The configuration is the repo's asterisk-conf/ and dialplan/, copied into ROOT/etc/asterisk on
every start, plus generated include files holding what comes from settings (ARI user, softphone
secret, app name, addresses); secrets never live in git. A change to any of it restarts Asterisk;
an unchanged, healthy Asterisk is left alone. State (pid file, config digest, console output,
lock) lives next to ROOT, in ROOT's parent folder."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ivr.core.errors import ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig, render
from ivr.provision.asterisk_conf import digest as config_digest
from ivr.provision.asterisk_run import (
    _ari_get,
    _ari_info,
    _find_pid,
    _prepare_dirs,
    _start,
    _stop,
    _wait_ports_free,
    _wait_ready,
    _write_config,
    cli,
    log_path,
    rest_api_dir,
    spool_recording_dir,
)
from ivr.provision.chroot import (
    Progress,
    _ensure_root,
    _inside,
    _marker,
    _mount,
    _read,
    _remove_tree,
    _unmount,
)

__all__ = [
    "AsteriskConfig", "AsteriskInfo", "AsteriskStatus", "ProvisionError", "build_root", "cli",
    "down",
    "log_path", "rest_api_dir", "spool_recording_dir", "status", "up",
]


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
    build_root(cfg, progress=progress)
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


def build_root(cfg: AsteriskConfig, *, progress: Progress = print) -> None:
    """The sid root, built (or extended) if it is not yet: all a second instance needs, without
    touching the root's own running Asterisk."""
    with _flocked(cfg.root_lockfile, fcntl.LOCK_EX):
        _ensure_root(cfg, progress)


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


@contextlib.contextmanager
def in_use(cfg: AsteriskConfig) -> Iterator[None]:
    """Hold while depending on the running Asterisk (a test suite does, for its whole run):
    `up()` with a different configuration then waits instead of restarting it underneath."""
    with _flocked(cfg.usefile, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def held(cfg: AsteriskConfig, *, progress: Progress = print) -> Iterator[AsteriskInfo]:
    """`up(cfg)`, then `in_use` for the block: Asterisk runs this very configuration until the
    block ends (a suite or the bench that wants another one waits for it)."""
    digest = config_digest(render(cfg))
    while True:
        info = up(cfg, progress=progress)
        with in_use(cfg):
            with _lock(cfg):
                running = _running_with(cfg, digest)
            if running is not None:
                yield running if not info.started else info
                return
        # Restarted with another configuration between the two: up() again.


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


