"""The console's error list (/console/errors): the developer's calls whose flow failed and
their deliveries that failed or are failing, newest first, each with its stable code linked to
that code's page (/console/errors/codes/{code}, readable without signing in)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ivr.console import auth, calls_store, render, webhooks_store
from ivr.console.auth import Console
from ivr.console.error_codes import CODES, delivery_code
from ivr.core.web import POOL

P = "/console"
SHOWN = 100  # of each kind
KINDS = ("flow", "delivery")


async def errors(request: web.Request, c: Console) -> web.StreamResponse:
    kind = request.query.get("kind", "") or None
    if kind is not None and kind not in KINDS:
        return render.page(request, "errors.html", c, status=400, rows=[], kind=kind,
                           kinds=KINDS, error=f"Kind: {kind[:20]!r} is not flow or delivery")
    rows: list[dict[str, Any]] = []
    async with request.app[POOL].acquire() as conn:
        if kind in (None, "flow"):
            _, failed = await calls_store.calls_page(
                conn, c.developer.id, calls_store.Filters(state="failed"), SHOWN, 0)
            rows += [{"at": f.ended_at or f.started_at, "kind": "flow",
                      "code": f.failure_code or "internal_error",
                      "what": f"Call from {f.caller_id or 'a withheld number'} to {f.dialed}"
                              f" ({f.owner})",
                      "reason": f.failure_reason or "", "url": f"{P}/calls/{f.ref}",
                      "state": "failed"} for f in failed]
        if kind in (None, "delivery"):
            failing = await webhooks_store.failing(conn, c.developer.id, SHOWN)
            rows += [{"at": d["settled_at"] or d["tried_at"] or d["created_at"],
                      "kind": "delivery", "code": delivery_code(d),
                      "what": f"{'Callback' if d['kind'] == 'callback' else 'Upload'} "
                              f"{d['event_type']} of recorder {d['recorder_key']}",
                      "reason": d["last_error"] or "", "url": f"{P}/webhooks/{d['event_id']}",
                      "state": "failed" if d["state"] == "failed" else "retrying"}
                     for d in failing]
    rows.sort(key=lambda r: r["at"], reverse=True)
    return render.page(request, "errors.html", c, rows=rows, kind=kind or "", kinds=KINDS,
                       error="", known=CODES)


async def code_page(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    found = CODES.get(code)
    console = await auth.signed_in(request)
    if found is None:
        return render.page(request, "error.html", console, status=404, title="Unknown code",
                           text=f"there is no error code {code[:40]!r}; the list of codes "
                                "is at /console/errors/codes",
                           back={"url": f"{P}/errors/codes", "text": "Every error code"})
    return render.page(request, "error_code.html", console, c=found)


async def codes(request: web.Request) -> web.StreamResponse:
    return render.page(request, "error_codes.html", await auth.signed_in(request),
                       codes=list(CODES.values()))
