"""The webhook inspector (/console/webhooks): every callback and upload of the developer's
recorders, delivered ones too, each with every attempt's request and answer as the worker
recorded them (ivr/delivery/attempts.py), the next try, what it waits behind, and Retry now /
Redeliver buttons. The page of a pending delivery follows it live."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.console import calls, live, render, webhooks_store
from ivr.console.auth import Console
from ivr.console.error_codes import delivery_code
from ivr.core.errors import Conflict, InvalidParameter, NotFound
from ivr.core.web import POOL
from ivr.delivery import attempts, outbox

P = "/console/webhooks"
PER_PAGE = 50
BODY_SHOWN = 64 * 1024  # a callback's body shown in full up to this much
POLL_SECONDS = 1.0


class NoSuchDelivery(NotFound):
    error_id = "no_such_delivery"


def _event_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["event_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NoSuchDelivery(f"there is no delivery {raw[:40]!r} among your webhooks") from None


def _text(data: bytes | None, limit: int) -> str:
    if data is None:
        return ""
    shown = data[:limit].decode("utf-8", "replace")
    return shown + (f"\n… ({len(data) - limit} more bytes)" if len(data) > limit else "")


def waiting_note(d: dict[str, Any]) -> str:
    """Why a pending delivery has not gone yet, in words."""
    if d["state"] != "pending":
        return ""
    if d["blocked_by"] is not None:
        return ("waits behind an earlier event of the same session (each session's events are "
                "delivered in order)")
    if d["lease_until"] is not None and d["lease_until"] > datetime.now(d["created_at"].tzinfo):
        return "being sent now"
    if d["attempts"]:
        return f"next try {d['next_attempt_at']:%Y-%m-%d %H:%M:%S} UTC"
    return "due now"


async def webhooks(request: web.Request, c: Console) -> web.StreamResponse:
    state = request.query.get("state", "") or None
    errors: dict[str, str] = {}
    if state is not None and state not in webhooks_store.STATES:
        errors["state"] = f"State: {state[:20]!r} is not one of the states listed"
    page = calls.page_of(request.query)
    count, rows = 0, []  # type: tuple[int, list[dict[str, Any]]]
    if not errors:
        async with request.app[POOL].acquire() as conn:
            count, rows = await webhooks_store.page(conn, c.developer.id, state, PER_PAGE,
                                                    (page - 1) * PER_PAGE)
    last = max(1, -(-count // PER_PAGE))
    if page > last and not errors:
        raise InvalidParameter("page", f"page {page} is past the last page ({last})")
    shown = {"state": state} if state and not errors else {}
    return render.page(
        request, "webhooks.html", c, status=400 if errors else 200, errors=errors,
        value=request.query.get("state", ""), states=webhooks_store.STATES, rows=rows,
        note=waiting_note, count=count, page=page, last_page=last,
        page_link=lambda n: "?" + urlencode({**shown, "page": str(n)}))


async def _one(request: web.Request, c: Console, event_id: uuid.UUID) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        d = await webhooks_store.one(conn, c.developer.id, event_id)
        if d is None:
            raise NoSuchDelivery(f"there is no delivery {event_id} among your webhooks")
        d["tries"] = await attempts.of_row(conn, d["id"])
    return d


def _version(d: dict[str, Any]) -> dict[str, Any]:
    # What the live page watches: when any of it changes, the page is loaded again.
    return {"state": d["state"], "attempts": len(d["tries"]), "blocked": str(d["blocked_by"]),
            "next": d["next_attempt_at"].isoformat(), "waiting": d["waiting"]}


async def webhook(request: web.Request, c: Console) -> web.StreamResponse:
    event_id = _event_id(request)
    d = await _one(request, c, event_id)
    return render.page(
        request, "webhook.html", c, d=d, note=waiting_note(d),
        code=delivery_code(d) if d["last_error"] and d["state"] != "delivered" else "",
        body=_text(d["body"], BODY_SHOWN), excerpt=lambda b: _text(b, attempts.BODY_EXCERPT),
        events=f"{P}/{event_id}/events" if d["state"] == "pending" else "",
        version=_version(d))


async def webhook_events(request: web.Request, c: Console) -> web.StreamResponse:
    """The delivery's state until it settles; the page reloads when it changes."""
    event_id = _event_id(request)
    await _one(request, c, event_id)  # errors stay HTTP ones, before the stream

    async def read() -> tuple[dict[str, Any], bool]:
        d = await _one(request, c, event_id)
        return _version(d), d["state"] != "pending"

    return await live.stream(request, read, lambda _: POLL_SECONDS)


class NotNow(Conflict):
    error_id = "delivery_not_retryable"


async def retry(request: web.Request, c: Console) -> web.StreamResponse:
    """Retry now: a failed delivery is pending again (a fresh retry window); a pending one
    waiting for its next try is due at once."""
    event_id = _event_id(request)
    d = await _one(request, c, event_id)
    owner = f"recorder:{await _recorder_id(request, c, d)}"
    async with request.app[POOL].acquire() as conn:
        if d["state"] == "failed":
            done = await outbox.retry(conn, owner, event_id, c.service.events.retry_for)
        else:
            done = d["blocked_by"] is None and await outbox.retry_now(conn, owner, event_id)
    if not done:
        raise NotNow(_why_not(d))
    return render.redirect(request, f"{P}/{event_id}", ok="Retrying now.")


async def redeliver(request: web.Request, c: Console) -> web.StreamResponse:
    event_id = _event_id(request)
    d = await _one(request, c, event_id)
    owner = f"recorder:{await _recorder_id(request, c, d)}"
    async with request.app[POOL].acquire() as conn:
        if not await outbox.redeliver(conn, owner, event_id, c.service.events.retry_for):
            raise NotNow("only a delivered callback can be redelivered; this one is "
                         f"{d['kind']} {d['state']}")
    return render.redirect(request, f"{P}/{event_id}", ok="Queued to be delivered again.")


def _why_not(d: dict[str, Any]) -> str:
    if d["state"] == "delivered":
        return "this delivery was delivered already; Redeliver sends a callback again"
    if d["blocked_by"] is not None:
        return ("this delivery waits behind an earlier event of its session; retry that "
                "one first")
    return "this delivery is no longer pending; reload the page"


async def _recorder_id(request: web.Request, c: Console, d: dict[str, Any]) -> int:
    recorder = await c.service.get_recorder(c.developer, d["recorder_key"])
    return recorder.id
