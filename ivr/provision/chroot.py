"""The Debian sid root file system Asterisk runs from (debootstrap, kept in a cache folder
outside git), its /proc and /dev binds, and the file ownership a root without CAP_DAC_OVERRIDE
needs. Nothing here may delete what it did not create: a folder is only ever removed after
checking that no file system is mounted below it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ivr.core.errors import ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig

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


def _ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    raise ProvisionError(f"no asterisk user in {root}/etc/passwd: remove {root} to rebuild it")


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


