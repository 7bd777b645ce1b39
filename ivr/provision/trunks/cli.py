"""`ivr trunk add|list|show|remove|apply`: the operator's carrier trunks.

Every change is applied at once to this host's Asterisk (a pjsip reload: calls in progress go
on). A trunk password is read from IVR_TRUNK_PASSWORD or a prompt (or one line on stdin), never
from the command line, where `ps` and shell history would keep it; no command prints it."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from ivr.core import db
from ivr.core.errors import InvalidParameter, ProvisionError
from ivr.provision.asterisk_conf import AsteriskConfig, from_settings
from ivr.provision.trunks import apply, store
from ivr.provision.trunks.model import CODECS, DID_FROM, ID_STYLES, MASK, TRANSPORTS, build
from ivr.settings import Settings


def _cfg(settings: Settings) -> AsteriskConfig:
    return from_settings(settings)


def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    return db.run_with_pool(settings.database_url, work)


async def _apply(settings: Settings, pool: asyncpg.Pool) -> None:
    trunks = await store.all_trunks(pool)
    try:
        done = await asyncio.to_thread(apply.apply, _cfg(settings), trunks, settings.network)
    except ProvisionError as exc:
        raise ProvisionError(f"{exc.message} (the trunks are saved: `ivr trunk apply` puts "
                             "them into Asterisk once that works)") from exc
    print(done)


def _password(username: str) -> str:
    if not username:
        return ""
    if os.environ.get("IVR_TRUNK_PASSWORD"):
        return os.environ["IVR_TRUNK_PASSWORD"]
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {username}: ")
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InvalidParameter("password", "a trunk with --username needs its password: set "
                               "IVR_TRUNK_PASSWORD, type it at the prompt or give it on stdin")
    return line


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    trunk = build(
        args.name, args.host, port=args.port, transport=args.transport,
        username=args.username or "", password=_password(args.username or ""),
        realm=args.realm or "", register=args.register,
        match=args.match,
        caller_id=args.caller_id or "", id_style=args.id_style,
        from_domain=args.from_domain or "", codecs=args.codecs.split(","),
        did_from=args.did_from)

    async def work(pool: asyncpg.Pool) -> int:
        await store.add(pool, trunk)
        print(f"trunk {trunk.name} added ({trunk.endpoint}: {trunk.host}:{trunk.port} over "
              f"{trunk.transport}, "
              + (f"registering as {trunk.username})" if trunk.register
                 else f"calls accepted from {', '.join(trunk.identify)})"))
        await _apply(settings, pool)
        return 0

    return _with_pool(settings, work)


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        trunks = await store.all_trunks(pool)
        if not trunks:
            print("no trunks (`ivr trunk add NAME --host HOST ...` adds one)")
            return 0
        states = await asyncio.to_thread(apply.states, _cfg(settings), trunks)
        print("name\tcarrier\tauth\tregistration\tqualify")
        for t in trunks:
            auth = f"register {t.username}" if t.register else (
                f"digest {t.username}" if t.username else "ip " + ",".join(t.identify))
            s = states[t.name]
            print(f"{t.name}\t{t.host}:{t.port}/{t.transport}\t{auth}\t{s.registration}\t"
                  f"{s.reachable}")
        return 0

    return _with_pool(settings, work)


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        trunk = await store.get(pool, args.name)
        state = (await asyncio.to_thread(apply.states, _cfg(settings), [trunk]))[trunk.name]
        for key, value in {**trunk.shown(), "endpoint": trunk.endpoint,
                           "registration": state.registration,
                           "qualify": state.reachable}.items():
            print(f"{key:13} {value}")
        return 0

    return _with_pool(settings, work)


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        await store.remove(pool, args.name)
        print(f"trunk {args.name} removed (calls in progress on it go on)")
        await _apply(settings, pool)
        return 0

    return _with_pool(settings, work)


def cmd_apply(settings: Settings, args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> int:
        await _apply(settings, pool)
        return 0

    return _with_pool(settings, work)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("trunk", help="carrier SIP trunks (docs/deploy.md)")
    sub = p.add_subparsers(dest="trunk_command", required=True)
    a = sub.add_parser("add", help="add a carrier trunk and apply it (a pjsip reload)",
                       description="The password of --username comes from IVR_TRUNK_PASSWORD, "
                       "a prompt, or one line on stdin.")
    a.add_argument("name", help="lowercase letters, digits, '-' (the endpoint is trunk-NAME)")
    a.add_argument("--host", required=True, help="the carrier's SIP address or host name")
    a.add_argument("--port", type=int, help="default 5060 (5061 over TLS)")
    a.add_argument("--transport", default="udp", help=f"{'/'.join(TRANSPORTS)} (default udp)")
    a.add_argument("--username", help="digest credentials' user (with a password)")
    a.add_argument("--realm", help="the digest realm, when the carrier wants one named")
    reg = a.add_mutually_exclusive_group()
    reg.add_argument("--register", dest="register", action="store_true", default=None,
                     help="register to the carrier (the default with --username)")
    reg.add_argument("--no-register", dest="register", action="store_false",
                     help="credentials for challenged calls only, no registration")
    a.add_argument("--match", action="append", default=[], metavar="ADDRESS/CIDR",
                   help="where the carrier's calls come from (repeat or comma-separate; "
                   "default: --host)")
    a.add_argument("--caller-id", help="the number outbound calls show by default (E.164)")
    a.add_argument("--id-style", default="from",
                   help=f"{'/'.join(ID_STYLES)}: caller id in the From user (default), in "
                   "P-Asserted-Identity or in Remote-Party-ID (From then carries --username)")
    a.add_argument("--from-domain", help="the From domain (default: --host)")
    a.add_argument("--codecs", default="ulaw,alaw", help=f"from {','.join(CODECS)}, in order "
                   "of preference (default ulaw,alaw)")
    a.add_argument("--did-from", default="ruri", help=f"{'/'.join(DID_FROM)}: the dialled "
                   "number is the Request-URI's user (default) or the To header's")
    a.set_defaults(func=cmd_add)
    ls = sub.add_parser("list", help="trunks with their registration and qualify state")
    ls.set_defaults(func=cmd_list)
    sh = sub.add_parser("show", help=f"one trunk's settings (the password shown as {MASK})")
    sh.add_argument("name")
    sh.set_defaults(func=cmd_show)
    rm = sub.add_parser("remove", help="remove a trunk and apply (calls on it go on)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)
    ap = sub.add_parser("apply", help="write every trunk into this host's Asterisk again and "
                        "reload it")
    ap.set_defaults(func=cmd_apply)
