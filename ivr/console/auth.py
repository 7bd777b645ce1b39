"""Who is signed in to the console, and the checks every request passes.

The cookie holds a random token (HttpOnly, SameSite=Strict, Secure behind https); the database
keeps its SHA-256 with the sign-in's CSRF token, which every form POST carries in a hidden
field (scripts send it as X-CSRF-Token). The sign-in form itself is protected by a
double-submit cookie, so a third-party page cannot sign a browser in to someone else's account.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from ivr.console import store
from ivr.core import keys
from ivr.core.errors import IvrError
from ivr.core.web import POOL, is_secure, upload_body
from ivr.recorder.context import RECORDER
from ivr.recorder.models import Developer
from ivr.recorder.service import RecorderService

log = logging.getLogger(__name__)

COOKIE = "ivr_console"
SIGNIN_COOKIE = "ivr_console_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME_SECONDS = 12 * 3600
PREFIX = "/console"


@dataclass(frozen=True, slots=True)
class Console:
    """A signed-in request: the developer, their sign-in's CSRF token, the service."""

    developer: Developer
    csrf_token: str
    service: RecorderService


Page = Callable[[web.Request, Console], Awaitable[web.StreamResponse]]


def _secure(request: web.Request) -> bool:
    return is_secure(request)


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int, path: str = PREFIX) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="Strict", secure=_secure(request))


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def signed_in(request: web.Request) -> Console | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with request.app[POOL].acquire() as conn:
        found = await store.sign_in_by_digest(conn, keys.token_digest(token))
    if found is None:
        return None
    service = request.app[RECORDER]
    developer = await service.developer(found.developer_id)
    if developer is None:
        return None
    return Console(developer, found.csrf_token, service)


async def sign_in(request: web.Request, response: web.StreamResponse,
                  developer: Developer) -> None:
    token = keys.new_token()
    async with request.app[POOL].acquire() as conn:
        await store.insert_sign_in(conn, keys.token_digest(token), developer.id,
                                   secrets.token_urlsafe(32), LIFETIME_SECONDS)
    set_cookie(request, response, COOKIE, token, LIFETIME_SECONDS)
    response.del_cookie(SIGNIN_COOKIE, path=PREFIX)
    log.info("console: developer %s signed in", developer.username)


async def sign_out(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        async with request.app[POOL].acquire() as conn:
            await store.delete_sign_in(conn, keys.token_digest(token))
    response.del_cookie(COOKIE, path=PREFIX)


class CsrfRejected(IvrError):
    error_id = "csrf_rejected"
    http_status = 403


async def check_csrf(request: web.Request, expected: str) -> None:
    """The sign-in's CSRF token, from the header scripts send or the form's hidden field."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, expected):
        raise CsrfRejected("this form is out of date or did not come from the console; "
                           "reload the page and try again")


def next_path(value: str | None, prefix: str = PREFIX, default: str = "/recorders") -> str:
    """Where to go after signing in: a path under `prefix` only, never another site."""
    if value and value.startswith(prefix + "/") and "//" not in value and "\\" not in value:
        return value
    return prefix + default


def require(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A console handler: signed in (else to the sign-in page), and for POST the CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        console = await signed_in(request)
        if console is None:
            if request.method == "GET" and request.headers.get("Accept") != "text/event-stream":
                raise web.HTTPSeeOther(f"{PREFIX}/signin?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(text="sign in to the console first")
        if request.method == "POST":
            # Signed in: a form may carry audio (a prompt), so the larger body limit.
            request = upload_body(request)
            await check_csrf(request, console.csrf_token)
        return await handler(request, console)

    return wrapped
