"""Riding out a database outage on the phone side: a caller on the line must not be hung up
because PostgreSQL restarts for a minor upgrade or the network to it blinks. Each database
step of a call waits (up to `patience` seconds) for the database to come back instead of
failing at once; the take is safe on Asterisk's disk meanwhile.

Two levels, because retrying is only safe where nothing could have been applied twice:
- getting a connection (`acquire`) is always retried: nothing was sent yet;
- a whole operation cut off mid-way is retried (`patiently`) only where running it again is
  harmless (reads, and writes that set a state rather than add a row)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg

log = logging.getLogger(__name__)

DEFAULT_PATIENCE = 30.0
_FIRST_DELAY, _MAX_DELAY = 0.05, 1.0

T = TypeVar("T")
P = ParamSpec("P")


def is_disconnect(exc: BaseException) -> bool:
    """The database is unreachable or went away (restart, shutdown, network), as opposed to a
    statement that failed on its own merits."""
    if isinstance(exc, (OSError, TimeoutError, asyncpg.PostgresConnectionError,
                        asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                        asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError)):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


async def _waiting(attempt: Callable[[], Awaitable[T]], patience: float, what: str) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = _FIRST_DELAY
    waited = False
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_disconnect(exc) or loop.time() + delay > deadline:
                raise
            if not waited:
                log.warning("database unreachable (%s: %s): %s waits for it, up to %.0f s",
                            type(exc).__name__, exc, what, patience)
                waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
            continue
        if waited:
            log.info("database back: %s goes on", what)
        return result


class PatientPool:
    """An asyncpg pool whose `acquire` waits out an unreachable database."""

    def __init__(self, pool: asyncpg.Pool, patience: float = DEFAULT_PATIENCE) -> None:
        self.pool = pool
        self.patience = patience

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await _waiting(self.pool.acquire, self.patience, "a call's database step")
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def execute(self, query: str, *args: Any) -> str:
        """One statement; retried whole when cut off, so it must be idempotent."""
        async def once() -> str:
            async with self.acquire() as conn:
                return str(await conn.execute(query, *args))
        return await _waiting(once, self.patience, "a statement")


class _HasPatientPool(Protocol):
    pool: PatientPool


S = TypeVar("S", bound=_HasPatientPool)


def patiently(method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]]
              ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Retry the whole operation when the database goes away during it: for operations that
    are harmless to run twice (a COMMIT cut off may or may not have applied)."""

    @functools.wraps(method)
    async def run(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await _waiting(lambda: method(self, *args, **kwargs), self.pool.patience,
                              method.__name__)

    return run
