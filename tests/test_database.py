import asyncio
from pathlib import Path

import asyncpg

from ivr.core import db


async def test_migrations_apply_in_order_and_are_recorded(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in db.load_migrations()]
    assert rows[0]["name"] == "calls"


async def test_two_processes_migrating_at_once_apply_each_migration_once(
    database_url: str, tmp_path: Path
) -> None:
    url = db.with_database(database_url, database_url.rsplit("/", 1)[1] + "_race")
    await db.drop_database(url)
    (tmp_path / "0001_a.sql").write_text(
        "CREATE TABLE a (id int); SELECT pg_sleep(0.3); INSERT INTO a VALUES (1);")
    (tmp_path / "0002_b.sql").write_text("INSERT INTO a VALUES (2);")
    migrations = db.load_migrations(tmp_path)
    await db.ensure_database(url)
    conns = [await asyncpg.connect(url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(db.migrate(c, migrations) for c in conns))
        assert sorted(results) == [[], [1, 2]]
        assert [r["id"] for r in await conns[0].fetch("SELECT id FROM a ORDER BY id")] == [1, 2]
    finally:
        for c in conns:
            await c.close()
        await db.drop_database(url)


async def test_a_failing_migration_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    url = db.with_database(database_url, database_url.rsplit("/", 1)[1] + "_fail")
    await db.drop_database(url)
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT nonsense;")
    await db.ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        try:
            await db.migrate(conn, db.load_migrations(tmp_path))
        except asyncpg.PostgresError:
            pass
        else:
            raise AssertionError("the bad migration should have failed")
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == [1]
        assert await conn.fetchval("SELECT to_regclass('half')") is None
    finally:
        await conn.close()
        await db.drop_database(url)


async def test_ensure_database_is_idempotent(database_url: str) -> None:
    assert await db.ensure_database(database_url) is False
