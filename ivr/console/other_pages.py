"""The page of a call-control or dialer call in the console's call log (other_calls.py): its
state, why it failed (a stable code and the cause), its timeline from the call's own times and
its webhooks, live while the call is in progress. The shape is the recorder call's page's
(calls.py), so the same script follows both."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from ivr.console import live, other_calls, render
from ivr.console.auth import Console
from ivr.console.other_calls import OtherCall
from ivr.core.errors import NotFound
from ivr.core.web import POOL

P = "/console"
PREFIXES = ("cc-", "dialer-")
POLL_SECONDS = 0.5
STATE_LABELS = {"in_progress": "in progress", "completed": "completed", "failed": "failed",
                "lost": "lost", "cancelled": "cancelled"}
KINDS = {"callcontrol": "call-control application", "dialer": "dialer job"}


class NoSuchCall(NotFound):
    error_id = "no_such_call"


async def _read(request: web.Request, c: Console) -> tuple[OtherCall, list[dict[str, Any]]]:
    """The call and its webhooks; an id that is not one, or another developer's, is 404."""
    raw = request.match_info["call_id"]
    async with request.app[POOL].acquire() as conn:
        found: OtherCall | None = None
        if raw.startswith("cc-"):
            try:
                voice_id = uuid.UUID(raw[3:])
            except ValueError:
                voice_id = None
            if voice_id is not None:
                found = await other_calls.cc_call(conn, c.developer.id, voice_id)
        elif raw[7:].isdigit() and len(raw) <= 25:
            found = await other_calls.dialer_call(conn, c.developer.id, int(raw[7:]))
        if found is None:
            raise NoSuchCall(f"there is no call {raw[:40]!r} among your calls")
        return found, await other_calls.deliveries(conn, found.stream)


def _entry(at: datetime, order: int, kind: str, text: str, detail: str = "",
           state: str = "") -> tuple[datetime, int, dict[str, Any]]:
    return at, order, {"at": at.isoformat(), "kind": kind, "text": text, "detail": detail,
                       "state": state, "url": ""}


def state_of(call: OtherCall, webhooks: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The page's changing parts as JSON, and whether they can no longer change."""
    entries = [_entry(call.started_at, 0, "call",
                      "Call placed" if call.direction == "outbound" else "Call came in",
                      f"from {call.caller_id or 'a withheld number'} to {call.dialed}",
                      "started")]
    if call.ringing_at is not None:
        entries.append(_entry(call.ringing_at, 1, "call", "Ringing"))
    if call.answered_at is not None:
        entries.append(_entry(call.answered_at, 2, "call", "Answered", "", "called"))
    entries += [_entry(r["created_at"], 3, "take", f"Recording {r['recording_name']}",
                       "" if r["duration"] is None else f"{r['duration']:.1f} s", r["state"])
                for r in call.recordings]
    for d in webhooks:
        detail = f"{d['url']} · {d['state']} after {d['attempts']} attempt" \
                 f"{'' if d['attempts'] == 1 else 's'}"
        if d["last_status"]:
            detail += f" · last answer HTTP {d['last_status']}"
        elif d["last_error"]:
            detail += f" · {str(d['last_error'])[:300]}"
        entries.append(_entry(d["created_at"], 4, "webhook", f"Webhook {d['event_type']}",
                              detail, d["state"]))
    if call.failure_code and call.ended_at is not None:
        entries.append(_entry(call.ended_at, 5, "failure", f"Failed: {call.failure_code}",
                              call.failure_reason or "", "failed"))
    if call.ended_at is not None:
        entries.append(_entry(call.ended_at, 6, "call", "Call ended", call.cause, call.state))
    settled = call.ended_at is not None and all(d["state"] != "pending" for d in webhooks)
    return {
        "id": call.ref, "state": call.state,
        "state_label": STATE_LABELS.get(call.state, call.state),
        "ended_at": None if call.ended_at is None else call.ended_at.isoformat(),
        "hangup": call.cause,
        "failure": None if call.failure_code is None else {
            "code": call.failure_code, "reason": call.failure_reason or ""},
        "timeline": [e for _, _, e in sorted(entries, key=lambda e: (e[0], e[1]))],
        "takes": [], "pending_deliveries": sum(d["state"] == "pending" for d in webhooks),
    }, settled


async def call(request: web.Request, c: Console) -> web.StreamResponse:
    found, webhooks = await _read(request, c)
    initial, _ = state_of(found, webhooks)
    return render.page(request, "other_call.html", c, call=found, initial=initial,
                       kind=KINDS[found.kind], events=f"{P}/calls/{found.ref}/events")


async def call_events(request: web.Request, c: Console) -> web.StreamResponse:
    await _read(request, c)  # errors stay HTTP ones, before the stream

    async def read() -> tuple[dict[str, Any], bool]:
        return state_of(*await _read(request, c))

    return await live.stream(request, read, lambda _: POLL_SECONDS)
