"""The aiohttp side of the core: app keys, error middleware, JSON responses."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from ivr.core.errors import ConfigError, IvrError
from ivr.core.text import describe, first_bad
from ivr.core.throttle import CLIENT, Throttle
from ivr.settings import Settings

log = logging.getLogger(__name__)

# Everything stored on the app is reached through these keys; features read them, only
# app.py sets them.
SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
THROTTLE = web.AppKey("throttle", Throttle)  # failed password checks (core/throttle.py)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def client_address(request: web.Request) -> str | None:
    """The client's address as throttles and logs see it: the socket's peer; when that peer is
    a reverse proxy of IVR_TRUSTED_PROXIES, the address it saw (X-Forwarded-For, read from the
    right past every trusted proxy). Never a header anyone else wrote."""
    peer = request.remote
    proxies = _proxies(request.app[SETTINGS].security.trusted_proxies)
    if not proxies or not _among(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if _address(hop) is None:
            return peer  # not an address: the header is no evidence
        if not _among(hop, proxies):
            return hop
    return peer


def is_secure(request: web.Request) -> bool:
    """Did the client reach us over TLS: our own (IVR_HTTP_TLS_CERT), or a trusted proxy's
    that says so (X-Forwarded-Proto), or a public URL that is https (a proxy in front)."""
    if request.secure or str(request.app[SETTINGS].public_url).startswith("https://"):
        return True
    proxies = _proxies(request.app[SETTINGS].security.trusted_proxies)
    return bool(proxies) and _among(request.remote, proxies) and \
        request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The API's and console's TLS (IVR_HTTP_TLS_CERT / _KEY), or None for plain HTTP."""
    sec = settings.security
    if sec.http_tls_cert is None or sec.http_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(sec.http_tls_cert, sec.http_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"IVR_HTTP_TLS_CERT / IVR_HTTP_TLS_KEY: {exc}") from None
    return context


HSTS = "max-age=31536000"


@web.middleware
async def transport_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Over TLS, browsers are told to keep to it (HSTS)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if is_secure(request):
            exc.headers["Strict-Transport-Security"] = HSTS
        raise
    if is_secure(request):
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(value or "")
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=8)
def _proxies(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.IPv4Network(n) for n in networks)


def _among(value: str | None, networks: tuple[ipaddress.IPv4Network, ...]) -> bool:
    addr = _address(value)
    return isinstance(addr, ipaddress.IPv4Address) and any(addr in n for n in networks)


def sees_internals(request: web.Request) -> bool:
    """May this request read /metrics and /healthz's details (version, ARI, calls, counts)?
    With IVR_METRICS_TOKEN set, only with it as a bearer token, from anywhere: behind a reverse
    proxy on this host every client is loopback. Without it, only a loopback peer."""
    token = request.app[SETTINGS].security.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  token.encode())
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:  # a Unix socket, or no peer
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


async def read_json(request: web.Request, error: Callable[[str, str], Exception]) -> Any:
    """A JSON body, with the edge's rules: at most IVR_MAX_BODY bytes, valid JSON, no control
    characters in any string. `error(param, message)` makes the API's own error."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise error("body", f"the request body is too large ({exc.text})") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise error("body", "the request body must be JSON") from None
    bad = first_bad(data)
    if bad is not None:
        where, char = bad
        raise error(where or "body", f"'{where or 'body'}' contains the control character "
                    f"{describe(char)}")
    return data


def upload_body(request: web.Request) -> web.Request:
    """The request with room for an audio upload (IVR_MAX_UPLOAD): only for a client already
    authenticated, so that an anonymous one cannot make the server hold a large body."""
    return request.clone(client_max_size=request.app[SETTINGS].security.max_upload)


def retry_after(exc: IvrError) -> dict[str, str] | None:
    """A Retry-After header for a refusal that says when to come back (Throttled)."""
    seconds = exc.extra.get("retry_after")
    return {"Retry-After": str(seconds)} if isinstance(seconds, int) else None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """IvrError -> its HTTP status and `{"error", "message", ...}`; anything unexpected -> 500
    without internals. Faces with their own error format (MyVox) answer before this. It also
    notes the client's address for the throttle (core/throttle.py)."""
    CLIENT.set(client_address(request))
    try:
        return await handler(request)
    except IvrError as exc:
        return json_response(exc.as_dict(), exc.http_status, retry_after(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_response(
            {"error": exc.reason.lower().replace(" ", "_"), "message": exc.reason}, exc.status
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"error": "internal_error", "message": "internal error"}, 500)
