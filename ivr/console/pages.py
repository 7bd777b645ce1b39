"""The console's pages and form actions. Every read and write of recorder data goes through
the recorder service, with the same input readers /vr and /v1 use, so the console can do
nothing the API would refuse."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.console import auth, calls_store, forms, render, store
from ivr.console.auth import Console
from ivr.core.errors import IvrError, MissingParameter
from ivr.core.web import POOL, json_response
from ivr.media.prompts import PROMPT_NAMES, PROMPTS_DIR
from ivr.recorder import inputs
from ivr.recorder.context import RECORDER, audio_links
from ivr.recorder.models import Generated, Recording, Session, SessionView
from ivr.recorder.numbers import dial_forms
from ivr.recorder.params import ABSENT, Params

log = logging.getLogger(__name__)

P = auth.PREFIX
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Action = Callable[[web.Request, Console], Awaitable[web.StreamResponse]]
RECENT_CALLS = 25


def view(handler: Action) -> Handler:
    """A signed-in page or form action. Errors come back as the console shows them: a form
    POST returns to its page with the message, a script's request gets JSON, a page an HTML
    error with the error's status."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await auth.require(handler)(request)
        except auth.CsrfRejected as exc:
            log.warning("console: CSRF check failed on %s %s", request.method, request.path)
            if request.headers.get(auth.CSRF_HEADER) is not None:
                return json_response(exc.as_dict(), exc.http_status)
            return render.page(request, "error.html", status=exc.http_status,
                               title="Request refused", text=exc.message)
        except IvrError as exc:
            if request.method == "POST":
                if request.headers.get(auth.CSRF_HEADER) is not None:
                    return json_response(exc.as_dict(), exc.http_status)
                return render.redirect(request, render.back(request, f"{P}/recorders"),
                                       error=_describe(exc))
            console = await auth.signed_in(request)
            return render.page(request, "error.html", console, status=exc.http_status,
                               title="Not available", text=exc.message)

    return wrapped


def _describe(exc: IvrError) -> str:
    param = exc.extra.get("param")
    return f"{exc.message}" + (f" ({param})" if param and param not in exc.message else "")


def _generated_note(generated: Generated) -> str:
    if not generated.passwords:
        return ""
    shown = ", ".join(f"{k}: {v}" for k, v in generated.passwords.items())
    return f" Generated (shown once): {shown}"


async def _form(request: web.Request) -> dict[str, Any]:
    return dict(await request.post())


# --- signing in -------------------------------------------------------------------------------
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{P}/recorders")


async def signin_form(request: web.Request) -> web.StreamResponse:
    if await auth.signed_in(request) is not None:
        raise web.HTTPSeeOther(auth.next_path(request.query.get("next")))
    token = secrets.token_urlsafe(32)
    response = render.page(request, "signin.html", signin_token=token,
                           next=auth.next_path(request.query.get("next")),
                           signup_open=request.app[RECORDER].open_signup)
    auth.set_cookie(request, response, auth.SIGNIN_COOKIE, token, 3600)
    return response


async def signin(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    expected = request.cookies.get(auth.SIGNIN_COOKIE)
    given = form.get(auth.CSRF_FIELD)
    target = auth.next_path(form.get("next") if isinstance(form.get("next"), str) else None)
    if not expected or not auth.same_token(given if isinstance(given, str) else None, expected):
        return render.page(request, "error.html", status=403, title="Request refused",
                           text="the sign-in form is out of date or did not come from the "
                                "console; reload the sign-in page and try again")
    service = request.app[RECORDER]
    try:
        developer = await service.authenticate(str(form.get("username", ""))[:64],
                                               str(form.get("password", ""))[:200])
    except IvrError as exc:
        return render.redirect(request, f"{P}/signin?{urlencode({'next': target})}",
                               error=exc.message)
    response = render.redirect(request, target)
    await auth.sign_in(request, response, developer)
    return response


async def signout(request: web.Request, c: Console) -> web.StreamResponse:
    response = render.redirect(request, f"{P}/signin", ok="Signed out.")
    await auth.sign_out(request, response)
    return response


# --- recorders --------------------------------------------------------------------------------
async def recorders(request: web.Request, c: Console) -> web.StreamResponse:
    return render.page(request, "recorders.html", c,
                       recorders=await c.service.list_recorders(c.developer),
                       groups=forms.RECORDER_FIELDS, values={})


async def create_recorder(request: web.Request, c: Console) -> web.StreamResponse:
    form = await _form(request)
    params = forms.recorder_params(form, creating=True)
    key = Params(form).key("voice_recorder_key")
    password = params.pop("recorder_password", None)
    recorder, generated = await c.service.create_recorder(
        c.developer, key if isinstance(key, str) else None,
        inputs.recorder_values(Params(params)), password)
    return render.redirect(request, f"{P}/recorders/{recorder.recorder_key}",
                           ok=f"Voice recorder {recorder.recorder_key} created."
                              + _generated_note(generated))


def _prompt_rows(request: web.Request, recorder_key: str, uploaded: dict[str, str],
                 ) -> list[dict[str, Any]]:
    rows = []
    for name in PROMPT_NAMES:
        play_key = uploaded.get(name)
        if play_key is not None:
            url = f"/prompts/{play_key}/{name}.wav"
        elif (PROMPTS_DIR / "en" / f"{name}.wav").is_file():
            url = f"/media/prompts/en/{name}.wav"
        else:
            url = ""
        rows.append({"name": name, "uploaded": play_key is not None, "url": url})
    return rows


async def recorder(request: web.Request, c: Console) -> web.StreamResponse:
    rk = request.match_info["rk"]
    v = await c.service.get_recorder(c.developer, rk)
    uploaded = {name: await c.service.prompt_play_key(c.developer, rk, name)
                for name in v.prompts}
    filters = inputs.filters(Params(dict(request.query)), inputs.LIST_SEARCH_FIELDS)
    lists = (await c.service.search_lists(c.developer, rk, filters, None)).items
    return render.page(
        request, "recorder.html", c, recorder=v, groups=forms.RECORDER_FIELDS,
        values={f.name: forms.current(v, f.name) for f in forms.ALL_FIELDS},
        prompts=_prompt_rows(request, rk, uploaded), lists=lists, filters=filters,
        search_fields=inputs.LIST_SEARCH_FIELDS, list_fields=forms.LIST_FIELDS)


async def update_recorder(request: web.Request, c: Console) -> web.StreamResponse:
    rk = request.match_info["rk"]
    form = await _form(request)
    params = forms.recorder_params(form, creating=False)
    password = params.pop("recorder_password", ABSENT)
    v, generated = await c.service.set_recorder(
        c.developer, rk, inputs.recorder_values(Params(params)), password)
    return render.redirect(request, f"{P}/recorders/{rk}",
                           ok=f"Voice recorder {v.recorder_key} saved."
                              + _generated_note(generated))


async def delete_recorder(request: web.Request, c: Console) -> web.StreamResponse:
    rk = request.match_info["rk"]
    await c.service.delete_recorder(c.developer, rk)
    return render.redirect(request, f"{P}/recorders", ok=f"Voice recorder {rk} deleted.")


async def upload_prompt(request: web.Request, c: Console) -> web.StreamResponse:
    rk, name = request.match_info["rk"], request.match_info["name"]
    form = await request.post()
    upload = form.get("prompt_file")
    if not isinstance(upload, web.FileField):
        raise MissingParameter("prompt_file")
    await c.service.upload_prompt(c.developer, rk, name, upload.file.read())
    return render.redirect(request, f"{P}/recorders/{rk}#prompts",
                           ok=f"Prompt {name} uploaded.")


async def reset_prompt(request: web.Request, c: Console) -> web.StreamResponse:
    rk, name = request.match_info["rk"], request.match_info["name"]
    await c.service.reset_prompt(c.developer, rk, name)
    return render.redirect(request, f"{P}/recorders/{rk}#prompts",
                           ok=f"Prompt {name} is the default again.")


# --- lists and recordings ---------------------------------------------------------------------
async def create_list(request: web.Request, c: Console) -> web.StreamResponse:
    rk = request.match_info["rk"]
    form = await _form(request)
    p = Params(forms.plain_params(form, forms.LIST_FIELDS))
    key = Params(form).key("recording_list_key")
    rl, _ = await c.service.create_list(c.developer, rk, key if isinstance(key, str) else None,
                                        inputs.list_values(p), inputs.initial_recordings(p))
    return render.redirect(request, f"{P}/recorders/{rk}/lists/{rl.list_key}",
                           ok=f"Recording list {rl.list_key} created.")


def _audio(request: web.Request, r: Recording) -> str:
    if r.has_wav_file:
        return audio_links(request).url(r.play_key, "wav", r.link_ttl_seconds)
    if r.has_mp3_file:
        return audio_links(request).url(r.play_key, "mp3", r.link_ttl_seconds)
    return ""


async def recording_list(request: web.Request, c: Console) -> web.StreamResponse:
    rk, lk = request.match_info["rk"], request.match_info["lk"]
    rl = await c.service.get_list(c.developer, rk, lk, None)
    filters = inputs.filters(Params(dict(request.query)), inputs.RECORDING_SEARCH_FIELDS)
    found = (await c.service.search_recordings(c.developer, rk, lk, filters, None)).items
    rows = [{"r": r, "audio": _audio(request, r),
             "takes": await c.service.recording_takes(c.developer, rk, lk, r.recording_key,
                                                      None)}
            for r in sorted(found, key=lambda r: (r.sequence, r.id))]
    return render.page(request, "list.html", c, recorder_key=rk, rl=rl, rows=rows,
                       filters=filters, search_fields=inputs.RECORDING_SEARCH_FIELDS,
                       recording_fields=forms.RECORDING_FIELDS, reorderable=not filters)


async def delete_list(request: web.Request, c: Console) -> web.StreamResponse:
    rk, lk = request.match_info["rk"], request.match_info["lk"]
    await c.service.delete_list(c.developer, rk, lk, None)
    return render.redirect(request, f"{P}/recorders/{rk}", ok=f"Recording list {lk} deleted.")


async def create_recording(request: web.Request, c: Console) -> web.StreamResponse:
    rk, lk = request.match_info["rk"], request.match_info["lk"]
    form = await _form(request)
    p = Params(forms.plain_params(form, forms.RECORDING_FIELDS))
    recording, _ = await c.service.create_recording(
        c.developer, rk, lk, None, inputs.recording_values(p, creating=True),
        inputs.sequence(p), True, None)
    return render.redirect(request, f"{P}/recorders/{rk}/lists/{lk}",
                           ok=f"Recording {recording.recording_key} added.")


async def delete_recording(request: web.Request, c: Console) -> web.StreamResponse:
    rk, lk, key = (request.match_info[k] for k in ("rk", "lk", "key"))
    await c.service.delete_recording(c.developer, rk, lk, key, True, None)
    return render.redirect(request, f"{P}/recorders/{rk}/lists/{lk}",
                           ok=f"Recording {key} deleted.")


async def move_recording(request: web.Request, c: Console) -> web.StreamResponse:
    """Drag and drop: SetRecording's sequence with keep_consecutive, answered with the list's
    order afterwards."""
    rk, lk, key = (request.match_info[k] for k in ("rk", "lk", "key"))
    form = await _form(request)
    sequence = inputs.sequence(Params(form))
    if sequence is None:
        raise MissingParameter("sequence")
    await c.service.set_recording(c.developer, rk, lk, key, {}, sequence, True, None)
    found = (await c.service.search_recordings(c.developer, rk, lk, {}, None)).items
    order = [r.recording_key for r in sorted(found, key=lambda r: (r.sequence, r.id))]
    return json_response({"order": order})


# --- sessions ---------------------------------------------------------------------------------
def session_state(request: web.Request, view: SessionView) -> dict[str, Any]:
    """What the live view shows, as JSON for its event stream."""
    s = view.session
    current = view.current_recording
    return {
        "session_key": s.session_key, "state": s.state,
        "current_recording": None if current is None else current.recording_key,
        "expires_at": s.expires_at.isoformat(),
        "called_at": None if s.called_at is None else s.called_at.isoformat(),
        "ended_at": None if s.ended_at is None else s.ended_at.isoformat(),
        "failure": None if s.failure_code is None else f"{s.failure_code}: {s.failure_reason}",
        "recordings": [{"key": r.recording_key, "name": r.name or "", "sequence": r.sequence,
                        "state": r.state, "length": r.recording_length,
                        "audio": _audio(request, r)} for r in view.recordings],
    }


async def _session_history(request: web.Request,
                           s: Session) -> tuple[list[dict[str, str]], int | None]:
    """The session's states so far, read back from its rows (so a reload keeps them): made,
    the caller in, each take stored, the end; and the call log's id of its call. The live view
    adds what it sees after."""
    async with request.app[POOL].acquire() as conn:
        takes = await calls_store.session_takes(conn, s.id)
        call_id = await calls_store.call_of_session(conn, s.id)
    found: list[tuple[datetime, int, str, str]] = [(s.created_at, 0, "created", "created")]
    if s.called_at is not None:
        found.append((s.called_at, 1, "called", "called"))
    # Between takes the session is `called` again.
    found += [(t.created_at, 2, "called", f"take #{t.take_number} of {t.recording_key}: "
                                          f"{t.status}") for t in takes]
    if s.ended_at is not None:
        found.append((s.ended_at, 3, s.state, s.state))
    return [{"at": f"{at:%H:%M:%S}", "state": state, "text": text}
            for at, _, state, text in sorted(found, key=lambda e: (e[0], e[1]))], call_id


async def _session_page(request: web.Request, c: Console, view: SessionView) -> web.Response:
    history, call_id = await _session_history(request, view.session)
    return render.page(request, "session.html", c, view=view, s=view.session,
                       initial=session_state(request, view), pin=view.pin, history=history,
                       call_id=call_id)


async def start_session(request: web.Request, c: Console) -> web.StreamResponse:
    rk, lk = request.match_info["rk"], request.match_info["lk"]
    form = await request.post()
    chosen = [str(v) for v in form.getall("recording_keys", []) if isinstance(v, str)]
    p = Params({"recording_keys": ",".join(chosen), "caller_id": form.get("caller_id", "")})
    view = await c.service.start_session(c.developer, rk, lk, inputs.recording_keys(p),
                                         inputs.caller_id(p), True, None)
    # The PIN is readable only in this answer: the page is rendered here, not redirected to.
    return await _session_page(request, c, view)


async def session(request: web.Request, c: Console) -> web.StreamResponse:
    view = await c.service.session_status(c.developer, request.match_info["sk"])
    return await _session_page(request, c, view)


async def expire_session(request: web.Request, c: Console) -> web.StreamResponse:
    sk = request.match_info["sk"]
    await c.service.expire_session(c.developer, sk)
    return render.redirect(request, f"{P}/sessions/{sk}", ok=f"Session {sk} expired.")


# --- operations -------------------------------------------------------------------------------
def _mask(caller_id: str) -> str:
    # Numbers are shared between developers' recorders: show enough to recognise a call.
    return caller_id if len(caller_id) <= 4 else "•" * (len(caller_id) - 4) + caller_id[-4:]


async def operations(request: web.Request, c: Console) -> web.StreamResponse:
    mine = await c.service.list_recorders(c.developer)
    numbers = sorted({n.number for v in mine for n in v.phone_numbers})
    # Calls log the number as dialled: 15125550100 or 5125550100 reach +15125550100 too.
    dialled = sorted({f for n in numbers for f in dial_forms(n)})
    async with request.app[POOL].acquire() as conn:
        live = await store.calls_to(conn, dialled, live=True, limit=100)
        recent = await store.calls_to(conn, dialled, live=False, limit=RECENT_CALLS)
    deliveries = []
    for v in mine:
        for state in ("failed", "pending"):
            for row in await c.service.deliveries(c.developer, v.recorder_key, state, 50):
                deliveries.append({"recorder_key": v.recorder_key, **row})
    return render.page(request, "operations.html", c, live=live, recent=recent,
                       deliveries=deliveries, mask=_mask, numbers=numbers)


async def retry_delivery(request: web.Request, c: Console) -> web.StreamResponse:
    rk, event_id = request.match_info["rk"], request.match_info["event_id"]
    await c.service.retry_delivery(c.developer, rk, event_id)
    return render.redirect(request, f"{P}/operations", ok=f"Delivery {event_id} queued again.")

