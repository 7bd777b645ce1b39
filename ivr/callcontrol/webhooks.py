"""Webhook delivery for call events: each POST is signed, and retried a few times.

Signature: `X-IVR-Timestamp: <unix seconds>` and
`X-IVR-Signature: sha256=<hex HMAC-SHA256(webhook secret, "<timestamp>.<body>")>`; a receiver
recomputes it over the raw body and refuses stale timestamps (see docs/callcontrol.md).

Everything goes through `WebhookSender.post`, the one seam the delivery outbox will replace
(it will then persist the event and return at once). Until then delivery is direct: 5 s to
connect, 15 s to read, up to 3 attempts on a network error or a 5xx/429 answer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IVR-Signature"
TIMESTAMP_HEADER = "X-IVR-Timestamp"
ATTEMPTS = 3
_BACKOFF = (0.5, 2.0)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, max_age: float = 300) -> bool:
    """What a receiver does (used by the tests; documented for developers)."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > max_age:
        return False
    return hmac.compare_digest(given, signature(secret, stamp, body))


class WebhookSender:
    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own = session is None
        self.delivered = 0
        self.failed = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=15),
                headers={"User-Agent": "ivr-callcontrol"},
            )
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, secret: str, event: Mapping[str, Any]) -> bool:
        """Deliver one event; True once the receiver answered 2xx. Never raises for a
        receiver's failure (the call goes on without it)."""
        body = orjson.dumps(event)
        what = f"{event.get('voice_id', '')} {event.get('state') or event.get('playstate')}"
        for attempt in range(1, ATTEMPTS + 1):
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                       SIGNATURE_HEADER: signature(secret, stamp, body)}
            retry = True
            try:
                async with self._client().post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        return True
                    retry = resp.status >= 500 or resp.status == 429
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            log.warning("webhook %s to %s: attempt %d failed (%s)", what, _host(url), attempt,
                        problem)
            if not retry or attempt == ATTEMPTS:
                break
            await asyncio.sleep(_BACKOFF[attempt - 1])
        self.failed += 1
        return False


def _host(url: str) -> str:
    """Only the host reaches the log: a webhook URL may carry a token in its path or query."""
    return url.split("/")[2] if url.count("/") >= 2 else "?"
