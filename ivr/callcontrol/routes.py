"""Everything call control serves over HTTP, registered in one place."""

from __future__ import annotations

from aiohttp import web

from ivr.callcontrol import rest, voipnow


def add_routes(app: web.Application) -> None:
    rest.add_routes(app)
    app.router.add_put("/uapi/phoneCalls/{user}/{extension}/{phone_call_id}",
                       voipnow.start_recording)
