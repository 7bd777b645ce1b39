"""Operator commands: `ivr campaign create` (a menu of a dialer account, named by its menuid,
with the URLs its Call Events and Call Summaries go to) and `ivr campaign list`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ivr.core import db
from ivr.core.errors import NotFound
from ivr.settings import Settings


def cmd_campaign(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.campaigns.service import Campaigns
    from ivr.dialer.accounts import Accounts
    from ivr.dialer.service import Dialer

    async def main() -> int:
        await db.prepare_database(settings.database_url)
        pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            account = await Accounts(pool).get(args.account)
            if account is None:
                raise NotFound(f"no dialer account {args.account!r} "
                               "(ivr dialer account create makes one)")
            campaigns = Campaigns(pool, Dialer(pool, settings), settings.data_dir,
                                  settings.public_url)
            if args.action == "create":
                if not args.menuid:
                    print("ivr campaign create needs --menuid")
                    return 2
                menu = await campaigns.create_menu(
                    account, args.menuid, name=args.name, events_url=args.events_url,
                    summary_url=args.summary_url, sender_id=args.sender_id,
                    keypress=args.keypress, amd=args.amd, max_attempts=args.attempts,
                    retry_delay=args.retry_delay, ring_timeout=args.ring_timeout)
                print(f"campaign menu {menu.menuid} created for account {account.account_id}")
                return 0
            for row in await pool.fetch(
                    "SELECT menuid, name, events_url, summary_url FROM campaign_menus"
                    " WHERE account_pk = $1 ORDER BY menuid", account.pk):
                print(f"{row['menuid']}\t{row['name']}\tevents={row['events_url'] or '-'}\t"
                      f"summary={row['summary_url'] or '-'}")
            return 0
        finally:
            await pool.close()

    return asyncio.run(main())


def register(sub: Any) -> None:
    p = sub.add_parser("campaign", help="XML campaign menus (VoiceShot-style /ivrapi.asp)")
    p.add_argument("action", choices=["create", "list"])
    p.add_argument("--account", required=True, help="the dialer account id")
    p.add_argument("--menuid", help="the menu's id, e.g. 1-1234")
    p.add_argument("--name", default="")
    p.add_argument("--events-url", help="where Call Events (answer, key press, hang-up) go")
    p.add_argument("--summary-url", help="where Call Summaries go")
    p.add_argument("--sender-id", help="caller id shown (7-15 digits)")
    p.add_argument("--keypress", action="store_true",
                   help="capture one key press after the prompts")
    p.add_argument("--amd", choices=["off", "after_beep", "skip_machine"], default="off",
                   help="answering-machine detection: play after the beep, or skip machines")
    p.add_argument("--attempts", type=int, default=1,
                   help="attempts for busy / no answer (default 1)")
    p.add_argument("--retry-delay", type=float, default=60.0,
                   help="seconds before the first retry, doubling (default 60)")
    p.add_argument("--ring-timeout", type=int, default=30, help="seconds (default 30)")
    p.set_defaults(func=cmd_campaign)
