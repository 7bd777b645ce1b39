"""The console's dialer section: a dialer account's jobs (broadcasts and campaigns), each
job's calls, pause / resume / cancel through the Dialer, and the job's live progress (a
server-sent event stream). A job of another account is "no such job" (404), as is a job id
that is not one."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ivr.console import auth, dialer_auth, dialer_store, live, render
from ivr.console.dialer_auth import DialerConsole
from ivr.core.errors import InvalidParameter, IvrError, NotFound
from ivr.core.web import POOL
from ivr.dialer.accounts import ACCOUNT_ID_RE
from ivr.dialer.models import JobStatus
from ivr.telephony import toll

log = logging.getLogger(__name__)

P = dialer_auth.PREFIX
JOBS_PER_PAGE = 25
CALLS_PER_PAGE = 50
POLL_SECONDS = 0.5
MAX_PAGE = 1_000_000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Action = Callable[[web.Request, DialerConsole], Awaitable[web.StreamResponse]]


class NoSuchJob(NotFound):
    error_id = "no_such_job"


def view(handler: Action) -> Handler:
    """A signed-in dialer page or form action. A bad page or job gets an HTML error page with
    its status; a form POST the dialer refuses returns to the job page with the message."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await dialer_auth.require(handler)(request)
        except auth.CsrfRejected as exc:
            log.warning("console: CSRF check failed on %s %s", request.method, request.path)
            return render.page(request, "error.html", await dialer_auth.signed_in(request),
                               status=exc.http_status, title="Request refused",
                               text=exc.message)
        except IvrError as exc:
            console = await dialer_auth.signed_in(request)
            if request.method == "POST" and not isinstance(exc, NotFound):
                return render.redirect(request, render.back(request, P + "/jobs"),
                                       error=exc.message)
            title = "Not found" if isinstance(exc, NotFound) else "Not available"
            return render.page(request, "error.html", console, status=exc.http_status,
                               title=title, text=exc.message)

    return wrapped


# --- reading the request ----------------------------------------------------------------------
def job_id_of(request: web.Request) -> uuid.UUID:
    raw = request.match_info["job_id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NoSuchJob(f"there is no job {raw[:60]!r}: a job id is a UUID such as "
                        "2f1c3a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b") from None


def page_of(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidParameter("page", f"page {raw[:20]!r} is not a page number "
                                       "(a whole number from 1)")
    return int(raw)


def state_of(request: web.Request) -> str | None:
    raw = request.query.get("state", "")
    if raw == "":
        return None
    if raw not in dialer_store.CALL_STATES:
        raise InvalidParameter("state", f"{raw[:20]!r} is not a call state (one of "
                                        f"{', '.join(dialer_store.CALL_STATES)})")
    return raw


def _last_page(count: int, per_page: int) -> int:
    return max(1, -(-count // per_page))


def _check_page(page: int, last: int) -> None:
    if page > last:
        raise InvalidParameter("page", f"page {page} is past the last page ({last})")


async def _status(c: DialerConsole, job_id: uuid.UUID) -> JobStatus:
    status = await c.dialer.job(c.account, job_id)
    if status is None:
        # Unknown and another account's are told apart by nobody.
        raise NoSuchJob(f"there is no job {job_id} in this account")
    return status


# --- signing in -------------------------------------------------------------------------------
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(P + "/jobs")


async def signin_form(request: web.Request) -> web.StreamResponse:
    if await dialer_auth.signed_in(request) is not None:
        raise web.HTTPSeeOther(dialer_auth.next_path(request.query.get("next")))
    token = secrets.token_urlsafe(32)
    response = render.page(request, "dialer_signin.html", signin_token=token,
                           next=dialer_auth.next_path(request.query.get("next")))
    dialer_auth.set_cookie(request, response, dialer_auth.SIGNIN_COOKIE, token, 3600)
    return response


async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    expected = request.cookies.get(dialer_auth.SIGNIN_COOKIE)
    given, nxt = form.get(auth.CSRF_FIELD), form.get("next")
    target = dialer_auth.next_path(nxt if isinstance(nxt, str) else None)
    if not expected or not auth.same_token(given if isinstance(given, str) else None, expected):
        return render.page(request, "error.html", status=403, title="Request refused",
                           text="the sign-in form is out of date or did not come from the "
                                "console; reload the sign-in page and try again",
                           back={"url": P + "/signin", "text": "Back to the sign-in page"})
    account_id, secret = form.get("account_id"), form.get("secret")
    account_id = account_id.strip().lower()[:64] if isinstance(account_id, str) else ""
    secret = secret.strip()[:200] if isinstance(secret, str) else ""
    again = f"{P}/signin?{urlencode({'next': target})}"
    if not account_id or not secret:
        return render.redirect(request, again, error="enter the account id and its secret")
    try:
        account = await request.app[dialer_auth.PARTS].accounts.authenticate(account_id, secret)
    except IvrError as exc:
        # Only a well-formed account id is logged: a secret typed in the wrong box is not.
        log.info("console: dialer sign-in refused for account id %s",
                 account_id if ACCOUNT_ID_RE.match(account_id) else "(malformed)")
        return render.redirect(request, again, error=exc.message)
    response = render.redirect(request, target)
    await dialer_auth.sign_in(request, response, account)
    return response


async def signout(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    response = render.redirect(request, P + "/signin", ok="Signed out.")
    await dialer_auth.sign_out(request, response)
    return response


# --- jobs -------------------------------------------------------------------------------------
async def jobs(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    page = page_of(request)
    async with request.app[POOL].acquire() as conn:
        count, rows = await dialer_store.jobs_page(conn, c.account.pk, JOBS_PER_PAGE,
                                                   (page - 1) * JOBS_PER_PAGE)
        # Jobs the toll-fraud guard refused (telephony/toll.py): they made no job row.
        refused = await toll.alerts(conn, "dialer", c.account.account_id, limit=20)
    last = _last_page(count, JOBS_PER_PAGE)
    _check_page(page, last)
    return render.page(request, "dialer_jobs.html", c, jobs=rows, count=count, page=page,
                       last_page=last, states=dialer_store.CALL_STATES, refused=refused)


def job_state(status: JobStatus, calls: list[dialer_store.CallLine]) -> dict[str, Any]:
    """What the job page shows that changes while the job runs, as JSON for its stream."""
    job = status.job
    return {
        "job_id": str(job.id), "state": job.state,
        "finished_at": None if job.finished_at is None else job.finished_at.isoformat(),
        "counts": {s: status.counts.get(s, 0) for s in dialer_store.CALL_STATES},
        "outcomes": dict(sorted(status.outcomes.items())),
        "total": status.total, "progress": round(status.progress, 4),
        "calls": [call.as_json() for call in calls],
    }


async def _page_calls(request: web.Request, status: JobStatus, state: str | None,
                      page: int) -> list[dialer_store.CallLine]:
    async with request.app[POOL].acquire() as conn:
        return await dialer_store.calls_page(conn, status.job.id, state, CALLS_PER_PAGE,
                                             (page - 1) * CALLS_PER_PAGE)


async def job(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    job_id, page, state = job_id_of(request), page_of(request), state_of(request)
    status = await _status(c, job_id)
    shown = status.total if state is None else status.counts.get(state, 0)
    last = _last_page(shown, CALLS_PER_PAGE)
    _check_page(page, last)
    calls = await _page_calls(request, status, state, page)
    query = {"page": str(page), **({"state": state} if state else {})}
    base = f"{P}/jobs/{job_id}"
    return render.page(
        request, "dialer_job.html", c, job_status=status, j=status.job, calls=calls, page=page,
        last_page=last, state=state, shown=shown, base=base,
        events=f"{base}/events?{urlencode(query)}", initial=job_state(status, calls),
        states=dialer_store.CALL_STATES, page_link=lambda n: "?" + urlencode(
            {"page": str(n), **({"state": state} if state else {})}))


async def pause(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    job_id = job_id_of(request)
    status = await _status(c, job_id)
    if not await c.dialer.pause(c.account, job_id):
        raise InvalidParameter("state", f"only an active job can be paused; this one is "
                                        f"{status.job.state}")
    return render.redirect(request, f"{P}/jobs/{job_id}",
                           ok="Job paused: queued calls wait; calls in progress finish.")


async def resume(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    job_id = job_id_of(request)
    status = await _status(c, job_id)
    if not await c.dialer.resume(c.account, job_id):
        raise InvalidParameter("state", f"only a paused job can be resumed; this one is "
                                        f"{status.job.state}")
    return render.redirect(request, f"{P}/jobs/{job_id}", ok="Job resumed.")


async def cancel(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    job_id = job_id_of(request)
    status = await _status(c, job_id)
    if status.job.state not in ("active", "paused"):
        raise InvalidParameter("state", f"only an active or paused job can be cancelled; "
                                        f"this one is {status.job.state}")
    dropped = await c.dialer.cancel(c.account, job_id)
    return render.redirect(request, f"{P}/jobs/{job_id}",
                           ok=f"Job cancelled: {dropped} queued call"
                              f"{'' if dropped == 1 else 's'} dropped; calls in progress "
                              "finish.")


async def not_found(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    raise NotFound(f"there is no console page {request.path[:100]!r}")


# --- live progress ----------------------------------------------------------------------------
async def job_events(request: web.Request, c: DialerConsole) -> web.StreamResponse:
    """The job's state, counts and the calls on the page the browser shows, sent whenever
    they change; the stream ends when the job has finished (or the app stops)."""
    job_id, page, state = job_id_of(request), page_of(request), state_of(request)
    # Ownership and existence are checked before the stream starts, so errors stay HTTP ones.
    status = await _status(c, job_id)
    first, last = True, job_state(status, [])

    async def read() -> tuple[dict[str, Any], bool]:
        nonlocal status, first, last
        if not first:
            found = await c.dialer.job(c.account, job_id)
            if found is None:  # the account or job was deleted meanwhile
                return last, True
            status = found
        first = False
        last = job_state(status, await _page_calls(request, status, state, page))
        return last, status.job.finished_at is not None

    return await live.stream(request, read, lambda _: POLL_SECONDS)
