"""Argon2id for every password we keep (developers' and the list/recording/recorder ones).
Hashing runs off the event loop. MyVox clients send the developer's password with every
command, so a successful verification is remembered in memory, keyed by the stored hash (a new
password means a new hash, so the memory goes stale by itself) and a keyed digest of the
password (so the memory never holds a password)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret_raw

# OWASP's minimum Argon2id profile: 19 MiB, 2 passes; enough against offline guessing,
# cheap enough for 50 concurrent requests.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_PEPPER = secrets.token_bytes(32)
_VERIFIED: set[tuple[str, bytes]] = set()
_MAX_REMEMBERED = 10_000


def _digest(password: str) -> bytes:
    return hmac.new(_PEPPER, password.encode(), hashlib.sha256).digest()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored_hash: str, password: str) -> bool:
    remembered = (stored_hash, _digest(password))
    if remembered in _VERIFIED:
        return True
    try:
        ok = await asyncio.to_thread(_HASHER.verify, stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok:
        if len(_VERIFIED) >= _MAX_REMEMBERED:
            _VERIFIED.clear()
        _VERIFIED.add(remembered)
    return bool(ok)


# Verifying against this when a username does not exist keeps the answer time the same.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


async def burn_time(password: str) -> None:
    await verify_password(_DUMMY_HASH, password)


def _lookup(password: str, scope: str) -> bytes:
    salt = hashlib.sha256(b"ivr-asset-lookup\0" + scope.encode()).digest()[:16]
    return hash_secret_raw(password.encode(), salt, time_cost=_HASHER.time_cost,
                           memory_cost=_HASHER.memory_cost, parallelism=1, hash_len=32,
                           type=Type.ID)


async def lookup_digest(password: str, scope: str) -> bytes:
    """Argon2id of `password` with a salt from `scope` (a voice recorder's key): the same for
    every object in the scope, so one search compares one digest with many rows. The cost of
    each guess offline stays Argon2's; a guess tests a whole recorder's objects at once."""
    return await asyncio.to_thread(_lookup, password, scope)
