"""RecorderService, first part: developers and the operator's phone numbers (the chain of parts
is described in service.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound, Unauthorized
from ivr.core.passwords import hash_password
from ivr.core.throttle import Throttle
from ivr.delivery.outbox import DEFAULT_RETRY_FOR
from ivr.recorder import events, numbers, store
from ivr.recorder.errors import MailNotConfigured, SignupClosed, SignupsTooFast, UsernameTaken
from ivr.recorder.models import ApiToken, Developer, PhoneNumber
from ivr.recorder.rules import USERNAME, check_new_password

TOKEN_DAYS = 90  # a token's lifetime unless its maker chose another
MAX_TOKEN_DAYS = 365


class AccountOps:
    def __init__(self, pool: asyncpg.Pool, data_dir: Path, *, open_signup: bool,
                 public_url: str = "", retry_for: float = DEFAULT_RETRY_FOR,
                 throttle: Throttle | None = None, max_recorders: int = 20,
                 signups_per_hour: int = 5, allow_private_urls: bool = False) -> None:
        self.pool = pool
        self.throttle = throttle or Throttle(pool)
        self.max_recorders = max_recorders  # per developer (IVR_MAX_RECORDERS)
        self.signups_per_hour = signups_per_hour  # per client address (IVR_SIGNUP_PER_HOUR)
        self.allow_private_urls = allow_private_urls  # callbacks to private addresses (dev)
        self.data_dir = data_dir
        self.open_signup = open_signup
        # Events carry recordings as the API shows them: links need the public URL.
        self.events = events.RecorderEvents.for_settings(data_dir, public_url, retry_for)

    async def _expire_due(self, conn: Conn) -> None:
        async with conn.transaction():
            await self.events.sessions(conn, await store.expire_due(conn),
                                       events.SESSION_EXPIRED)

    async def create_developer(self, username: str, password: str, *, email: str = "",
                               name: str = "", by_operator: bool = False) -> Developer:
        if not by_operator and not self.open_signup:
            raise SignupClosed("sign-up is closed on this server; ask the operator for an account")
        if not USERNAME.match(username):
            raise InvalidParameter("username", "username must be 3 to 64 letters, digits, "
                                   "'.', '_', '@' or '-', starting with a letter or digit")
        check_new_password("password", password)
        if not by_operator and not await self.throttle.admit("signup", self.signups_per_hour,
                                                              3600.0):
            raise SignupsTooFast(f"at most {self.signups_per_hour} accounts an hour may be made "
                                 "from one address; try again later")
        password_hash = await hash_password(password)
        try:
            async with self.pool.acquire() as conn:
                return await store.insert_developer(conn, username, password_hash, email, name)
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(f"username '{username}' is not available") from None

    async def authenticate(self, username: str, password: str) -> Developer:
        async with self.pool.acquire() as conn:
            found = await store.developer_credentials(conn, username)
        # One count per developer name, whichever face (/vr, /v1, the console) is used.
        stored = None if found is None else found[1]
        if not await self.throttle.verify(f"developer:{username}", stored, password) \
                or found is None:
            raise Unauthorized("authentication failed: unknown username or wrong password")
        return found[0]

    async def authenticate_token(self, token: str) -> Developer:
        async with self.pool.acquire() as conn:
            developer = await store.developer_by_token(conn, keys.token_digest(token))
        if developer is None:
            raise Unauthorized("authentication failed: unknown, revoked or expired token")
        return developer

    async def create_token(self, developer: Developer, name: str = "",
                           lifetime_days: int = TOKEN_DAYS) -> str:
        """A new bearer token, returned this once (only its SHA-256 is kept)."""
        name = name.strip()
        if len(name) > 100:
            raise InvalidParameter("name", "Name: at most 100 characters")
        if not 1 <= lifetime_days <= MAX_TOKEN_DAYS:
            raise InvalidParameter("lifetime_days", f"Expires after: 1 to {MAX_TOKEN_DAYS} days")
        token = keys.new_token()
        async with self.pool.acquire() as conn:
            await store.insert_token(conn, developer.id, keys.token_digest(token), name,
                                     lifetime_days * 86400.0)
        return token

    async def tokens(self, developer: Developer) -> list[ApiToken]:
        async with self.pool.acquire() as conn:
            return await store.tokens_of(conn, developer.id)

    async def revoke_token(self, developer: Developer, token_id: int) -> None:
        async with self.pool.acquire() as conn:
            if not await store.delete_token(conn, developer.id, token_id):
                raise NotFound(f"there is no API token {token_id} among yours")

    async def set_developer(self, developer: Developer, changes: Mapping[str, Any]) -> Developer:
        changes = {k: ("" if v is None else v) for k, v in changes.items()}
        if not changes:
            return developer
        async with self.pool.acquire() as conn:
            return await store.update_developer(conn, developer.id, changes)

    async def change_password(self, developer: Developer, new_password: str) -> int:
        """A new password, and every API token of the developer revoked with it (a leaked
        token must not outlive the password); returns how many were revoked. Console sign-ins
        made before now stop working too (password_changed_at, migration 0031)."""
        check_new_password("new_password", new_password)
        new_hash = await hash_password(new_password)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.set_password(conn, developer.id, new_hash)
            return await store.delete_tokens(conn, developer.id)

    async def delete_developer(self, developer: Developer) -> None:
        async with self.pool.acquire() as conn:
            await store.delete_developer(conn, developer.id)

    async def email_password(self, username: str) -> None:
        # Passwords are stored as Argon2id hashes and cannot be mailed; a reset link would need
        # a mail relay, and this server has none configured.
        raise MailNotConfigured(
            "mail is not configured on this server, so no password e-mail can be sent; "
            "ask the operator to set a new password")

    async def add_number(self, number: str, display: str | None, country: str,
                         key: str | None) -> PhoneNumber:
        return await numbers.Numbers(self.pool).add(number, display, country, key)

    async def list_numbers(self) -> list[tuple[PhoneNumber, int, bool]]:
        async with self.pool.acquire() as conn:
            return await store.all_numbers(conn)
