"""`ivr edge up|down|status|cert`: the public SIP edge's ban and its development certificate
(docs/security.md). `up` starts the fail2ban jail for this host's Asterisk (started already:
it reads Asterisk's security.log); `ivr asterisk up` does the same when IVR_EDGE_BAN=true."""

from __future__ import annotations

import argparse

from ivr.provision import sip_cert
from ivr.provision.asterisk_conf import from_settings
from ivr.provision.edge import fail2ban
from ivr.settings import Settings


def jail(settings: Settings) -> fail2ban.Jail:
    return fail2ban.Jail(from_settings(settings), settings.edge)


def cmd_up(settings: Settings) -> str:
    return fail2ban.up(jail(settings))


def cmd_down(settings: Settings) -> str:
    stopped = fail2ban.down(jail(settings))
    return ("the SIP ban is stopped (its bans are lifted)" if stopped else
            "the SIP ban was not running")


def cmd_edge(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "up":
        print(cmd_up(settings))
    elif args.action == "down":
        print(cmd_down(settings))
    elif args.action == "status":
        print(fail2ban.status(jail(settings)))
    elif args.action == "cert":
        cfg = from_settings(settings)
        make = sip_cert.make_dev_cert if args.renew else sip_cert.ensure_dev_cert
        made = make(cfg.dev_cert, cfg.sip_hosts)
        print(f"development SIP certificate: {made[0]} (key {made[1]}); "
              + ("`ivr asterisk up` puts it in use" if settings.edge.tls and
                 settings.edge.tls_cert is None else
                 "set IVR_SIP_TLS=true (without IVR_SIP_TLS_CERT) to use it"))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("edge", help="the public SIP edge: the fail2ban ban, the SIP certificate")
    p.add_argument("action", choices=["up", "down", "status", "cert"],
                   help="up/down/status: the ban of SIP scanners and password guessers "
                   "(fail2ban + nftables, IVR_EDGE_BAN_*); cert: the development certificate "
                   "for SIP over TLS (IVR_SIP_TLS)")
    p.add_argument("--renew", action="store_true", help="cert: make a new one")
    p.set_defaults(func=cmd_edge)
