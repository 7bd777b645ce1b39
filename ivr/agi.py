"""Wiring of the FastAGI face (docs/agi.md): `ivr serve` listens on IVR_AGI_LISTEN, and the
routes are the ARI path's own flows. `agi://HOST:PORT/recorder[,NUMBER]`: the recorder whose
number is NUMBER (the AGI's first argument, else the dialplan's extension), as a call to that
number over ARI; `agi://HOST:PORT/linecheck`: the line check."""

from __future__ import annotations

import ipaddress
import logging
import socket
from functools import partial
from urllib.parse import urlsplit

from ivr.linecheck.flow import line_check, not_in_service
from ivr.recorder.flow import RecorderFlow
from ivr.settings import Settings
from ivr.telephony.agi_call import AgiCall
from ivr.telephony.agi_server import AgiServer
from ivr.telephony.call_log import CallLog
from ivr.telephony.runner import Route

log = logging.getLogger(__name__)

ROUTES = ("recorder", "linecheck")


class AgiRoutes:
    def __init__(self, recorder: RecorderFlow) -> None:
        self.recorder = recorder

    async def choose(self, path: str, call: AgiCall) -> Route | None:
        if path == "linecheck":
            return Route("linecheck", line_check)
        if path != "recorder":
            return None
        route = await self.recorder.phone.route(call.dialed)
        if route is None:
            return Route("not-in-service", not_in_service)
        if route.dedicated is not None:
            return Route("recorder-call-in", partial(self.recorder.call_initiated, route=route))
        return Route("recorder", partial(self.recorder.api_initiated, route=route))


def asterisk_addresses(settings: Settings) -> frozenset[str]:
    """Who may connect besides this host: the Asterisk the engine talks ARI to."""
    host = urlsplit(settings.ari_url).hostname or ""
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    except OSError:
        log.warning("FastAGI: %s (IVR_ARI_URL) does not resolve: only this host may connect",
                    host)
        return frozenset()


async def start(settings: Settings, recorder: RecorderFlow, call_log: CallLog | None,
                apology: str | None) -> AgiServer | None:
    """The FastAGI server, listening, when IVR_AGI_LISTEN is set (else None)."""
    if settings.agi_listen is None:
        return None
    spool = settings.asterisk_root / "var/spool/asterisk/recording"
    server = AgiServer(settings.agi_listen, AgiRoutes(recorder).choose, call_log, spool,
                       allowed=asterisk_addresses(settings), apology=apology)
    await server.start()
    host, _ = settings.agi_listen
    log.info("FastAGI on agi://%s:%d/ (%s)", host, server.port,
             ", ".join(f"/{r}" for r in ROUTES))
    return server


async def stop(server: AgiServer | None, grace: float) -> None:
    if server is not None:
        await server.close(grace)
