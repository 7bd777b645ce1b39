"""The embedded PostgreSQL default: where no server answers at IVR_DATABASE_URL on this machine,
the project starts its own cluster in a git-ignored folder (initdb / pg_ctl), run as the
`postgres` user because these machines' root lacks CAP_DAC_OVERRIDE and initdb refuses root."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ivr.core.errors import ProvisionError

Progress = Callable[[str], None]
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout):
            return True
    except OSError:
        return False


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProvisionError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")


def ensure_server(url: str, state_dir: Path, progress: Progress = print) -> str:
    """Make sure a PostgreSQL server answers at `url`. Returns "external" when one already did,
    "embedded" when this started (or found) the project's own cluster under `state_dir`."""
    if server_answers(url):
        return "external"
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK:
        raise ProvisionError(
            f"no PostgreSQL answers at {parts.hostname}:{parts.port or 5432} "
            "(IVR_DATABASE_URL); start it, or point IVR_DATABASE_URL at a local port"
        )
    bindir = _bindir()
    if bindir is None:
        progress("installing PostgreSQL server (Debian package postgresql) ...")
        _run(["apt-get", "install", "-y", "-q", "postgresql"], "apt-get install postgresql")
        bindir = _bindir()
        if bindir is None:
            raise ProvisionError("postgresql installed but initdb not found")
    data = state_dir / "pgdata"
    sockets = state_dir / "pgsock"
    user = parts.username or "postgres"
    as_pg = ["runuser", "-u", "postgres", "--"]
    state_dir.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    shutil.chown(sockets, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        progress(f"creating the embedded PostgreSQL cluster in {data} ...")
        if data.exists():
            shutil.rmtree(data)  # a half-made cluster from an interrupted initdb
        data.mkdir(mode=0o700)
        shutil.chown(data, "postgres", "postgres")
        _run(
            [*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
             "-E", "UTF8", "--locale=C.UTF-8"],
            "initdb",
        )
    progress(f"starting the embedded PostgreSQL on port {parts.port or 5432} ...")
    log = state_dir / "postgres.log"
    log.touch()
    shutil.chown(log, "postgres", "postgres")
    opts = f"-p {parts.port or 5432} -k {sockets} -c listen_addresses=127.0.0.1"
    _run(
        [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w",
         "-t", "60", "start"],
        f"pg_ctl start (log: {log})",
    )
    if not server_answers(url):
        raise ProvisionError(f"the embedded PostgreSQL started but does not answer; see {log}")
    return "embedded"


def stop_embedded(state_dir: Path) -> None:
    data = state_dir / "pgdata"
    bindir = _bindir()
    if bindir and (data / "postmaster.pid").exists():
        _run(
            ["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(data), "-m",
             "fast", "-w", "stop"],
            "pg_ctl stop",
        )
