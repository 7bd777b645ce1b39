"""The developer's account page (/console/account): API tokens made, named, listed and revoked,
and the password changed (which revokes every token and signs other browsers out); and the
sign-up page, linked from sign-in while the server's sign-up is open. Everything goes through
the recorder service, as /vr and /v1 do; a wrong field is answered beside it, by its label,
with what was typed kept (never a password)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from ivr.console import auth, render, store
from ivr.console.auth import Console
from ivr.core import keys
from ivr.core.errors import InvalidParameter, IvrError, NotFound
from ivr.core.web import POOL
from ivr.recorder.context import RECORDER
from ivr.recorder.errors import UsernameTaken
from ivr.recorder.rules import MIN_PASSWORD, USERNAME
from ivr.recorder.service_accounts import MAX_TOKEN_DAYS, TOKEN_DAYS

P = auth.PREFIX


def _text(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


async def _account_page(request: web.Request, c: Console, *, status: int = 200,
                        errors: dict[str, str] | None = None,
                        values: dict[str, str] | None = None,
                        new_token: str = "") -> web.Response:
    return render.page(request, "account.html", c, status=status, errors=errors or {},
                       values={"token_name": "", "lifetime_days": str(TOKEN_DAYS),
                               **(values or {})},
                       tokens=await c.service.tokens(c.developer), new_token=new_token,
                       max_days=MAX_TOKEN_DAYS, min_password=MIN_PASSWORD)


async def account(request: web.Request, c: Console) -> web.StreamResponse:
    return await _account_page(request, c)


async def create_token(request: web.Request, c: Console) -> web.StreamResponse:
    form = await request.post()
    name, days = _text(form, "token_name", 300).strip(), _text(form, "lifetime_days").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["token_name"] = "Name: say what will use the token (e.g. the CI job)"
    elif len(name) > 100:
        errors["token_name"] = "Name: at most 100 characters"
    if not days.isdigit() or not 1 <= int(days) <= MAX_TOKEN_DAYS:
        errors["lifetime_days"] = f"Expires after: a whole number of days, 1 to {MAX_TOKEN_DAYS}"
    values = {"token_name": name, "lifetime_days": days}
    if errors:
        return await _account_page(request, c, status=400, errors=errors, values=values)
    token = await c.service.create_token(c.developer, name, int(days))
    # The token is readable only in this answer: the page is rendered here, not redirected to.
    return await _account_page(request, c, new_token=token)


async def revoke_token(request: web.Request, c: Console) -> web.StreamResponse:
    raw = request.match_info["token_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"there is no API token {raw[:30]!r} among yours")
    await c.service.revoke_token(c.developer, int(raw))
    return render.redirect(request, f"{P}/account#tokens", ok="API token revoked: it no "
                                                              "longer opens the API.")


async def change_password(request: web.Request, c: Console) -> web.StreamResponse:
    form = await request.post()
    current, new = _text(form, "current_password"), _text(form, "new_password")
    errors: dict[str, str] = {}
    if len(new) < MIN_PASSWORD:
        errors["new_password"] = f"New password: at least {MIN_PASSWORD} characters"
    elif new != _text(form, "repeat_password"):
        errors["repeat_password"] = "Repeat the new password: it does not match"
    try:
        await c.service.authenticate(c.developer.username, current)
    except IvrError:
        errors["current_password"] = "Current password: not the password of this account"
    if errors:
        return await _account_page(request, c, status=400, errors=errors)
    revoked = await c.service.change_password(c.developer, new)
    token = request.cookies.get(auth.COOKIE, "")
    async with request.app[POOL].acquire() as conn:
        others = await store.delete_other_sign_ins(conn, c.developer.id,
                                                   keys.token_digest(token))
        await store.delete_sign_in(conn, keys.token_digest(token))
    response = render.redirect(
        request, f"{P}/account",
        ok=f"Password changed. {revoked} API token{'' if revoked == 1 else 's'} revoked"
           f" and {others} other console sign-in{'' if others == 1 else 's'} ended.")
    # Every sign-in older than the password is void, this one too: a fresh one for it.
    await auth.sign_in(request, response, c.developer)
    return response


# --- signing up -------------------------------------------------------------------------------
def _signup_closed(request: web.Request) -> web.Response:
    return render.page(request, "error.html", status=403, title="Sign-up is closed",
                       text="sign-up is closed on this server; ask the operator for an "
                            "account (ivr developer create)")


def _signup_page(request: web.Request, token: str, *, status: int = 200,
                 errors: dict[str, str] | None = None,
                 values: dict[str, str] | None = None) -> web.Response:
    response = render.page(request, "signup.html", status=status, signin_token=token,
                           errors=errors or {},
                           values={"username": "", "email": "", "name": "", **(values or {})},
                           min_password=MIN_PASSWORD)
    auth.set_cookie(request, response, auth.SIGNIN_COOKIE, token, 3600)
    return response


async def signup_form(request: web.Request) -> web.StreamResponse:
    if not request.app[RECORDER].open_signup:
        return _signup_closed(request)
    if await auth.signed_in(request) is not None:
        raise web.HTTPSeeOther(f"{P}/recorders")
    return _signup_page(request, secrets.token_urlsafe(32))


async def signup(request: web.Request) -> web.StreamResponse:
    service = request.app[RECORDER]
    if not service.open_signup:
        return _signup_closed(request)
    form = await request.post()
    expected = request.cookies.get(auth.SIGNIN_COOKIE)
    if not expected or not auth.same_token(_text(form, auth.CSRF_FIELD), expected):
        return render.page(request, "error.html", status=403, title="Request refused",
                           text="the sign-up form is out of date or did not come from the "
                                "console; reload the sign-up page and try again")
    values = {k: _text(form, k, 200).strip() for k in ("username", "email", "name")}
    password = _text(form, "password")
    errors = _signup_errors(values["username"], password, _text(form, "repeat_password"))
    if not errors:
        try:
            developer = await service.create_developer(
                values["username"], password, email=values["email"], name=values["name"])
        except UsernameTaken:
            errors["username"] = f"Username: {values['username']!r} is taken; choose another"
        except InvalidParameter as exc:
            errors[str(exc.extra.get("param", "username"))] = exc.message
    if errors:
        return _signup_page(request, expected, status=400, errors=errors, values=values)
    response = render.redirect(request, f"{P}/recorders",
                               ok=f"Welcome, {developer.username}: your account is ready.")
    await auth.sign_in(request, response, developer)
    return response


def _signup_errors(username: str, password: str, repeat: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not USERNAME.match(username):
        errors["username"] = ("Username: 3 to 64 letters, digits, '.', '_', '@' or '-', "
                              "starting with a letter or digit")
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Password: at least {MIN_PASSWORD} characters"
    elif password != repeat:
        errors["repeat_password"] = "Repeat the password: it does not match"
    return errors
