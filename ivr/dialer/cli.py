"""Operator commands: `ivr dialer run` (the worker alone), `ivr dialer account create` (API
credentials, printed once; only an argon2 hash of the secret is kept), `ivr dialer account
update ACCOUNT_ID --allow-from CIDR... | --no-allow-from` (the addresses campaign documents
are taken from without credentials) and `ivr dialer dnc add|remove ACCOUNT_ID NUMBER...`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ivr.core import db
from ivr.core.errors import IvrError
from ivr.dialer.accounts import Accounts, parse_hours
from ivr.settings import Settings


def cmd_dialer(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "run":
        from ivr.dialer.runtime import run_alone

        asyncio.run(run_alone(settings))
        return 0
    return asyncio.run(_manage(settings, args))


async def _manage(settings: Settings, args: argparse.Namespace) -> int:
    await db.prepare_database(settings.database_url)
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    accounts = Accounts(pool)
    try:
        if args.action == "account" and args.what[:1] == ["update"]:
            return await _update(accounts, args)
        if args.action == "account":
            if args.what != ["create"]:
                raise IvrError("usage: ivr dialer account create [--name ...] | "
                               "update ACCOUNT_ID --allow-from CIDR... | --no-allow-from")
            made = await accounts.create(
                name=args.name, timezone=args.timezone, hours=parse_hours(args.hours),
                max_destinations=args.max_destinations, test_number=args.test_number,
                allow_from=args.allow_from or (), developer=args.developer)
            print("dialer account created\n"
                  f"  account id:      {made.account_id}\n"
                  f"  secret:          {made.secret}\n"
                  f"  webhook secret:  {made.webhook_secret}\n"
                  + _allowlist(await accounts.allow_from(made.account)) +
                  "API requests: Authorization: Basic base64(<account id>:<secret>).\n"
                  "The secret and the webhook secret are shown only now: keep them.")
            return 0
        # dnc add|remove ACCOUNT_ID NUMBER...
        if len(args.what) < 3 or args.what[0] not in ("add", "remove"):
            raise IvrError("usage: ivr dialer dnc add|remove ACCOUNT_ID NUMBER...")
        action, account_id, numbers = args.what[0], args.what[1], args.what[2:]
        account = await accounts.get(account_id)
        if account is None:
            raise IvrError(f"no dialer account {account_id}")
        if any(not n.isdigit() for n in numbers):
            raise IvrError("numbers are digits only")
        if action == "add":
            await accounts.add_dnc(account, numbers)
        else:
            await accounts.remove_dnc(account, numbers)
        done = "added" if action == "add" else "removed"
        print(f"do-not-call list of {account_id}: {done} {len(numbers)} number(s)")
        return 0
    finally:
        await pool.close()


async def _update(accounts: Accounts, args: argparse.Namespace) -> int:
    if len(args.what) != 2 or (args.allow_from is None) == (not args.no_allow_from):
        raise IvrError("usage: ivr dialer account update ACCOUNT_ID "
                       "--allow-from CIDR [--allow-from CIDR ...] | --no-allow-from")
    account = await accounts.get(args.what[1])
    if account is None:
        raise IvrError(f"no dialer account {args.what[1]}")
    nets = await accounts.set_allow_from(account, args.allow_from or [])
    print(f"dialer account {account.account_id} updated\n" + _allowlist(nets), end="")
    return 0


def _allowlist(nets: list[str]) -> str:
    if not nets:
        return "  allow from:      (none: credentials required)\n"
    return (f"  allow from:      {' '.join(nets)} (campaign documents from these addresses"
            " need no credentials)\n")


def register(sub: Any) -> None:
    p = sub.add_parser("dialer", help="the outbound dialer: worker, accounts, do-not-call list")
    p.add_argument("action", choices=["run", "account", "dnc"])
    p.add_argument("what", nargs="*", help="account: create | update ACCOUNT_ID; "
                   "dnc: add|remove ACCOUNT_ID NUMBER...")
    p.add_argument("--name", default="")
    p.add_argument("--timezone", default="UTC", help="IANA time zone of the calling hours")
    p.add_argument("--hours", default="00:00-24:00", help="calling hours, e.g. 09:00-20:00")
    p.add_argument("--max-destinations", type=int, default=10000)
    p.add_argument("--test-number", help="a test account: only this number, one per job")
    p.add_argument("--allow-from", action="append", metavar="CIDR",
                   help="campaign documents from this network need no credentials "
                   "(repeat for more; update replaces the list)")
    p.add_argument("--developer", help="create: the developer (username) it belongs to, whose "
                   "console's Calls then show its calls")
    p.add_argument("--no-allow-from", action="store_true",
                   help="update: empty the allowlist (credentials required again)")
    p.set_defaults(func=cmd_dialer)
