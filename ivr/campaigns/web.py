"""The XML face: POST a `<campaign>` document to /ivrapi.asp (VoiceShot's path) or
/campaigns/v1/ivrapi, with HTTP Basic credentials of a dialer account (account id : secret,
as the broadcast API takes them), or without any from a client address in an account's
allowlist (VoiceShot's way: `ivr dialer account ... --allow-from CIDR`). Every answer is XML:
`<campaign errorid="0" comment="ok" .../>` or `<campaign errorid="N" comment="why"/>` with a
matching HTTP status.

Order of checks: credentials (cheap header check, then the hash; with no Authorization
header at all, the peer's address), then the body is read with a cap (a longer one is refused
before any of it is parsed), then parsed, then executed. A refused request has written
nothing."""

from __future__ import annotations

import base64
import binascii
import logging

import asyncpg
from aiohttp import web

from ivr.campaigns import errors as e
from ivr.campaigns import render, xmldoc
from ivr.campaigns.errors import CampaignError
from ivr.campaigns.service import Campaigns
from ivr.core.errors import IvrError, Throttled, Unauthorized, Unavailable
from ivr.dialer.accounts import Accounts
from ivr.dialer.models import Account

log = logging.getLogger(__name__)

CAMPAIGNS = web.AppKey("campaigns", Campaigns)
PATHS = ("/ivrapi.asp", "/campaigns/v1/ivrapi")
REALM = 'Basic realm="ivr campaigns"'


def xml_response(body: bytes, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers={
        "Content-Type": render.CONTENT_TYPE, **(headers or {})})


def error_response(exc: CampaignError) -> web.Response:
    headers = {"WWW-Authenticate": REALM} if exc.errorid == e.UNAUTHORIZED else None
    return xml_response(render.error_xml(exc.errorid, exc.comment), exc.http_status, headers)


def credentials(request: web.Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user, sep, secret = base64.b64decode(value.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, ValueError):
            sep = ""
        if sep and user and secret:
            return user, secret
    raise CampaignError(e.UNAUTHORIZED, "Not authorized: send HTTP Basic credentials "
                        "(account id and secret)")


async def authenticate(request: web.Request, accounts: Accounts) -> Account:
    if "Authorization" not in request.headers:
        # The socket's peer, never a forwarded-for header a client could write itself.
        account = await accounts.by_address(request.remote)
        if account is not None:
            return account
        raise CampaignError(e.UNAUTHORIZED, "Not authorized: send HTTP Basic credentials "
                            f"(account id and secret); address {request.remote} is in no "
                            "account's allowlist")
    account_id, secret = credentials(request)
    try:
        return await accounts.authenticate(account_id, secret)
    except Throttled as exc:
        raise CampaignError(e.UNAUTHORIZED, f"Not authorized: {exc.message}") from None
    except Unauthorized:
        raise CampaignError(e.UNAUTHORIZED, "Not authorized: unknown account or wrong "
                            "secret") from None


async def read_body(request: web.Request, limit: int = xmldoc.MAX_BODY) -> bytes:
    """The body, refused as soon as it is longer than `limit` (by its Content-Length, or
    while reading a chunked one)."""
    if request.content_length is not None and request.content_length > limit:
        raise CampaignError(e.TOO_LARGE, f"the request is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise CampaignError(e.TOO_LARGE, f"the request is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def ivrapi(request: web.Request) -> web.StreamResponse:
    campaigns = request.app[CAMPAIGNS]
    try:
        account = await authenticate(request, campaigns.accounts)
        command = xmldoc.parse(await read_body(request))
        return xml_response(await campaigns.handle(account, command))
    except CampaignError as exc:
        return error_response(exc)
    except Unavailable as exc:
        return error_response(CampaignError(e.UNAVAILABLE, f"try again later: {exc.message}"))
    except IvrError as exc:
        if exc.http_status < 500:
            return error_response(CampaignError(e.PARSE, exc.message))
        log.exception("campaign request failed: %s", exc.message)
        return error_response(CampaignError(e.UNAVAILABLE, "try again later"))
    except (OSError, asyncpg.PostgresError) as exc:
        log.exception("campaign request failed: %s", type(exc).__name__)
        return error_response(CampaignError(e.UNAVAILABLE, "try again later"))
    except Exception:
        log.exception("campaign request failed")
        return error_response(CampaignError(e.INTERNAL, "internal error"))


async def wrong_method(request: web.Request) -> web.StreamResponse:
    return error_response(CampaignError(e.METHOD, f"{request.method} is not supported: POST "
                                        "a <campaign> document"))


def add_routes(app: web.Application) -> None:
    for path in PATHS:
        app.router.add_post(path, ivrapi)
        app.router.add_route("*", path, wrong_method)
