"""The Numbers page: every number the developer's recorders answer on, in E.164, with what to
dial from the development softphone and the browser phone (_phone.html) to call one."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ivr.console import render
from ivr.console.auth import Console
from ivr.core.web import SETTINGS
from ivr.provision.asterisk_conf import reach
from ivr.recorder.numbers import dial_forms


@dataclass
class NumberRow:
    number: str  # E.164
    display_number: str
    country: str
    dial_forms: list[str]
    development: bool  # IVR_DEV_NUMBER
    # (recorder key, its name, "call" or "api"): the recorders this number reaches.
    recorders: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def how(self) -> str:
        if all(kind == "call" for _, _, kind in self.recorders):
            return "dedicated: a caller starts a session of its own"
        return "shared: the caller keys a session's PIN (from StartSession)"


async def numbers(request: web.Request, c: Console) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    found: dict[str, NumberRow] = {}
    for v in await c.service.list_recorders(c.developer):
        for n in v.phone_numbers:
            row = found.setdefault(n.number, NumberRow(
                n.number, n.display_number, n.country, dial_forms(n.number),
                n.number == settings.dev_number))
            row.recorders.append((v.recorder_key, v.name, v.initiation))
    rows = sorted(found.values(), key=lambda r: (not r.development, r.number))
    net = settings.network
    address = f"{reach(net.sip_bind)}:{net.sip_port}"
    return render.page(request, "numbers.html", c, rows=rows, sip_address=address,
                       softphone=f"sip:{settings.softphone_user}@{address}")
