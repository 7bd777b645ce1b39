"""One checker for every URL the platform (callbacks, uploads, webhooks, a broadcast's audio
file) or Asterisk (play URLs) will fetch, against server-side request forgery:

- http or https only, a host, no control characters or spaces, at most 2000 characters;
- the address must be a public one: loopback, private, link-local (the cloud metadata address
  169.254.169.254 among them), shared, multicast, reserved and unspecified addresses are
  refused, unless the operator allows private targets (IVR_ALLOW_PRIVATE_URLS, for
  development).

The address is checked where it is used: `guarded_connector` checks the address every socket
of ours actually connects to (after DNS, so a name that resolves to a public address when the
URL is accepted and to 127.0.0.1 later, DNS rebinding, is still refused), and so on every
redirect too. `check_url` checks a URL as it is accepted (a literal address, what its name
resolves to now), so the client hears at once; for play URLs it is the last check before
Asterisk fetches them itself."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp

MAX_URL = 2000
_RESOLVE_SECONDS = 3.0


class UnsafeUrl(ValueError):
    """Why a URL is refused, in words for the API's error."""


def address_allowed(text: str, allow_private: bool) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    return allow_private or ip.is_global


def check_syntax(url: str) -> tuple[str, int]:
    """The URL's host and port, or UnsafeUrl."""
    if len(url) > MAX_URL:
        raise UnsafeUrl(f"a URL is at most {MAX_URL} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeUrl("a URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the URL is malformed") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are fetched")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def _refused(host: str) -> UnsafeUrl:
    return UnsafeUrl(f"the URL's host {host} is a loopback, private, link-local or otherwise "
                     "non-public address; this server fetches only public ones")


def check_literal(url: str, allow_private: bool) -> None:
    """Syntax, and the host when it is an address or a name for this machine (no DNS)."""
    host, _ = check_syntax(url)
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
            ".localhost"):
        if not allow_private:
            raise _refused(host)
        return
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: checked when resolved
    if not address_allowed(host, allow_private):
        raise _refused(host)


async def check_url(url: str, allow_private: bool) -> None:
    """check_literal, and every address the host's name resolves to now. A name that does
    not resolve is refused (nothing could be fetched from it)."""
    check_literal(url, allow_private)
    host, port = check_syntax(url)
    if allow_private:
        return
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise UnsafeUrl(f"the URL's host {host} cannot be resolved") from None
    for info in infos:
        if not address_allowed(str(info[4][0]), allow_private):
            raise _refused(f"{host} ({info[4][0]})")


def guarded_socket(allow_private: bool) -> Any:
    """A socket factory for aiohttp that refuses to connect to a non-public address."""

    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not address_allowed(str(sockaddr[0]), allow_private):
            raise OSError(f"refused to connect to {sockaddr[0]}: not a public address "
                          "(IVR_ALLOW_PRIVATE_URLS allows it)")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def guarded_connector(allow_private: bool, **options: Any) -> aiohttp.TCPConnector:
    """A connector for every fetch of a URL a client gave: each connection's address is
    checked (so DNS rebinding and redirects to internal addresses are refused)."""
    return aiohttp.TCPConnector(socket_factory=guarded_socket(allow_private), **options)
