"""Brute-force throttling for every password the platform checks (developers' over /vr, /v1
and the console, dialer secrets, call-control app keys, list and recording passwords): one
service, its counts in Postgres (table auth_throttle) so that a restart or a second engine
keeps them.

Two counts for each check: the account's (what is guessed at) and the client address's (who
guesses). After `free` failures in a row, each further failure locks the key for twice as long
as the one before (1 s, 2 s, 4 s ...) up to a cap; while a key is locked its checks are refused
without the password being looked at (so a locked guesser also costs no Argon2 work). The
account's cap is short (IVR_AUTH_LOCK_MAX, a minute by default): anyone can fail on a victim's
account, so its lock only slows guessing; the address's cap is long, it hurts only the
guesser. A success clears the account's count, never the address's (an attacker who knows one
password of their own must not wipe their count with it). Counts older than the window start
again from zero."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import asyncpg

from ivr.core.errors import Throttled
from ivr.core.passwords import burn_time, verify_password

WINDOW_SECONDS = 900.0  # failures further apart than this do not add up
STALE_SECONDS = 3600.0  # a row idle this long is deleted (longer than any window here)

# The client address of the request being served (set by core/web.py's middleware for every
# request), so that a check deep in a service counts against it without every signature
# carrying it. None off the web (CLI, phone flows): the account's count alone.
CLIENT: ContextVar[str | None] = ContextVar("ivr_client_address", default=None)


@dataclass(frozen=True, slots=True)
class Limits:
    free: int = 5  # account failures before the first lock
    address_free: int = 30
    lock_max: float = 60.0
    address_lock_max: float = 900.0


class Throttle:
    def __init__(self, pool: asyncpg.Pool, limits: Limits | None = None) -> None:
        self.pool = pool
        self.limits = limits or Limits()

    def _keys(self, account: str) -> list[tuple[str, int, float]]:
        keys = [(account[:250], self.limits.free, self.limits.lock_max)]
        address = CLIENT.get()
        if address:
            keys.append((f"addr:{address}"[:250], self.limits.address_free,
                         self.limits.address_lock_max))
        return keys

    async def check(self, account: str) -> None:
        """Raises Throttled while the account or the client's address is locked."""
        keys = self._keys(account)
        wait = await self.pool.fetchval(
            "SELECT max(extract(epoch FROM locked_until - now())) FROM auth_throttle"
            " WHERE key = ANY($1) AND locked_until > now()", [k for k, _, _ in keys])
        if wait is not None:
            # A guess refused still counts against the address that keeps guessing (not
            # against the account: that would let anyone keep its owner out).
            await self._count(keys[1:])
            raise _throttled(float(wait))

    async def failed(self, account: str) -> None:
        await self._count(self._keys(account))

    async def _count(self, keys: list[tuple[str, int, float]]) -> None:
        if not keys:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            for key, free, cap in keys:
                failures = await conn.fetchval(
                    "INSERT INTO auth_throttle AS t (key, failures) VALUES ($1, 1)"
                    " ON CONFLICT (key) DO UPDATE SET last_failure = now(), failures ="
                    "  CASE WHEN t.last_failure < now() - make_interval(secs => $2) THEN 1"
                    "  ELSE t.failures + 1 END RETURNING failures", key, WINDOW_SECONDS)
                if failures > free:
                    lock = min(cap, 2.0 ** min(failures - free - 1, 30))
                    await conn.execute(
                        "UPDATE auth_throttle SET locked_until = now() + make_interval("
                        "secs => $2) WHERE key = $1", key, lock)
            # Stale rows go with the failures that would have renewed them: no sweeper needed.
            await conn.execute(
                "DELETE FROM auth_throttle WHERE ctid = ANY(ARRAY(SELECT ctid FROM"
                " auth_throttle WHERE last_failure < now() - make_interval(secs => $1)"
                " AND (locked_until IS NULL OR locked_until < now()) LIMIT 100))",
                STALE_SECONDS)

    async def admit(self, action: str, limit: int, window: float) -> bool:
        """One more `action` from the client's address (sign-ups): False once it has done it
        `limit` times in the last `window` seconds. True off the web (no address)."""
        address = CLIENT.get()
        if not address:
            return True
        count = await self.pool.fetchval(
            "INSERT INTO auth_throttle AS t (key, failures) VALUES ($1, 1)"
            " ON CONFLICT (key) DO UPDATE SET"
            "  failures = CASE WHEN t.last_failure < now() - make_interval(secs => $2) THEN 1"
            "  ELSE t.failures + 1 END,"
            "  last_failure = CASE WHEN t.last_failure < now() - make_interval(secs => $2)"
            "  THEN now() ELSE t.last_failure END RETURNING failures",
            f"{action}:{address}"[:250], window)
        return int(count) <= limit

    async def succeeded(self, account: str) -> None:
        await self.pool.execute("DELETE FROM auth_throttle WHERE key = $1", account[:250])

    async def verify(self, account: str, stored_hash: str | None, password: str) -> bool:
        """The password against the stored hash (None: no such account, checked against a
        dummy so the answer takes as long), unless a lock refuses it first (Throttled)."""
        async def check() -> bool:
            if stored_hash is None:
                await burn_time(password)
                return False
            return await verify_password(stored_hash, password)

        return await self.guard(account, check)

    async def guard(self, account: str, verify: Callable[[], Awaitable[bool]]) -> bool:
        """`verify()` (the password check) unless a lock refuses it first; its outcome is
        counted. Returns what verify returned."""
        await self.check(account)
        ok = await verify()
        if ok:
            await self.succeeded(account)
        else:
            await self.failed(account)
        return ok


def _throttled(wait: float) -> Throttled:
    seconds = max(1, math.ceil(wait))
    return Throttled(f"too many failed attempts: try again in {seconds} s",
                     retry_after=seconds)
