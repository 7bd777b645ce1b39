"""Who is signed in to the console's dialer section: a dialer account (account_id + secret,
checked by the dialer's `Accounts.authenticate`), kept apart from the developer sign-in.

The same protections as auth.py, with a cookie and a table of their own: the cookie
(HttpOnly, SameSite=Strict, Path=/console/dialer, Secure behind https) holds a random token,
the database keeps its SHA-256 with the sign-in's CSRF token, every POST carries that token,
and the sign-in form has its own double-submit token.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from ivr.console import auth, dialer_store
from ivr.core import keys
from ivr.core.web import POOL, SETTINGS, THROTTLE
from ivr.dialer.accounts import Accounts
from ivr.dialer.kinds import load_hooks
from ivr.dialer.models import Account
from ivr.dialer.service import Dialer

log = logging.getLogger(__name__)

PREFIX = auth.PREFIX + "/dialer"
COOKIE = "ivr_console_dialer"
SIGNIN_COOKIE = "ivr_console_dialer_signin"
LIFETIME_SECONDS = auth.LIFETIME_SECONDS


@dataclass(frozen=True, slots=True)
class Parts:
    """The dialer the console drives, built once per app (with the kinds' outcome hooks:
    a cancel may end a job, and its kind's job_finished runs)."""

    accounts: Accounts
    dialer: Dialer


PARTS = web.AppKey("console_dialer", Parts)


def setup(app: web.Application) -> None:
    async def build(app: web.Application) -> None:
        # After the app's resources context (it runs first), so the pool exists.
        pool, settings = app[POOL], app[SETTINGS]
        app[PARTS] = Parts(Accounts(pool, app[THROTTLE]),
                           Dialer(pool, settings, load_hooks(settings)))

    app.on_startup.append(build)


@dataclass(frozen=True, slots=True)
class DialerConsole:
    """A request signed in as a dialer account."""

    account: Account
    csrf_token: str
    dialer: Dialer


Page = Callable[[web.Request, DialerConsole], Awaitable[web.StreamResponse]]


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int) -> None:
    auth.set_cookie(request, response, name, value, max_age, path=PREFIX)


async def signed_in(request: web.Request) -> DialerConsole | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with request.app[POOL].acquire() as conn:
        found = await dialer_store.sign_in_by_digest(conn, keys.token_digest(token))
    if found is None:
        return None
    return DialerConsole(found.account, found.csrf_token, request.app[PARTS].dialer)


async def sign_in(request: web.Request, response: web.StreamResponse,
                  account: Account) -> None:
    token = keys.new_token()
    async with request.app[POOL].acquire() as conn:
        await dialer_store.insert_sign_in(conn, keys.token_digest(token), account.pk,
                                          secrets.token_urlsafe(32), LIFETIME_SECONDS)
    set_cookie(request, response, COOKIE, token, LIFETIME_SECONDS)
    response.del_cookie(SIGNIN_COOKIE, path=PREFIX)
    log.info("console: dialer account %s signed in", account.account_id)


async def sign_out(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        async with request.app[POOL].acquire() as conn:
            await dialer_store.delete_sign_in(conn, keys.token_digest(token))
    response.del_cookie(COOKIE, path=PREFIX)


def next_path(value: str | None) -> str:
    """Where to go after signing in: a page of the dialer section only, never another site."""
    return auth.next_path(value, PREFIX, "/jobs")


def require(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A dialer page: signed in as a dialer account (else to its sign-in page), and for POST
    the CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        console = await signed_in(request)
        if console is None:
            if request.method == "GET" and request.headers.get("Accept") != "text/event-stream":
                raise web.HTTPSeeOther(f"{PREFIX}/signin?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(text="sign in to the console's dialer section first")
        if request.method == "POST":
            await auth.check_csrf(request, console.csrf_token)
        return await handler(request, console)

    return wrapped
