"""`ivr toll set app|dialer ACCOUNT [--countries ..] [--prefixes ..] [--premium | --no-premium]
[--concurrent N] [--per-day N]`: an account's own toll-fraud limits (a limit left out keeps the
IVR_TOLL_* default); `ivr toll show app|dialer ACCOUNT`: its limits and latest refusals."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ivr.core import db
from ivr.settings import Settings, _countries, _prefixes
from ivr.telephony import toll


def cmd_toll(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    await db.prepare_database(settings.database_url)
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            if args.action == "set":
                await toll.set_limits(
                    conn, args.kind, args.account,
                    countries=None if args.countries is None else list(
                        _countries("--countries", args.countries)),
                    prefixes=None if args.prefixes is None else list(
                        _prefixes("--prefixes", args.prefixes)),
                    premium=args.premium, concurrent=args.concurrent, per_day=args.per_day)
            policy = await toll.policy_for(conn, settings.security, args.kind, args.account)
            print(f"{args.kind} {args.account}: countries {','.join(policy.countries)}; "
                  f"prefixes {','.join(p or '*' for p in policy.prefixes) or 'none'}; "
                  f"premium-rate {'allowed' if policy.premium else 'refused'}; "
                  f"{policy.concurrent} at once; {policy.per_day} a day")
            for a in await toll.alerts(conn, args.kind, args.account, limit=10):
                print(f"  refused {a['created_at']:%Y-%m-%d %H:%M:%S} {a['number']}: "
                      f"{a['reason']}")
    finally:
        await pool.close()
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("toll", help="an account's toll-fraud limits (docs/security.md)")
    p.add_argument("action", choices=["set", "show"])
    p.add_argument("kind", choices=list(toll.KINDS),
                   help="app: a call-control application; dialer: a dialer account")
    p.add_argument("account", help="the app id or dialer account id")
    p.add_argument("--countries", help="allowed countries, e.g. US,CA")
    p.add_argument("--prefixes", help="allowed E.164 prefixes besides, e.g. 1512,4420")
    p.add_argument("--premium", action=argparse.BooleanOptionalAction, default=None,
                   help="premium-rate and shared-cost numbers allowed")
    p.add_argument("--concurrent", type=_positive, help="calls at once")
    p.add_argument("--per-day", type=_positive, help="calls in 24 hours")
    p.set_defaults(func=cmd_toll)
