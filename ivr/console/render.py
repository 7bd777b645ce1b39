"""HTML out: the Jinja environment (autoescaped), the security headers every console page
carries, and one-shot messages ("flash") that survive the redirect after a form POST."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import orjson
from aiohttp import web

from ivr.console import auth
from ivr.console.dialer_auth import DialerConsole
from ivr.console.phone_service import PHONE
from ivr.core.web import SETTINGS

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "ivr_console_flash"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


_env.filters["when"] = _when
_env.filters["seconds"] = _seconds


def _media_origin(request: web.Request) -> str:
    # Audio links are written with IVR_PUBLIC_URL, which may name another origin than the
    # one the browser used.
    parts = urlsplit(str(request.app[SETTINGS].public_url))
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _phone_origin(request: web.Request) -> str:
    # The phone's SIP goes to Asterisk's websocket, another origin than the console's.
    phone = request.app.get(PHONE)
    return "" if phone is None else phone.ws_url.rsplit("/", 1)[0]


def headers(request: web.Request) -> dict[str, str]:
    media = _media_origin(request)
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob: {media}; "
            f"connect-src 'self' {media} {_phone_origin(request)}; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def take_flash(request: web.Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        found = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(found, dict) or found.get("kind") not in ("ok", "error"):
        return None
    return {"kind": str(found["kind"]), "text": str(found.get("text", ""))}


def flash(request: web.Request, response: web.StreamResponse, kind: str, text: str) -> None:
    value = base64.urlsafe_b64encode(orjson.dumps({"kind": kind, "text": text[:1500]})).decode()
    auth.set_cookie(request, response, FLASH_COOKIE, value, 120)


def page(request: web.Request, template: str,
         console: auth.Console | DialerConsole | None = None, *,
         status: int = 200, message: dict[str, str] | None = None,
         **context: Any) -> web.Response:
    shown = message or take_flash(request)
    body = _env.get_template(template).render(
        developer=console.developer if isinstance(console, auth.Console) else None,
        account=console.account if isinstance(console, DialerConsole) else None,
        csrf_token=console.csrf_token if console else "",
        flash=shown, path=request.path, static=lambda name: static_url(request, name),
        phone_ready=PHONE in request.app,
        **context)
    response = web.Response(text=body, status=status, content_type="text/html",
                            headers=headers(request))
    if request.cookies.get(FLASH_COOKIE) and message is None:
        response.del_cookie(FLASH_COOKIE, path=auth.PREFIX)
    return response


def static_url(request: web.Request, name: str) -> str:
    # Versioned by content, so a changed script or style sheet is never served from cache.
    return str(request.app.router["console_static"].url_for(filename=name))


def redirect(request: web.Request, location: str, *, ok: str | None = None,
             error: str | None = None) -> web.Response:
    response = web.Response(status=303, headers={"Location": location, **headers(request)})
    if ok is not None:
        flash(request, response, "ok", ok)
    if error is not None:
        flash(request, response, "error", error)
    return response


def back(request: web.Request, fallback: str) -> str:
    """The console page a form was posted from (its Referer), else `fallback`."""
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc in ("", request.host) and referer.path.startswith(auth.PREFIX + "/"):
        return auth.next_path(referer.path + (f"?{referer.query}" if referer.query else ""))
    return fallback
