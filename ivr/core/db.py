"""Postgres: the connection pool, making sure the database exists, and the migrations runner."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import asyncpg

from ivr.core.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# A connection or a pool's proxy for one: both answer the same calls, so the stores take either.
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"



class _OneLine(logging.Filter):
    """asyncpg logs a traceback each time it fails to refill the pool while the database is
    down (every second or so): one line, with the reason, says the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates this database.
_MIGRATION_LOCK = 0x1F0_0001


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name or "/" in name:
        raise ConfigError(f"IVR_DATABASE_URL must name a database, got path {name!r}")
    return name


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path="/" + name).geturl()


async def ensure_database(url: str) -> bool:
    """Create the URL's database if it does not exist. True when it was created."""
    name = database_name(url)
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot reach PostgreSQL: {exc}") from exc
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # another process won the race
        log.info("created database %s", name)
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class PooledConnection(asyncpg.Connection):
    """A pool's connection. Nothing here leaves session state on one (no session advisory
    locks, LISTEN, SET or cursors outside a transaction: those use connections of their own),
    so the reset query asyncpg sends on every release, a round trip per acquire on the calls'
    hot path, has nothing to undo. An open transaction is still rolled back."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, command_timeout=30, timeout=10,
            connection_class=PooledConnection,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot reach PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        head, _, rest = path.stem.partition("_")
        if not head.isdigit() or not rest:
            raise ConfigError(f"migration file {path.name} must be named NNNN_name.sql")
        version = int(head)
        if version in found:
            raise ConfigError(f"two migrations share version {version}: {path.name}")
        found[version] = Migration(version, rest, path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations, each in its own transaction, under an advisory lock so that two
    processes starting at once apply each migration exactly once. Returns versions applied."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done: list[int] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    log.warning("migration %04d_%s changed after it was applied", m.version, m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %04d_%s", m.version, m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def prepare_database(url: str) -> list[int]:
    """Make sure the database exists and is migrated; what `ivr migrate` and start-up run."""
    await ensure_database(url)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def run_with_pool(url: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """For a command line: the database made ready, `work` run on a small pool, the pool
    closed."""
    async def main() -> T:
        await prepare_database(url)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(main())
