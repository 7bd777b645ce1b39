"""Who owns a call-control application or a dialer account: a developer, named by username
when the operator makes it (`--developer`), so its calls show in that developer's console."""

from __future__ import annotations

from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter


async def developer_id(conn: Conn, username: str | None) -> int | None:
    """The developer's id, None for no owner; an unknown username is refused, by name."""
    if username is None:
        return None
    found = await conn.fetchval("SELECT id FROM developers WHERE username = $1", username)
    if found is None:
        raise InvalidParameter("developer", f"there is no developer {username[:64]!r} "
                               "(`ivr developer create` makes one)")
    return int(found)
