"""Operator commands: `ivr developer create` and `ivr number add|list|remove`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ivr.core import db
from ivr.recorder.numbers import ADD_ONE, Numbers
from ivr.recorder.service import RecorderService
from ivr.settings import Settings


def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    async def main() -> int:
        await db.prepare_database(settings.database_url)
        pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def _run(settings: Settings, work: Callable[[RecorderService], Awaitable[int]]) -> int:
    return _with_pool(settings, lambda pool: work(
        RecorderService(pool, settings.data_dir, open_signup=settings.open_signup)))


def _numbers(settings: Settings, work: Callable[[Numbers], Awaitable[int]]) -> int:
    return _with_pool(settings, lambda pool: work(Numbers(pool)))


def cmd_developer_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(service: RecorderService) -> int:
        d = await service.create_developer(args.username, args.password, email=args.email,
                                           by_operator=True)
        print(f"developer {d.username} created")
        return 0

    return _run(settings, work)


def cmd_number_add(settings: Settings, args: argparse.Namespace) -> int:
    async def work(numbers: Numbers) -> int:
        n = await numbers.add(args.number, args.display, args.country, args.key)
        print(f"number {n.number} ({n.display_number}, {n.country}) added as {n.phone_number_key}")
        return 0

    return _numbers(settings, work)


def cmd_number_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(numbers: Numbers) -> int:
        for n, users, dedicated in await numbers.list():
            use = "dedicated" if dedicated else f"{users} recorder(s)"
            print(f"{n.phone_number_key}\t{n.number}\t{n.display_number}\t{n.country}\t{use}")
        return 0

    return _numbers(settings, work)


def cmd_number_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def work(numbers: Numbers) -> int:
        done = await numbers.remove(args.number, args.country, force=args.force)
        print(f"number {done.number.number} removed")
        for key, new in done.moved:
            print(f"voice recorder {key} now has number {new.number}")
        for key in done.stranded:
            print(f"voice recorder {key} has no number now (none is left for it): it cannot "
                  f"start sessions until the operator adds one with {ADD_ONE}")
        if done.sessions:
            print(f"{done.sessions} live session(s) can no longer be called on it")
        return 0

    return _numbers(settings, work)


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
    a.add_argument("number", help="international (+15125550100) or as dialled in --country; "
                   "stored in E.164")
    a.add_argument("--display", help="a label shown beside it, e.g. 512-538-1945 "
                   "(default: its international form, +1 512-555-0100)")
    a.add_argument("--country", default="US",
                   help="the country a number without + is read in (default US)")
    a.add_argument("--key", help="a custom phone_number_key (default: generated)")
    a.set_defaults(func=cmd_number_add)
    ls = num.add_parser("list", help="numbers and how many recorders use them")
    ls.set_defaults(func=cmd_number_list)
    rm = num.add_parser("remove", help="take a number away (refused while recorders or live "
                        "sessions use it, unless --force)")
    rm.add_argument("number", help="in any form `add` takes")
    rm.add_argument("--country", default="US",
                    help="the country a number without + is read in (default US)")
    rm.add_argument("--force", action="store_true",
                    help="remove it anyway: its recorders get another number, live sessions "
                    "on it can no longer be called")
    rm.set_defaults(func=cmd_number_remove)
