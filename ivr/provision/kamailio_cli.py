"""`ivr proxy up|down|status`: Kamailio as the SIP entry in front of the media nodes
(docs/scale-out.md), from the IVR_PROXY_* settings; its state folder sits beside Asterisk's."""

from __future__ import annotations

import argparse

from ivr.provision import kamailio
from ivr.settings import Settings


def proxy_config(settings: Settings) -> kamailio.ProxyConfig:
    proxy = settings.proxy
    return kamailio.ProxyConfig(settings.asterisk_root.parent / "kamailio", proxy.bind[0],
                                proxy.bind[1], proxy.nodes, proxy.probe_interval)


def cmd_proxy(settings: Settings, args: argparse.Namespace) -> int:
    cfg = proxy_config(settings)
    if args.action == "up":
        pid = kamailio.up(cfg)
        print(f"Kamailio is up (pid {pid}) on udp:{cfg.address}:{cfg.port}, in front of "
              f"{', '.join(cfg.nodes)}; log: {cfg.log}")
    elif args.action == "down":
        kamailio.down(cfg)
        print("Kamailio is down")
    else:
        running = kamailio.running(cfg)
        if running is None:
            print("Kamailio: not running (`ivr proxy up` starts it)")
            return 1
        states = kamailio.nodes_state(cfg)
        print(f"Kamailio: running (pid {running}) on udp:{cfg.address}:{cfg.port}")
        for node, flags in sorted(states.items()):
            print(f"  {node}: {kamailio.describe(flags)} ({flags})")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("proxy", help="Kamailio, the SIP entry in front of the media nodes")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=cmd_proxy)
