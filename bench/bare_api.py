"""The API benchmark's yardstick: a bare aiohttp + asyncpg server answering the same queries
as GetSessionStatus and GetRecordingList (the recorder store's own SQL), with no
authentication, no expiry sweep, no MyVox rendering: what the framework and the database
cost by themselves.

    python -m bench.bare_api DATABASE_URL PORT"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from ivr.recorder.store.recordings import _RECORDING_SELECT
from ivr.recorder.store.sessions import _SESSION_SELECT

POOL = web.AppKey("pool", asyncpg.Pool)


def _json(value: Any) -> web.Response:
    return web.Response(body=orjson.dumps(value, default=str), content_type="application/json")


async def session_status(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        session = await conn.fetchrow(_SESSION_SELECT + " WHERE s.session_key = $1",
                                      request.query["key"])
        if session is None:
            raise web.HTTPNotFound()
        recordings = await conn.fetch(
            _RECORDING_SELECT + " JOIN session_recordings s ON s.recording_id = r.id"
            " WHERE s.session_id = $1 ORDER BY r.sequence, r.id", session["id"])
    return _json({"session": dict(session), "recordings": [dict(r) for r in recordings]})


async def recording_list(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE recording_lists SET accessed_at = now() WHERE list_key = $1 RETURNING *",
            request.query["key"])
    if row is None:
        raise web.HTTPNotFound()
    return _json(dict(row))


def main() -> None:
    url, port = sys.argv[1], int(sys.argv[2])

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        # The engine's pool size (ivr.core.db.create_pool).
        app[POOL] = await asyncpg.create_pool(url, min_size=2, max_size=10)
        yield
        await app[POOL].close()

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/session", session_status)
    app.router.add_get("/list", recording_list)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
