"""Dialer accounts: API credentials (argon2id hash of the secret; the secret and the postback
signing secret are shown once, at creation), time zone and calling hours, do-not-call list,
and the client addresses campaign documents are taken from without credentials."""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from ivr.core import owners
from ivr.core.passwords import hash_password
from ivr.core.throttle import Throttle
from ivr.dialer.errors import InvalidJob, NotAuthenticated
from ivr.dialer.models import Account

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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> list[Network]:
    """CIDRs (a bare address is one host), collapsed: no two of them overlap."""
    found: list[Network] = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            raise InvalidJob(f"{text!r} is no CIDR (like 203.0.113.0/24 or 2001:db8::/32):"
                             f" {exc}", "allow_from") from None
    v4 = [n for n in found if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in found if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def client_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address; an IPv4 address mapped into IPv6 (a dual-stack socket) as IPv4."""
    try:
        address = ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJob(f"unknown time zone {name!r}", "timezone") from None
    return name


class Accounts:
    def __init__(self, pool: asyncpg.Pool, throttle: Throttle | None = None) -> None:
        self.pool = pool
        self.throttle = throttle or Throttle(pool)

    async def create(self, *, name: str = "", timezone: str = "UTC",
                     hours: tuple[int, int] = (0, 1440),
                     max_destinations: int = 10000,
                     test_number: str | None = None,
                     allow_from: Iterable[str] = (),
                     developer: str | None = None) -> NewAccount:
        check_timezone(timezone)
        networks = parse_networks(allow_from)
        account_id = secrets.token_hex(12)
        secret = secrets.token_urlsafe(32)
        webhook_secret = secrets.token_urlsafe(32)
        secret_hash = await hash_password(secret)
        async with self.pool.acquire() as conn, conn.transaction():
            owner = await owners.developer_id(conn, developer)  # refused: nothing written
            row = await conn.fetchrow(
                f"""INSERT INTO dialer_accounts (account_id, name, secret_hash, webhook_secret,
                        timezone, hours_from, hours_until, max_destinations, test_number,
                        developer_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}""",
                account_id, name, secret_hash, webhook_secret, timezone,
                hours[0], hours[1], max_destinations, test_number, owner)
            await _write_networks(conn, row["id"], networks)
        return NewAccount(account_of(row), account_id, secret, webhook_secret)

    async def authenticate(self, account_id: str, secret: str) -> Account:
        row = None
        if ACCOUNT_ID_RE.match(account_id):
            row = await self.pool.fetchrow(
                f"SELECT {_COLUMNS}, secret_hash FROM dialer_accounts WHERE account_id = $1",
                account_id)
        stored = None if row is None else row["secret_hash"]
        if not await self.throttle.verify(f"dialer:{account_id}", stored, secret) or row is None:
            raise NotAuthenticated("unknown account or wrong secret")
        return account_of(row)

    async def get(self, account_id: str) -> Account | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM dialer_accounts WHERE account_id = $1", account_id)
        return None if row is None else account_of(row)

    async def by_address(self, address: str | None) -> Account | None:
        """The account whose allowlist holds this client address (at most one can)."""
        ip = client_address(address)
        if ip is None:
            return None
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM dialer_accounts WHERE id ="
            " (SELECT account_pk FROM dialer_allow_from WHERE net >>= $1::inet)", ip)
        return None if row is None else account_of(row)

    async def allow_from(self, account: Account) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT net FROM dialer_allow_from WHERE account_pk = $1 ORDER BY net", account.pk)
        return [str(r["net"]) for r in rows]

    async def set_allow_from(self, account: Account, texts: Iterable[str]) -> list[str]:
        """Replace the account's allowlist (empty: credentials only); returns it."""
        networks = parse_networks(texts)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM dialer_allow_from WHERE account_pk = $1",
                               account.pk)
            await _write_networks(conn, account.pk, networks)
        return await self.allow_from(account)

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


async def _write_networks(conn: Any, account_pk: int, networks: list[Network]) -> None:
    """Insert (in the caller's transaction); a network another account's list overlaps is
    refused, naming that account."""
    if not networks:
        return
    taken = await conn.fetchrow(
        "SELECT a.account_id, f.net FROM dialer_allow_from f"
        " JOIN dialer_accounts a ON a.id = f.account_pk"
        " WHERE f.account_pk <> $1 AND f.net && ANY($2::cidr[]) LIMIT 1", account_pk, networks)
    if taken is not None:
        raise InvalidJob(f"the allowlist overlaps {taken['net']} of account "
                         f"{taken['account_id']}: an address may belong to one account only",
                         "allow_from")
    try:
        await conn.executemany(
            "INSERT INTO dialer_allow_from (account_pk, net) VALUES ($1, $2::cidr)",
            [(account_pk, n) for n in networks])
    except asyncpg.ExclusionViolationError:  # another account's list, written just now
        raise InvalidJob("the allowlist overlaps another account's: an address may belong "
                         "to one account only", "allow_from") from None
