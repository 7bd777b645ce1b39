"""The console phone's one request: a short-lived SIP account for the browser's next call
(phone_service.py), answered as JSON to the page's script."""

from __future__ import annotations

from aiohttp import web

from ivr.console.auth import Console
from ivr.console.phone_service import PHONE
from ivr.core.errors import Unavailable
from ivr.core.web import json_response


async def issue_account(request: web.Request, c: Console) -> web.StreamResponse:
    phone = request.app.get(PHONE)
    if phone is None:
        raise Unavailable("the phone needs the engine's telephony: this server runs the web "
                          "app without it")
    account = await phone.issue(c.developer)
    return json_response(account.as_dict(), headers={"Cache-Control": "no-store"})
