"""Carrier trunks as the engine sees them over ARI (`GET /endpoints/PJSIP`), for /healthz and
/metrics, so they work whichever host Asterisk runs on. ARI calls an endpoint `online` once its
AOR's contact answers OPTIONS (`ivr trunk` qualifies every trunk), `offline` when it stops
answering, `unknown` before the first answer."""

from __future__ import annotations

import asyncio

from ivr.core.errors import TelephonyError
from ivr.telephony.rest import AriClient

# The endpoint names ivr/provision/trunks gives trunks (trunk-NAME).
PREFIX = "trunk-"


async def trunk_states(ari: AriClient, timeout: float = 2.0) -> dict[str, str] | None:
    """{trunk name: online/offline/unknown}; None when ARI does not answer in time."""
    try:
        async with asyncio.timeout(timeout):
            listed = await ari.request("list_endpoints_by_tech", {"tech": "PJSIP"})
    except (TelephonyError, TimeoutError):
        return None
    return {str(e["resource"])[len(PREFIX):]: str(e.get("state", "unknown"))
            for e in listed or [] if str(e.get("resource", "")).startswith(PREFIX)}


def health(states: dict[str, str]) -> dict[str, object]:
    """/healthz's "trunks": every trunk's state and those not online."""
    return {"states": states, "down": sorted(n for n, s in states.items() if s != "online")}


def exposition(states: dict[str, str]) -> str:
    """Prometheus text: ivr_trunk_up per trunk (1 online, 0 otherwise)."""
    lines = ["# HELP ivr_trunk_up Whether a carrier trunk answers OPTIONS (ARI endpoint online).",
             "# TYPE ivr_trunk_up gauge"]
    lines += [f'ivr_trunk_up{{trunk="{name}"}} {int(state == "online")}'
              for name, state in sorted(states.items())]
    return "\n".join(lines) + "\n"
