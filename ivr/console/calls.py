"""The console's call log: every call to the developer's recorders (one list, filtered by
number, state and time) and a page per call with its timeline, built from rows the engine
writes anyway (calls_store), its takes with players, and why it failed. Both pages follow a
call in progress through a server-sent event stream, like the live session view."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.console import calls_store, live, other_pages, render
from ivr.console.auth import Console
from ivr.console.calls_store import CallRow, Filters, ListRow, TakeRow
from ivr.core.errors import InvalidParameter, NotFound
from ivr.core.web import POOL, SETTINGS
from ivr.recorder.models import take_path

P = "/console"
PER_PAGE = 50
MAX_PAGE = 1_000_000
LIVE_POLL_SECONDS = 0.5
# After the call, a callback still being retried is followed at a gentler pace.
SETTLING_POLL_SECONDS = 2.0
LIST_POLL_SECONDS = 1.0
STATE_LABELS = {"in_progress": "in progress", "completed": "completed",
                "caller_hung_up": "caller hung up", "failed": "failed", "lost": "lost",
                "cancelled": "cancelled"}
HANG_UPS = {
    "caller hung up": "the caller hung up",
    "completed": "the engine hung up: the call's flow had finished",
    "error": "the engine hung up after the flow failed (the caller heard an apology)",
    "lost": "the engine lost the channel (it restarted mid-call) and closed the call "
            "when it resynchronised",
    "cancelled": "the engine stopped during the call",
}
_NUMBER = re.compile(r"^\+?[0-9]{1,15}$")
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


class NoSuchCall(NotFound):
    error_id = "no_such_call"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- reading the query ------------------------------------------------------------------------
def _moment(raw: str, param: str, label: str) -> datetime | None:
    if not raw:
        return None
    try:
        found = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(param, f"{label}: {raw[:30]!r} is not a date and time "
                                      "(2025-01-31T14:00)") from None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found


def filters_of(query: Any) -> tuple[Filters, dict[str, str]]:
    """The filters asked for, and a message per field that is wrong (by the field's label)."""
    errors: dict[str, str] = {}
    number = re.sub(r"[\s().-]", "", query.get("number", ""))
    if number and not _NUMBER.match(number):
        errors["number"] = "Number: digits only, with an optional leading +"
    state = query.get("state", "") or None
    if state is not None and state not in calls_store.STATES:
        errors["state"] = f"State: {state[:20]!r} is not one of the states listed"
        state = None
    moments: dict[str, datetime | None] = {}
    for param, label in (("since", "From"), ("until", "Until")):
        try:
            moments[param] = _moment(query.get(param, ""), param, label)
        except InvalidParameter as exc:
            errors[param], moments[param] = exc.message, None
    return Filters(number.lstrip("+") or None, state, moments["since"], moments["until"]), errors


def page_of(query: Any) -> int:
    raw = query.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidParameter("page", f"page {raw[:20]!r} is not a page number "
                                       "(a whole number from 1)")
    return int(raw)


def _call_id(request: web.Request) -> int:
    raw = request.match_info["call_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NoSuchCall(f"there is no call {raw[:30]!r} among your calls")
    return int(raw)


# --- the list ---------------------------------------------------------------------------------
def row_json(c: ListRow) -> dict[str, Any]:
    return {"id": c.ref, "kind": c.kind, "url": f"{P}/calls/{c.ref}",
            "started_at": _iso(c.started_at), "ended_at": _iso(c.ended_at),
            "caller_id": c.caller_id, "dialed": c.dialed,
            "state": c.state, "state_label": STATE_LABELS.get(c.state, c.state),
            "of": c.owner, "detail": c.detail,
            "seconds": None if c.ended_at is None else round(
                (c.ended_at - c.started_at).total_seconds()),
            "failure_code": c.failure_code, "failure_reason": c.failure_reason}


async def _page(request: web.Request, c: Console, f: Filters,
                page: int) -> tuple[int, list[ListRow]]:
    async with request.app[POOL].acquire() as conn:
        return await calls_store.calls_page(conn, c.developer.id, f, PER_PAGE,
                                            (page - 1) * PER_PAGE)


async def calls(request: web.Request, c: Console) -> web.StreamResponse:
    f, errors = filters_of(request.query)
    page = page_of(request.query)
    count, rows = (0, []) if errors else await _page(request, c, f, page)
    last = max(1, -(-count // PER_PAGE))
    if page > last and not errors:
        raise InvalidParameter("page", f"page {page} is past the last page ({last})")
    values = {k: request.query.get(k, "") for k in ("number", "state", "since", "until")}
    shown = {k: v for k, v in values.items() if v}
    return render.page(
        request, "calls.html", c, status=400 if errors else 200, errors=errors,
        values=values, states=STATE_LABELS, count=count, page=page, last_page=last,
        initial={"calls": [row_json(r) for r in rows]},
        events=f"{P}/calls/events?{urlencode({**shown, 'page': str(page)})}",
        page_link=lambda n: "?" + urlencode({**shown, "page": str(n)}))


async def calls_events(request: web.Request, c: Console) -> web.StreamResponse:
    """The list's page again whenever a call on it (or a new one) changed; until the browser
    leaves or the app stops."""
    f, errors = filters_of(request.query)
    page = page_of(request.query)
    if errors:
        raise InvalidParameter(next(iter(errors)), next(iter(errors.values())))

    async def read() -> tuple[dict[str, Any], bool]:
        _, rows = await _page(request, c, f, page)
        return {"calls": [row_json(r) for r in rows]}, False

    return await live.stream(request, read, lambda _: LIST_POLL_SECONDS)


# --- one call ---------------------------------------------------------------------------------
def _entry(at: datetime, order: int, kind: str, text: str, detail: str = "",
           state: str = "", url: str = "") -> tuple[datetime, int, dict[str, Any]]:
    return at, order, {"at": at.isoformat(), "kind": kind, "text": text, "detail": detail,
                       "state": state, "url": url}


def _take_detail(t: TakeRow) -> str:
    parts = [f"{t.duration_ms / 1000:.1f} s", t.status + (" (the recording's audio)"
                                                       if t.accepted else "")]
    if t.kept_on_hangup:
        parts.append("kept on hang-up")
    if t.touchtone_input:
        parts.append(f"keyed {t.touchtone_input}")
    if t.upload_state:
        parts.append(f"upload {t.upload_state}")
    return " · ".join(parts)


def _delivery_details(deliveries: list[dict[str, Any]]) -> list[str]:
    """Each delivery's state in words; one still pending behind an earlier one of its stream
    says so (a stream is delivered in order)."""
    details, blocked = [], set()
    for d in deliveries:
        parts = [d["url"], f"{d['state']} after {d['attempts']} attempt"
                           f"{'' if d['attempts'] == 1 else 's'}"]
        if d["last_status"]:
            parts.append(f"last answer HTTP {d['last_status']}")
        if d["last_error"] and d["last_error"] != f"HTTP {d['last_status']}":
            parts.append(str(d["last_error"])[:300])
        if d["state"] == "pending":
            if d["stream"] in blocked:
                parts.append("waits until the earlier events of its session are delivered")
            elif d["attempts"]:
                parts.append(f"next try {d['next_attempt_at']:%H:%M:%S} UTC")
            blocked.add(d["stream"])
        details.append(" · ".join(parts))
    return details


def timeline(c: CallRow, takes: list[TakeRow], refused: list[datetime],
             deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What happened on the call, in order, from the rows it left."""
    entries = [_entry(c.started_at, 0, "call", "Call started",
                      f"from {c.caller_id or 'a withheld number'} to {c.dialed}", "started")]
    entries += [_entry(at, 1, "key", "PIN or password not accepted",
                       "the digits keyed are never kept") for at in refused]
    if c.called_at is not None:
        entries.append(_entry(c.called_at, 2, "session", "Caller in",
                              f"session {c.session_key}: recorder {c.recorder_key}, list "
                              f"{c.list_key}", "called"))
    entries += [_entry(t.created_at, 3, "take",
                       f"Take #{t.take_number} of recording {t.recording_key}"
                       + (f" ({t.recording_name})" if t.recording_name else ""),
                       _take_detail(t), t.status) for t in takes]
    entries += [_entry(d["created_at"], 4, "webhook",
                       f"{'Callback' if d['kind'] == 'callback' else 'Upload'} "
                       f"{d['event_type']}", detail, d["state"],
                       f"{P}/webhooks/{d['event_id']}")
                for d, detail in zip(deliveries, _delivery_details(deliveries), strict=True)]
    now = datetime.now(UTC)
    if c.failure_code:
        entries.append(_entry(c.session_ended or c.ended_at or now, 5, "failure",
                              f"Failed: {c.failure_code}", c.failure_reason or "", "failed"))
    if c.session_ended is not None:
        entries.append(_entry(c.session_ended, 6, "session", f"Session {c.session_state}",
                              "", c.session_state))
    if c.ended_at is not None:
        entries.append(_entry(c.ended_at, 7, "call", "Call ended",
                              HANG_UPS.get(c.outcome or "", c.outcome or ""), c.state))
    return [e for _, _, e in sorted(entries, key=lambda e: (e[0], e[1]))]


def _take_json(request: web.Request, t: TakeRow) -> dict[str, Any]:
    ext = "wav" if t.has_wav_file else "mp3" if t.has_mp3_file else None
    if t.locked:
        why = "its list or recording has an access password: not played in the console"
    elif t.audio_deleted_at is not None:
        why = f"deleted by the recorder's retention on {t.audio_deleted_at:%Y-%m-%d}"
    elif ext is None or not take_path(request.app[SETTINGS].data_dir, t.play_key,
                                      t.take_number, ext).is_file():
        why = "no audio stored here"
    else:
        why = ""
    return {"id": t.id, "number": t.take_number, "recording_key": t.recording_key,
            "recording_name": t.recording_name or "", "status": t.status,
            "accepted": t.accepted, "seconds": round(t.duration_ms / 1000, 1),
            "kept_on_hangup": t.kept_on_hangup, "created_at": _iso(t.created_at),
            "audio": "" if why else f"{P}/takes/{t.id}/audio.{ext}", "no_audio": why}


async def _call_state(request: web.Request, c: Console,
                      call_id: int) -> tuple[CallRow, dict[str, Any], bool]:
    """The call, its page's changing parts as JSON, and whether they can no longer change."""
    async with request.app[POOL].acquire() as conn:
        row = await calls_store.call(conn, c.developer.id, call_id)
        if row is None:
            raise NoSuchCall(f"there is no call {call_id} among your calls")
        takes = await calls_store.takes_of_call(conn, row.session_id, row.channel_id)
        refused = await calls_store.pin_failures(conn, row)
        deliveries = await calls_store.deliveries(conn, row, [t.id for t in takes])
    settled = row.ended_at is not None and all(d["state"] != "pending" for d in deliveries)
    return row, {
        "id": row.id, "state": row.state, "state_label": STATE_LABELS.get(row.state, row.state),
        "ended_at": _iso(row.ended_at), "hangup": HANG_UPS.get(row.outcome or "", ""),
        "failure": None if row.failure_code is None else {
            "code": row.failure_code, "reason": row.failure_reason or ""},
        "session_state": row.session_state,
        "timeline": timeline(row, takes, refused, deliveries),
        "takes": [_take_json(request, t) for t in takes],
        "pending_deliveries": sum(d["state"] == "pending" for d in deliveries),
    }, settled


async def call(request: web.Request, c: Console) -> web.StreamResponse:
    if request.match_info["call_id"].startswith(other_pages.PREFIXES):
        return await other_pages.call(request, c)
    call_id = _call_id(request)
    row, state, _ = await _call_state(request, c, call_id)
    return render.page(request, "call.html", c, call=row, initial=state,
                       events=f"{P}/calls/{call_id}/events")


async def call_events(request: web.Request, c: Console) -> web.StreamResponse:
    if request.match_info["call_id"].startswith(other_pages.PREFIXES):
        return await other_pages.call_events(request, c)
    call_id = _call_id(request)
    await _call_state(request, c, call_id)  # errors stay HTTP ones, before the stream

    async def read() -> tuple[dict[str, Any], bool]:
        _, state, settled = await _call_state(request, c, call_id)
        return state, settled

    return await live.stream(request, read, lambda d: LIVE_POLL_SECONDS if d["ended_at"] is None
                         else SETTLING_POLL_SECONDS)


async def take_audio(request: web.Request, c: Console) -> web.StreamResponse:
    take_id, ext = request.match_info["take_id"], request.match_info["ext"]
    async with request.app[POOL].acquire() as conn:
        t = await calls_store.take(conn, c.developer.id, int(take_id))
    if t is None or _take_json(request, t)["audio"] != f"{P}/takes/{take_id}/audio.{ext}":
        raise NotFound(f"no {ext} audio for take {take_id} among your calls")
    path = take_path(request.app[SETTINGS].data_dir, t.play_key, t.take_number, ext)
    return web.FileResponse(path, headers={"Content-Type": AUDIO_TYPES[ext]})
