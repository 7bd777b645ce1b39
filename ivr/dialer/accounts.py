"""Dialer accounts: API credentials (argon2id hash of the secret; the secret and the postback
signing secret are shown once, at creation), time zone and calling hours, do-not-call list."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from ivr.dialer.errors import InvalidJob, NotAuthenticated
from ivr.dialer.models import Account
from ivr.recorder.passwords import burn_time, hash_password, verify_password

ACCOUNT_ID_RE = re.compile(r"^[0-9a-f]{24}$")
_COLUMNS = ("id, account_id, name, webhook_secret, timezone, hours_from, hours_until,"
            " max_destinations, test_number")


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: Account
    account_id: str
    secret: str
    webhook_secret: str


def account_of(row: asyncpg.Record) -> Account:
    return Account(pk=row["id"], account_id=row["account_id"], name=row["name"],
                   webhook_secret=row["webhook_secret"], timezone=row["timezone"],
                   hours_from=row["hours_from"], hours_until=row["hours_until"],
                   max_destinations=row["max_destinations"], test_number=row["test_number"])


def parse_hours(text: str) -> tuple[int, int]:
    """"09:00-20:00" -> (540, 1200); "24:00" is the end of the day."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", text.strip())
    if not m:
        raise InvalidJob("calling hours must look like 09:00-20:00", "hours")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or not 0 <= start <= 1440 or not 0 <= end <= 1440:
        raise InvalidJob("calling hours must be times of day from 00:00 to 24:00", "hours")
    return start, end


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJob(f"unknown time zone {name!r}", "timezone") from None
    return name


class Accounts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, *, name: str = "", timezone: str = "UTC",
                     hours: tuple[int, int] = (0, 1440),
                     max_destinations: int = 10000,
                     test_number: str | None = None) -> NewAccount:
        check_timezone(timezone)
        account_id = secrets.token_hex(12)
        secret = secrets.token_urlsafe(32)
        webhook_secret = secrets.token_urlsafe(32)
        row = await self.pool.fetchrow(
            f"""INSERT INTO dialer_accounts (account_id, name, secret_hash, webhook_secret,
                    timezone, hours_from, hours_until, max_destinations, test_number)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}""",
            account_id, name, await hash_password(secret), webhook_secret, timezone,
            hours[0], hours[1], max_destinations, test_number)
        return NewAccount(account_of(row), account_id, secret, webhook_secret)

    async def authenticate(self, account_id: str, secret: str) -> Account:
        row = None
        if ACCOUNT_ID_RE.match(account_id):
            row = await self.pool.fetchrow(
                f"SELECT {_COLUMNS}, secret_hash FROM dialer_accounts WHERE account_id = $1",
                account_id)
        if row is None:
            await burn_time(secret)
            raise NotAuthenticated("unknown account or wrong secret")
        if not await verify_password(row["secret_hash"], secret):
            raise NotAuthenticated("unknown account or wrong secret")
        return account_of(row)

    async def get(self, account_id: str) -> Account | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM dialer_accounts WHERE account_id = $1", account_id)
        return None if row is None else account_of(row)

    async def set_hours(self, account: Account, hours: tuple[int, int],
                        timezone: str | None = None) -> None:
        await self.pool.execute(
            "UPDATE dialer_accounts SET hours_from = $2, hours_until = $3,"
            " timezone = COALESCE($4, timezone) WHERE id = $1",
            account.pk, hours[0], hours[1],
            None if timezone is None else check_timezone(timezone))

    async def add_dnc(self, account: Account, numbers: list[str]) -> None:
        await self.pool.executemany(
            "INSERT INTO dialer_dnc (account_pk, number) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(account.pk, n) for n in numbers])

    async def remove_dnc(self, account: Account, numbers: list[str]) -> None:
        await self.pool.execute(
            "DELETE FROM dialer_dnc WHERE account_pk = $1 AND number = ANY($2::text[])",
            account.pk, numbers)
