"""The engines of a pool as the database knows them (table `engines`): each beats every BEAT
seconds; one silent for STALE seconds is dead, and the survivor whose DELETE removes its row
(exactly one, whatever the number of survivors) takes its calls over on every node
(CallRunner.take_over). An engine that stops cleanly leaves the table itself: its calls ended
with its drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

BEAT = 2.0
STALE = 10.0  # five beats missed: a loaded engine is slow, not dead, before that


class EngineRegistry:
    def __init__(self, pool: asyncpg.Pool, app: str, url: str | None = None) -> None:
        self.pool = pool
        self.app = app
        self.url = url  # where it answers HTTP: call-control requests are passed on to it

    async def beat(self) -> None:
        await self.pool.execute(
            "INSERT INTO engines (app, url) VALUES ($1, $2)"
            " ON CONFLICT (app) DO UPDATE SET seen_at = now(), url = EXCLUDED.url",
            self.app, self.url)

    async def take_dead(self, stale: float = STALE) -> list[str]:
        """The engines silent for `stale` seconds, removed: the caller owns their calls now."""
        rows = await self.pool.fetch(
            "DELETE FROM engines WHERE app <> $1 AND seen_at < now() - make_interval(secs => $2)"
            " RETURNING app", self.app, stale)
        return [r["app"] for r in rows]

    async def leave(self) -> None:
        await self.pool.execute("DELETE FROM engines WHERE app = $1", self.app)


async def watch(registry: EngineRegistry, take_over: Callable[[set[str]], Awaitable[int]],
                ready: Callable[[], bool], *, beat: float = BEAT, stale: float = STALE) -> None:
    """Beat, and take over any engine found dead while `ready` (our event sockets are up: a
    call taken over needs them); until cancelled, then leave the pool."""
    try:
        while True:
            try:
                await registry.beat()
                dead = await registry.take_dead(stale) if ready() else []
                if dead:
                    taken = await take_over(set(dead))
                    log.warning("engine(s) %s stopped beating: %d call(s) taken over",
                                ", ".join(dead), taken)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("engine pool: %s", exc)
            await asyncio.sleep(beat)
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await registry.leave()
