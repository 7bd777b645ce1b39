"""Everything call control serves over HTTP, registered in one place."""

from __future__ import annotations

from aiohttp import web

from ivr.callcontrol import rest, voipnow


def add_routes(app: web.Application) -> None:
    rest.add_routes(app)
    # The UAPI's path is plural; the seed's example writes it singular.
    for collection in ("phoneCalls", "phoneCall"):
        app.router.add_put(f"/uapi/{collection}/{{user}}/{{extension}}/{{phone_call_id}}",
                           voipnow.start_recording)
