"""Operator command: `ivr voiceapp create` — a call-control application with its numbers. The
app key and webhook secret are printed once; only an argon2 hash of the key is kept."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ivr.callcontrol.service import CallControl
from ivr.core import db
from ivr.settings import Settings


def cmd_voiceapp_create(settings: Settings, args: argparse.Namespace) -> int:
    async def main() -> int:
        await db.prepare_database(settings.database_url)
        pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
        control = CallControl(pool)
        try:
            made = await control.create_application(
                webhook_url=args.webhook, numbers=args.number or [],
                shared_numbers=args.shared_number, name=args.name,
                greeting=args.greeting, accept_timeout=args.accept_timeout, trunk=args.trunk,
                developer=args.developer)
        finally:
            await control.close()
            await pool.close()
        print("application created\n"
              f"  app id:          {made.app_id}\n"
              f"  app key:         {made.app_key}\n"
              f"  webhook secret:  {made.webhook_secret}\n"
              + "".join(f"  PIN on {number}:  {pin}\n" for number, pin in made.pins.items())
              + "The key, the secret and the PINs are shown only now: keep them.")
        return 0

    return asyncio.run(main())


def register(sub: Any) -> None:
    p = sub.add_parser("voiceapp", help="call-control applications (voice API)")
    p.add_argument("action", choices=["create"])
    p.add_argument("--webhook", required=True, help="URL the call events are posted to")
    p.add_argument("--number", action="append",
                   help="a dedicated number routed to the application (repeat for more)")
    p.add_argument("--shared-number", action="append",
                   help="a shared number: callers key the application's PIN (printed) first")
    p.add_argument("--name", default="")
    p.add_argument("--greeting", help="prompt played before the incomingcall event")
    p.add_argument("--accept-timeout", type=int, default=10,
                   help="seconds an incoming call waits for /accept (default 10)")
    p.add_argument("--trunk", help="the carrier trunk (`ivr trunk add NAME`) its calls out and "
                   "second legs leave by (default: the loopback trunk)")
    p.add_argument("--developer", help="the developer (username) it belongs to: its calls "
                   "show in their console's Calls")
    p.set_defaults(func=cmd_voiceapp_create)
