"""How a callback proves where it came from. Each POST carries

    X-IVR-Event-Id:   the event's id (also in the body): de-duplicate on it
    X-IVR-Timestamp:  unix seconds when this attempt was signed
    X-IVR-Signature:  sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

with the recorder's callback secret. The same scheme as call-control webhooks, so a receiver
verifies both alike; `verify` is what a receiver does (docs/delivery.md shows it standalone)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

EVENT_ID_HEADER = "X-IVR-Event-Id"
EVENT_TYPE_HEADER = "X-IVR-Event-Type"
TIMESTAMP_HEADER = "X-IVR-Timestamp"
SIGNATURE_HEADER = "X-IVR-Signature"
ATTEMPT_HEADER = "X-IVR-Attempt"
MAX_AGE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           max_age: float = MAX_AGE_SECONDS, now: float | None = None) -> bool:
    """True when the signature matches the raw body and the timestamp is recent (a replayed
    old request fails even with a valid signature)."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    current = time.time() if now is None else now
    if not stamp.isdigit() or abs(current - int(stamp)) > max_age:
        return False
    return hmac.compare_digest(given, signature(secret, stamp, body))
