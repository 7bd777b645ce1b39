"""Call events to the application's webhook, through the delivery outbox (ivr/delivery).

Each event becomes an outbox row written in the same transaction as the state change it
reports (the call's state, a recording's end); the delivery worker signs it, posts it and
retries it. Rows of one call share the stream `voicecall:<voice_id>`, so the worker posts a
call's events in the order they happened, each once the one before was delivered (or finally
failed); calls do not wait for each other.

Signature (the delivery worker's, the same as every callback): `X-IVR-Timestamp: <unix
seconds>` and `X-IVR-Signature: sha256=<hex HMAC-SHA256(webhook secret, "<timestamp>.<body>")>`,
plus `X-IVR-Event-Id` (also `event_id` in the body: de-duplicate on it) and `X-IVR-Attempt`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ivr.delivery import outbox
from ivr.delivery.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, verify

__all__ = [
    "EVENT_RETRY_FOR",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Change",
    "Outgoing",
    "enqueue",
    "signature",
    "verify",
]

# A call event is stale after an hour; later events of the call wait behind a failing one, so
# the window is kept much shorter than the recorder's day.
EVENT_RETRY_FOR = 3600.0

# A state change made in the event's transaction.
Change = Callable[[outbox.Conn], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One item of a call's ordered event queue: an event, a state change, or both."""

    event: dict[str, Any] | None
    change: Change | None = None


async def enqueue(conn: outbox.Conn, *, voice_id: uuid.UUID, app_id: str, url: str,
                  secret: str, event: dict[str, Any]) -> None:
    event_id = uuid.uuid4()
    event = {"event_id": str(event_id), **event}
    state = event.get("state") or event.get("playstate") or "event"
    await outbox.enqueue_callback(
        conn, event_id=event_id, event_type=f"voice.{state}", stream=f"voicecall:{voice_id}",
        owner=f"voiceapp:{app_id}", url=url, body=orjson.dumps(event),
        content_type="application/json", secret=secret, retry_for=EVENT_RETRY_FOR)
