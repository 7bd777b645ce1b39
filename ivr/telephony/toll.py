"""Toll-fraud guards for every outbound path (issue #20 item 3): call control's calls,
second legs, transfers and forwards, and the dialer's broadcasts and campaigns. A hacked
account must not be able to run up the operator's bill: each account may call only the
countries (and E.164 prefixes) allowed to it, premium-rate numbers only where allowed, at most
so many calls at once and so many a day. Defaults: IVR_TOLL_* (the operator's own country);
an account's own limits in table toll_limits (`ivr toll set`). Every refusal is an error the
API answers with and a row in toll_alerts (shown on the console)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import phonenumbers

from ivr.core.db import Conn
from ivr.core.errors import Forbidden
from ivr.settings import Security

log = logging.getLogger(__name__)

KINDS = ("app", "dialer")
_PREMIUM = {phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST}


class TollRefused(Forbidden):
    """An outbound call the account's limits do not allow; `code` says which limit."""

    error_id = "toll_refused"

    def __init__(self, message: str, *, code: str, number: str = "") -> None:
        super().__init__(message, reason=code)
        self.code = code
        self.number = number


@dataclass(frozen=True, slots=True)
class Policy:
    countries: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    premium: bool = False
    concurrent: int = 10
    per_day: int = 1000

    @classmethod
    def default(cls, security: Security) -> Policy:
        return cls(security.toll_countries, security.toll_prefixes, security.toll_premium,
                   security.toll_concurrent, security.toll_per_day)


async def policy_for(conn: Conn, security: Security, kind: str, account: str) -> Policy:
    base = Policy.default(security)
    row = await conn.fetchrow("SELECT * FROM toll_limits WHERE kind = $1 AND account = $2",
                              kind, account)
    if row is None:
        return base
    return Policy(
        countries=tuple(row["countries"]) if row["countries"] is not None else base.countries,
        prefixes=tuple(row["prefixes"]) if row["prefixes"] is not None else base.prefixes,
        premium=base.premium if row["premium"] is None else bool(row["premium"]),
        concurrent=row["concurrent"] or base.concurrent,
        per_day=row["per_day"] or base.per_day)


async def set_limits(conn: Conn, kind: str, account: str, **limits: Any) -> None:
    """An account's own limits (None: the default for that one)."""
    await conn.execute(
        "INSERT INTO toll_limits (kind, account, countries, prefixes, premium, concurrent,"
        " per_day) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, account) DO UPDATE"
        " SET countries = $3, prefixes = $4, premium = $5, concurrent = $6, per_day = $7",
        kind, account, limits.get("countries"), limits.get("prefixes"), limits.get("premium"),
        limits.get("concurrent"), limits.get("per_day"))


def parse(number: str, home: str) -> phonenumbers.PhoneNumber | None:
    """A dialled number as the platform takes them (digits, an optional '+'): international
    with '+', else national in the home country, else international without the '+'."""
    digits = number.lstrip("+")
    candidates = [f"+{digits}"] if number.startswith("+") else [digits, f"+{digits}"]
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, home)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return parsed
    return None


def destination_refusal(policy: Policy, number: str) -> TollRefused | None:
    digits = number.lstrip("+")
    parsed = parse(number, policy.countries[0])
    if parsed is not None and phonenumbers.number_type(parsed) in _PREMIUM and not policy.premium:
        return TollRefused(f"{number} is a premium-rate number, which this account may not "
                           "call", code="premium_rate", number=number)
    e164 = None if parsed is None else str(parsed.country_code) + str(parsed.national_number)
    if any((e164 or digits).startswith(p) for p in policy.prefixes):
        return None
    region = None if parsed is None else phonenumbers.region_code_for_number(parsed)
    if region is not None and region in policy.countries:
        return None
    where = f"in {region}" if region else "not a valid number in any allowed country"
    return TollRefused(f"{number} is {where}; this account may call "
                       f"{', '.join(policy.countries)}"
                       + (f" and numbers starting {', '.join(policy.prefixes)}"
                          if policy.prefixes else ""),
                       code="destination_not_allowed", number=number)


def check(policy: Policy, numbers: list[str], *, active: int, today: int) -> None:
    """Raises TollRefused for the first limit `numbers` (new calls, started now) would break,
    given the account's calls in progress and those of the last 24 hours."""
    for number in numbers:
        refused = destination_refusal(policy, number)
        if refused is not None:
            raise refused
    if active + min(len(numbers), 1) > policy.concurrent:
        raise TollRefused(f"this account has {active} calls in progress, as many as it may "
                          f"have at once ({policy.concurrent})", code="too_many_concurrent")
    if today + len(numbers) > policy.per_day:
        raise TollRefused(f"this account has made {today} calls in the last 24 hours; "
                          f"{len(numbers)} more would pass its {policy.per_day} a day",
                          code="daily_limit")


async def admit(pool: Any, security: Security, kind: str, account: str, numbers: list[str],
                active: int) -> None:
    """Let `numbers` be called now by the account, or raise TollRefused (and keep the alert).
    `active`: its calls in progress, as its feature counts them. One account's admissions
    are serialised (an advisory lock), so concurrent requests cannot both pass a limit."""
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                   f"toll:{kind}:{account}")
                await conn.execute("DELETE FROM toll_ledger WHERE kind = $1 AND account = $2"
                                   " AND created_at < now() - interval '1 day'", kind, account)
                today = await conn.fetchval(
                    "SELECT coalesce(sum(calls), 0) FROM toll_ledger WHERE kind = $1"
                    " AND account = $2", kind, account)
                check(await policy_for(conn, security, kind, account), numbers, active=active,
                      today=int(today))
                if numbers:
                    await conn.execute("INSERT INTO toll_ledger (kind, account, calls)"
                                       " VALUES ($1, $2, $3)", kind, account, len(numbers))
        except TollRefused as refused:
            await alert(conn, kind, account, refused)  # outside the refused transaction
            raise


async def alert(conn: Conn, kind: str, account: str, refused: TollRefused) -> None:
    """A refusal, kept for the console and logged for the operator."""
    log.warning("toll guard: %s %s refused (%s): %s", kind, account, refused.code,
                refused.message)
    await conn.execute("INSERT INTO toll_alerts (kind, account, number, reason, code)"
                       " VALUES ($1, $2, $3, $4, $5)", kind, account, refused.number,
                       refused.message[:500], refused.code)


async def alerts(conn: Conn, kind: str, account: str, limit: int = 50) -> list[Any]:
    return list(await conn.fetch(
        "SELECT number, reason, code, created_at FROM toll_alerts WHERE kind = $1 AND"
        " account = $2 ORDER BY created_at DESC, id DESC LIMIT $3", kind, account, limit))
