"""The trunks table (migration 0024)."""

from __future__ import annotations

import asyncpg

from ivr.core.errors import InvalidParameter, NotFound
from ivr.provision.trunks.model import Trunk

_COLUMNS = ("name", "host", "port", "transport", "username", "password", "realm", "register",
            "match", "caller_id", "id_style", "from_domain", "codecs", "did_from")


def _trunk(row: asyncpg.Record) -> Trunk:
    values = {c: row[c] for c in _COLUMNS}
    values["match"], values["codecs"] = tuple(row["match"]), tuple(row["codecs"])
    return Trunk(**values)


async def add(pool: asyncpg.Pool, trunk: Trunk) -> None:
    values = [getattr(trunk, c) for c in _COLUMNS]
    values[_COLUMNS.index("match")] = list(trunk.match)
    values[_COLUMNS.index("codecs")] = list(trunk.codecs)
    marks = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
    try:
        await pool.execute(f"INSERT INTO trunks ({', '.join(_COLUMNS)}) VALUES ({marks})",
                           *values)
    except asyncpg.UniqueViolationError:
        raise InvalidParameter("name", f"trunk {trunk.name} exists (`ivr trunk remove "
                               f"{trunk.name}` first to replace it)") from None


async def all_trunks(pool: asyncpg.Pool) -> list[Trunk]:
    rows = await pool.fetch(f"SELECT {', '.join(_COLUMNS)} FROM trunks ORDER BY name")
    return [_trunk(r) for r in rows]


async def get(pool: asyncpg.Pool, name: str) -> Trunk:
    row = await pool.fetchrow(f"SELECT {', '.join(_COLUMNS)} FROM trunks WHERE name = $1",
                              name)
    if row is None:
        raise NotFound(f"no trunk {name!r} (`ivr trunk list` shows them)")
    return _trunk(row)


async def remove(pool: asyncpg.Pool, name: str) -> None:
    if await pool.execute("DELETE FROM trunks WHERE name = $1", name) == "DELETE 0":
        raise NotFound(f"no trunk {name!r} (`ivr trunk list` shows them)")
