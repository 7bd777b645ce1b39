"""Operator commands: `ivr developer create` and `ivr number add|list`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.core import db
from ivr.recorder.service import RecorderService
from ivr.settings import Settings


def _run(settings: Settings, work: Callable[[RecorderService], Awaitable[int]]) -> int:
    async def main() -> int:
        await db.prepare_database(settings.database_url)
        pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(RecorderService(pool, settings.data_dir,
                                              open_signup=settings.open_signup))
        finally:
            await pool.close()

    return asyncio.run(main())


def cmd_developer_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: RecorderService) -> int:
        d = await service.create_developer(args.username, args.password, email=args.email,
                                           by_operator=True)
        print(f"developer {d.username} created")
        return 0

    return _run(settings, work)


def cmd_number_add(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: RecorderService) -> int:
        n = await service.add_number(args.number, args.display, args.country, args.key)
        print(f"number {n.number} ({n.display_number}, {n.country}) added as {n.phone_number_key}")
        return 0

    return _run(settings, work)


def cmd_number_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: RecorderService) -> int:
        for n, users, dedicated in await service.list_numbers():
            use = "dedicated" if dedicated else f"{users} recorder(s)"
            print(f"{n.phone_number_key}\t{n.number}\t{n.display_number}\t{n.country}\t{use}")
        return 0

    return _run(settings, work)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("developer", help="developer accounts")
    dev = p.add_subparsers(dest="developer_command", required=True)
    c = dev.add_parser("create", help="create a developer account (sign-up open or not)")
    c.add_argument("--username", required=True)
    c.add_argument("--password", required=True)
    c.add_argument("--email", default="")
    c.set_defaults(func=cmd_developer_create)
    p = subparsers.add_parser("number", help="the phone numbers recorders are given")
    num = p.add_subparsers(dest="number_command", required=True)
    a = num.add_parser("add", help="add a number callers dial")
    a.add_argument("number")
    a.add_argument("--display", help="as shown to users, e.g. 512-538-1945")
    a.add_argument("--country", default="US")
    a.add_argument("--key", help="a custom phone_number_key (default: generated)")
    a.set_defaults(func=cmd_number_add)
    ls = num.add_parser("list", help="numbers and how many recorders use them")
    ls.set_defaults(func=cmd_number_list)
