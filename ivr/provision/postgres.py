"""The embedded PostgreSQL default: where no server answers at IVR_DATABASE_URL on this machine,
the project starts its own cluster in a git-ignored folder (initdb / pg_ctl), run as the
`postgres` user because these machines' root lacks CAP_DAC_OVERRIDE and initdb refuses root.

The service's role (docs/security.md: Host hygiene): where IVR_DATABASE_URL names a user other
than `postgres` with a password, `ensure_role` makes it (or sets its password from .env) as a
non-superuser owning its database, over the Unix socket as the OS user `postgres` (peer
authentication: no superuser password exists anywhere). The project's own cluster takes only
scram-sha-256 over TCP."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ivr.core.errors import ProvisionError

Progress = Callable[[str], None]
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The project's own cluster: the OS user postgres over its socket, everyone else by password.
HBA = """local all postgres peer
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
SYSTEM_SOCKETS = Path("/var/run/postgresql")


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
    parts = urlsplit(url)
    if server_answers(url):
        if parts.hostname in _LOOPBACK and not logs_in(url):
            ensure_role(url)  # the machine's own server: its role, where we may make it
        return "external"
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
            [*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
             "--locale=C.UTF-8"],
            "initdb",
        )
    progress(f"starting the embedded PostgreSQL on port {parts.port or 5432} ...")
    log = state_dir / "postgres.log"
    log.touch()
    shutil.chown(log, "postgres", "postgres")
    hba = state_dir / "pg_hba.conf"  # also for a cluster made with trust before issue #20
    hba.write_text(HBA)
    shutil.chown(hba, "postgres", "postgres")
    opts = (f"-p {parts.port or 5432} -k {sockets} -c listen_addresses=127.0.0.1 "
            f"-c hba_file={hba}")
    _run(
        [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w",
         "-t", "60", "start"],
        f"pg_ctl start (log: {log})",
    )
    if not server_answers(url):
        raise ProvisionError(f"the embedded PostgreSQL started but does not answer; see {log}")
    ensure_role(url, sockets)
    return "embedded"


def role_sql(url: str) -> str:
    """What makes the URL's user the owner of its database, and nothing more: LOGIN with the
    password (SCRAM-hashed by the server), CREATEDB for the fresh databases the test suite and
    bench/ make (its own only), no SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    name = parts.path.lstrip("/")
    quoted = password.replace("'", "''")
    return f"""SELECT format('CREATE ROLE %I', '{user}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{user}') \\gexec
ALTER ROLE "{user}" WITH LOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS
  PASSWORD '{quoted}';
SELECT format('CREATE DATABASE %I OWNER %I', '{name}', '{user}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}') \\gexec
ALTER DATABASE "{name}" OWNER TO "{user}";
"""


def logs_in(url: str) -> bool:
    """Whether the URL's user logs in with its password (psql, the password in its
    environment: never in argv, where other users could read it)."""
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": unquote(parts.password or ""), "PGCONNECT_TIMEOUT": "5"}
    bare = parts._replace(netloc=f"{parts.username or 'postgres'}@{parts.hostname}:"
                                 f"{parts.port or 5432}").geturl()
    return subprocess.run(["psql", "-X", "-q", "-w", "-d", bare, "-c", "SELECT 1"], env=env,
                          capture_output=True).returncode == 0


def ensure_role(url: str, sockets: Path | None = None) -> bool:
    """Make the URL's user the database's owner (see role_sql), as the OS user postgres over
    the socket in `sockets` (the system's without). False when there is nothing to do (the
    user is postgres, or no password is set); ProvisionError saying what the operator runs
    when the socket is not ours to use."""
    parts = urlsplit(url)
    user = unquote(parts.username or "")
    if user in ("", "postgres") or not parts.password:
        return False
    if not all(c.isalnum() or c in "_-" for c in user + parts.path.lstrip("/")):
        raise ProvisionError("IVR_DATABASE_URL's user and database must be letters, digits, "
                             "'_' or '-'")
    socket_dir = sockets or SYSTEM_SOCKETS
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-h", str(socket_dir), "-p", str(parts.port or 5432), "-d", "postgres"],
        input=role_sql(url), capture_output=True, text=True)  # stdin: no password in argv
    if proc.returncode != 0:
        raise ProvisionError(
            f"could not make the PostgreSQL role {user!r} as the OS user postgres "
            f"({proc.stderr.strip()[-500:]}); as a superuser run: CREATE ROLE \"{user}\" LOGIN "
            f"CREATEDB PASSWORD '<IVR_DATABASE_PASSWORD>'; ALTER DATABASE ... OWNER TO "
            f"\"{user}\" (docs/security.md: Host hygiene)")
    return True


def stop_embedded(state_dir: Path) -> None:
    data = state_dir / "pgdata"
    bindir = _bindir()
    if bindir and (data / "postmaster.pid").exists():
        _run(
            ["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(data), "-m",
             "fast", "-w", "stop"],
            "pg_ctl stop",
        )
