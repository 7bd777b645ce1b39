"""The `ivr` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import logging
import secrets
import ssl
import subprocess
import sys
from pathlib import Path

from ivr.callcontrol import cli as callcontrol_cli
from ivr.campaigns import cli as campaigns_cli
from ivr.core.errors import IvrError
from ivr.dialer import cli as dialer_cli
from ivr.provision import kamailio_cli
from ivr.provision.asterisk_conf import from_settings as asterisk_config
from ivr.provision.asterisk_conf import reach
from ivr.provision.edge import cli as edge_cli
from ivr.provision.trunks import cli as trunks_cli
from ivr.recorder import cli as recorder_cli
from ivr.settings import REPO_ROOT, Settings, redact_url
from ivr.telephony import toll_cli

log = logging.getLogger("ivr")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# --- commands -------------------------------------------------------------------------------
def cmd_env_init(args: argparse.Namespace) -> int:
    """Write .env from .env.example, with fresh random secrets in place of `change-me`."""
    target = Path(args.file)
    if target.exists():
        print(f"{target} exists; leaving it as it is")
        return 0
    lines = []
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        if line.rstrip().endswith("=change-me"):
            line = line.rstrip()[: -len("change-me")] + secrets.token_urlsafe(18)
        lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)
    print(f"wrote {target} with fresh random secrets")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.core import db

    applied = asyncio.run(db.prepare_database(settings.database_url))
    print(f"database {redact_url(settings.database_url)}: "
          + (f"applied {', '.join(f'{v:04d}' for v in applied)}" if applied else "up to date"))
    return 0


def cmd_db_up(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.provision.postgres import ensure_server

    kind = ensure_server(settings.database_url, REPO_ROOT / ".local" / "postgres")
    print(f"PostgreSQL ({kind}) answers at {redact_url(settings.database_url)}")
    done = cmd_migrate(settings, args)
    if settings.dev_number:
        asyncio.run(add_dev_number(settings))
    return done


async def add_dev_number(settings: Settings) -> None:
    """The development number (IVR_DEV_NUMBER), so a fresh install's recorders get one."""
    from ivr.core import db
    from ivr.recorder.numbers import Numbers

    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        number, added = await Numbers(pool).ensure(settings.dev_number)
    finally:
        await pool.close()
    print(f"development number {number.number} (IVR_DEV_NUMBER) "
          + ("added for voice recorders" if added else "is there for voice recorders"))


async def recorder_numbers(settings: Settings) -> list[str]:
    """The numbers voice recorders are given, for the banner."""
    from ivr.core import db
    from ivr.recorder import store

    pool = await db.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return [n.number for n, _, _ in await store.all_numbers(conn)]
    finally:
        await pool.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.app import LINECHECK_NUMBER, serve
    from ivr.core import priority

    # Before any thread starts: threads take their nice value from the thread that made them.
    priority.claim(settings.nice)

    async def main() -> None:
        from ivr.core.threads import name_default_executor
        name_default_executor(asyncio.get_running_loop())
        ready = asyncio.Event()
        task = asyncio.create_task(serve(settings, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set() and args.banner:
            print(banner(settings, LINECHECK_NUMBER, await recorder_numbers(settings)),
                  flush=True)
        waiter.cancel()
        await task

    if settings.event_loop == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    return 0


def banner(settings: Settings, linecheck: str, numbers: list[str]) -> str:
    net = settings.network
    address = f"{reach(net.sip_bind)}:{net.sip_port}"
    sip = f"sip:{settings.softphone_user}@{address}"
    if numbers:
        numbers = sorted(numbers, key=lambda n: n != settings.dev_number)
        shown = ", ".join(f"{n} (IVR_DEV_NUMBER)" if n == settings.dev_number else n
                          for n in numbers[:3])
        shown += f" (and {len(numbers) - 3} more)" if len(numbers) > 3 else ""
        recorders = (f"dial {shown} for voice recorders\n"
                     f"              (sip:{numbers[0]}@{address}; without the + it works too)")
    else:
        recorders = ("no number for voice recorders yet (CreateVoiceRecorder fails with 1201):\n"
                     "              ivr number add +15125550100, or set IVR_DEV_NUMBER in .env"
                     " and run ivr db up")
    return f"""
  ivr is running.
    API       {settings.public_url}   (health: curl {settings.public_url}/healthz)
    Call it   from a SIP softphone on this machine: account {sip}
              password: IVR_SOFTPHONE_PASSWORD in .env; transport UDP, codec PCMU/PCMA
              dial {linecheck} for the line check (records you, plays you back)
              {recorders}
    Logs      this terminal; Asterisk: ivr asterisk logs
    Stop      Ctrl-C (calls in progress get {settings.shutdown_grace:.0f}s to finish)
"""


def cmd_asterisk(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.provision import asterisk

    cfg = dataclasses.replace(asterisk_config(settings), media_host=args.role == "media")
    if args.action == "up":
        info = asterisk.up(cfg)
        print(f"Asterisk is up: {info}")
        if settings.edge.ban:  # IVR_EDGE_BAN: the ban comes up with the Asterisk it guards
            print(edge_cli.cmd_up(settings))
        if cfg.media_host:
            print(engine_hints(settings))
    elif args.action == "down":
        if settings.edge.ban:
            edge_cli.cmd_down(settings)
        asterisk.down(cfg)
        print("Asterisk is down")
    elif args.action == "status":
        print(asterisk.status(cfg))
    elif args.action == "logs":
        path = asterisk.log_path(cfg)
        cmd = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(path)]
        return subprocess.call(cmd)
    return 0


def engine_hints(settings: Settings) -> str:
    """What the engine host's .env needs to drive this media host."""
    net = settings.network
    lines = ["On the engine host, in .env:", f"  IVR_ARI_URL={settings.ari_url}",
             "  IVR_ARI_USER / IVR_ARI_PASSWORD as here"]
    if net.ari_tls_cert is not None:
        der = ssl.PEM_cert_to_DER_cert(net.ari_tls_cert.read_text())
        pin = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        lines.append(f"  IVR_ARI_CERT_SHA256={pin}   (or IVR_ARI_CA_FILE: the CA that signed it)")
    lines.append(f"  IVR_PUBLIC_URL={settings.public_url}   (this host fetches prompts there)")
    return "\n".join(lines)


def cmd_softphone_call(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.telephony import softphone

    phone = softphone.caller(
        settings.softphone_user, settings.softphone_password, args.keys,
        say=Path(args.say) if args.say else None,
        record=Path(args.record) if args.record else None, seconds=args.seconds)
    asyncio.run(softphone.call(phone, args.number, args.keys, seconds=args.seconds))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the API and the telephony worker")
    p.add_argument("--banner", action="store_true", help="print how to call it once ready")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="create the database if needed and apply migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("db", help="the database server")
    p.add_argument("action", choices=["up"], help="up: make sure a server answers (embedded "
                   "cluster when none does) and the database is migrated")
    p.set_defaults(func=cmd_db_up)
    p = sub.add_parser("asterisk", help="the project's own Asterisk 22")
    p.add_argument("action", choices=["up", "down", "status", "logs"])
    p.add_argument("--role", choices=["local", "media"], default="local",
                   help="up: local (the engine on this host, default) or media (this host's "
                   "Asterisk for an engine on another host: IVR_ARI_URL names this host)")
    p.add_argument("-f", "--follow", action="store_true", help="logs: keep following")
    p.add_argument("-n", "--lines", type=int, default=100, help="logs: how many lines")
    p.set_defaults(func=cmd_asterisk)
    p = sub.add_parser("env", help="the .env file")
    p.add_argument("action", choices=["init"])
    p.add_argument("--file", default=".env")
    p.set_defaults(func=cmd_env_init, needs_settings=False)
    p = sub.add_parser("softphone", help="a real SIP softphone (baresip) on this machine")
    phone = p.add_subparsers(dest="softphone_command", required=True)
    c = phone.add_parser("call", help="call a number from the development softphone account")
    c.add_argument("number", help="the number to dial, e.g. 9999 (the line check)")
    c.add_argument("--keys", default="", help="keys to press once answered (0-9 * # A-D, "
                   "RFC 4733, 0.25 s apart); each w or , waits a second")
    c.add_argument("--say", metavar="FILE.wav",
                   help="the microphone: this file over and over from the answer on "
                   "(default: silence)")
    c.add_argument("--record", metavar="OUT.wav", help="write what the call sounded like here")
    c.add_argument("--seconds", type=float, default=60,
                   help="hang up after this long if the other side has not (default 60)")
    c.set_defaults(func=cmd_softphone_call)
    recorder_cli.register(sub)
    callcontrol_cli.register(sub)
    campaigns_cli.register(sub)
    dialer_cli.register(sub)
    trunks_cli.register(sub)
    edge_cli.register(sub)
    kamailio_cli.register(sub)
    toll_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "needs_settings", True):
        return int(args.func(args))
    try:
        settings = Settings.load()
    except IvrError as exc:
        print(f"ivr: configuration error: {exc.message}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        return int(args.func(settings, args))
    except IvrError as exc:
        print(f"ivr: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
