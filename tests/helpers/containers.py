"""The operators' container stack (compose.yaml) built and run with podman on a machine without a
Docker engine or an image registry (../shared/design/asterisk.md, "Containers"):

- the base images are imported from local root file systems, each tagged by a hash of what made
  it, so a second run finds them: Debian sid is the root `ivr asterisk up` built (Asterisk
  already in it; its live configuration, logs and spool left out), Debian 12 a debootstrap;
- `Stack` reads compose.yaml itself (interpolating `${VAR}`, `${VAR:-default}`, `${VAR:?msg}`
  from the .env given) and turns each service into `podman build` and `podman run` with the
  flags these machines need: podman-compose 1.0.3 (Debian 12) puts every container on a
  bridge network of its own even with `network_mode`, which would touch the host's firewall.

Layers are podman's own cache (its storage persists on this machine): an unchanged image
rebuilds in seconds."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# crun fails with "cgroups in hybrid mode not supported"; `--ulimit host` is refused.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# Left out of the sid root's image: the running Asterisk's configuration (secrets), state, logs.
SID_EXCLUDE = ("./proc", "./dev", "./sys", "./run/*", "./tmp/*", "./etc/asterisk",
               "./etc/asterisk-*", "./etc/asterisk.new", "./var/log/asterisk*",
               "./var/spool/asterisk*", "./var/lib/asterisk-*",
               "./var/lib/asterisk/astdb.sqlite3", "./usr/sbin/policy-rc.d")
BOOKWORM = ("bookworm", "minbase")
LABEL = "io.ivr.test-pid"  # on the containers and volumes a test makes: whose they are
PACKAGES = ("podman", "runc")


def ensure_podman() -> None:
    """podman and runc, installed with apt-get when missing (as `make deps` does)."""
    missing = [p for p in PACKAGES if shutil.which(p) is None]
    if missing:
        run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", "install", "-y", *missing],
            timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    run([*PODMAN, "info", "--format", "{{.Host.OCIRuntime.Name}}"], timeout=60)


def run(cmd: list[str], *, timeout: float = 900, input: bytes | None = None,
        env: Mapping[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input,
                          env=None if env is None else dict(env))
    if check and done.returncode != 0:
        tail = (done.stderr.decode(errors="replace") or done.stdout.decode(errors="replace"))
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({done.returncode}):\n{tail[-3000:]}")
    return done.stdout.decode(errors="replace")


def image_exists(tag: str) -> bool:
    return subprocess.run(["podman", "image", "exists", tag]).returncode == 0


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    path = Path.home() / ".cache" / "ivr" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _import(root: Path, tag: str, exclude: tuple[str, ...]) -> None:
    tar = subprocess.Popen(["tar", "--numeric-owner", "--one-file-system", "-C", str(root),
                            *(f"--exclude={e}" for e in exclude), "-c", "."],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        done = subprocess.run(["podman", "import", "-", tag], stdin=tar.stdout,
                              capture_output=True, timeout=600)
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait(60)
    if done.returncode != 0:
        raise RuntimeError(f"podman import {tag} failed: {done.stderr.decode()[-2000:]}")
    if tar.returncode not in (0, 1):  # 1: a file changed while read (a live root's /var)
        raise RuntimeError(f"tar of {root} failed: "
                           f"{tar.stderr.read().decode() if tar.stderr else ''}")


def sid_base(root: Path) -> str:
    """The sid root `ivr asterisk up` built, as an image tagged by its marker (what is in it)."""
    marker = (root / ".ivr-built").read_bytes()
    key = hashlib.sha256(marker + repr(SID_EXCLUDE).encode()).hexdigest()[:12]
    tag = f"localhost/ivr-base-sid:{key}"
    with _locked("image-base-sid"):
        if not image_exists(tag):
            _import(root, tag, SID_EXCLUDE)
    return tag


def bookworm_base(mirror: str) -> str:
    """A debootstrap of Debian 12 (minbase), as an image tagged by the suite and the mirror."""
    key = hashlib.sha256(repr((*BOOKWORM, mirror)).encode()).hexdigest()[:12]
    tag = f"localhost/ivr-base-bookworm:{key}"
    with _locked("image-base-bookworm"):
        if image_exists(tag):
            return tag
        with tempfile.TemporaryDirectory(prefix="ivr-bookworm-") as tmp:
            root = Path(tmp) / "root"
            suite, variant = BOOKWORM
            run(["debootstrap", f"--variant={variant}", suite, str(root), mirror],
                timeout=1800)
            _import(root, tag, ("./proc", "./dev", "./sys", "./var/cache/apt/archives/*.deb"))
    return tag


# --- compose.yaml ------------------------------------------------------------------------------
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution, for the forms compose.yaml uses."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        got = env.get(name)
        unset = got is None or (got == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise RuntimeError(f"compose.yaml: {arg or name + ' is not set'}")
        if op in (":-", "-") and unset:
            return arg
        return got or ""

    return _VAR.sub(one, value)


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    """compose.yaml's services, run by podman as project `project`, interpolated from `env`
    (the .env file's values and the compose-only knobs)."""
    project: str
    env: dict[str, str]
    build_args: dict[str, dict[str, str]] = field(default_factory=dict)  # extra, per service
    build_volumes: dict[str, list[str]] = field(default_factory=dict)  # extra, per service
    started: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = yaml.safe_load((REPO / "compose.yaml").read_text())
        self.spec: dict[str, Any] = interpolate(spec, self.env)
        self.services: dict[str, dict[str, Any]] = self.spec["services"]
        # compose.yaml's image names, tagged for this project: a suite on another checkout
        # building at the same moment never runs this one's images (the layers are shared).
        for svc in self.services.values():
            svc["image"] = f"{str(svc['image']).rsplit(':', 1)[0]}:{self.project}"

    def order(self) -> list[str]:
        done: list[str] = []

        def visit(name: str) -> None:
            if name not in done:
                for dep in self.services[name].get("depends_on", []):
                    visit(dep)
                done.append(name)

        for name in self.services:
            visit(name)
        return done

    def build(self, name: str) -> str:
        svc = self.services[name]
        spec = svc["build"]
        args = {**spec.get("args", {}), **self.build_args.get(name, {})}
        cmd = ["podman", "build", "--isolation", "chroot", "--network", "host", "-q",
               "-f", str(REPO / spec.get("context", ".") / spec.get("dockerfile", "Dockerfile")),
               "-t", svc["image"]]
        for key, value in args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        for volume in self.build_volumes.get(name, []):
            cmd += ["--volume", volume]
        start = time.monotonic()
        run([*cmd, str(REPO / spec.get("context", "."))], timeout=1800)
        self.timings[f"build {name}"] = time.monotonic() - start
        return str(svc["image"])

    def build_all(self) -> None:
        """Every service's image, at once (they share no layer that is not already built)."""
        with ThreadPoolExecutor(len(self.services)) as pool:
            for future in [pool.submit(self.build, name) for name in self.services]:
                future.result()

    def container(self, name: str) -> str:
        return f"{self.project}-{name}"

    def up(self, name: str) -> None:
        svc = self.services[name]
        label = f"{LABEL}={os.getpid()}"
        cmd = [*PODMAN, "run", "-d", "--name", self.container(name), "--label", label,
               *RUN_FLAGS,
               "--network", svc.get("network_mode", "host")]
        env_file = svc.get("env_file")
        for path in [env_file] if isinstance(env_file, str) else env_file or []:
            cmd += ["--env-file", str(REPO / path)]
        for key, value in (svc.get("environment") or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for volume in svc.get("volumes", []):
            source, _, target = volume.partition(":")
            if "/" in source:
                cmd += ["-v", volume]
                continue
            run(["podman", "volume", "create", "--label", label, f"{self.project}_{source}"],
                timeout=60, check=False)  # labelled, so that a later run can find a stale one
            cmd += ["-v", f"{self.project}_{source}:{target}"]
        if svc.get("restart"):
            cmd += ["--restart", svc["restart"]]
        cmd.append(svc["image"])
        cmd += [str(a) for a in svc.get("command", [])]
        self.started.append(name)
        run(cmd, timeout=120)

    def logs(self, name: str) -> str:
        done = subprocess.run([*PODMAN, "logs", self.container(name)], capture_output=True,
                              timeout=30)
        return (done.stdout + done.stderr).decode(errors="replace")

    def exec(self, name: str, *args: str) -> str:
        return run([*PODMAN, "exec", self.container(name), *args], timeout=60)

    def down(self) -> None:
        for name in reversed(self.started):
            subprocess.run([*PODMAN, "rm", "-f", "-t", "5", self.container(name)],
                           capture_output=True, timeout=120)
        for volume in self.spec.get("volumes", {}) or {}:
            subprocess.run(["podman", "volume", "rm", "-f", f"{self.project}_{volume}"],
                           capture_output=True, timeout=60)
        for svc in self.services.values():  # the tag only: the layers stay in the cache
            subprocess.run(["podman", "untag", svc["image"], svc["image"]],
                           capture_output=True, timeout=60)
        self.started.clear()


def remove_stale() -> None:
    """Containers and volumes of test runs whose process is gone (killed mid-test)."""
    for kind, listing in (("container", ["ps", "-a"]), ("volume", ["volume", "ls"])):
        out = run([*PODMAN, *listing, "--filter", f"label={LABEL}", "--format",
                   f'{{{{.Name{"s" if kind == "container" else ""}}}}} '
                   f'{{{{index .Labels "{LABEL}"}}}}'], timeout=60, check=False)
        for line in out.splitlines():
            name, _, pid = line.partition(" ")
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                rm = ["rm", "-f"] if kind == "container" else ["volume", "rm", "-f"]
                subprocess.run([*PODMAN, *rm, name], capture_output=True, timeout=120)
