"""What each delivery attempt sent and got back, for the console's webhook inspector: the
request's headers with secrets redacted, the answer's status, headers and the start of its
body, when and how long. The worker fills a Trace while it sends and records it in the
transaction that settles (or reschedules) the outbox row."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ivr.core.db import Conn

BODY_EXCERPT = 2048  # bytes of an answer's body kept (the column's CHECK too)
MAX_HEADERS = 50
MAX_HEADER_VALUE = 500
REDACTED = "[redacted]"
# Credentials never stored, whoever sends them; a recorder's own upload header is added per row.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact(headers: Iterable[tuple[str, str]],
           secret: Collection[str] = ()) -> list[tuple[str, str]]:
    """Headers as stored: a secret one keeps its name, its value is replaced."""
    hidden = SECRET_HEADERS | {s.lower() for s in secret}
    out = []
    for name, value in list(headers)[:MAX_HEADERS]:
        out.append((name, REDACTED if name.lower() in hidden else value[:MAX_HEADER_VALUE]))
    return out


@dataclass(slots=True)
class Trace:
    """One attempt, filled in as it goes."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    body_bytes: int | None = None
    duration_ms: int = 0

    def sent(self, headers: Iterable[tuple[str, str]], secret: Collection[str] = ()) -> None:
        self.request_headers = redact(headers, secret)

    def answered(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.response_headers = redact(headers)
        self.body, self.body_bytes = body[:BODY_EXCERPT], len(body)

    def finish(self) -> Trace:
        self.duration_ms = max(0, round((time.monotonic() - self.clock) * 1000))
        return self


async def record(conn: Conn, outbox_id: int, attempt: int, trace: Trace, error: str) -> None:
    await conn.execute(
        "INSERT INTO outbox_attempts (outbox_id, attempt, started_at, duration_ms,"
        " request_headers, response_status, response_headers, response_body, response_bytes,"
        " error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        outbox_id, attempt, trace.started_at, trace.duration_ms,
        orjson.dumps(trace.request_headers).decode(), trace.status,
        orjson.dumps(trace.response_headers).decode(), trace.body, trace.body_bytes,
        error[:1000] or None)


async def of_row(conn: Conn, outbox_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """A row's attempts, oldest first (the last `limit`)."""
    rows = await conn.fetch(
        "SELECT * FROM (SELECT * FROM outbox_attempts WHERE outbox_id = $1"
        " ORDER BY id DESC LIMIT $2) a ORDER BY id", outbox_id, limit)
    return [{**dict(r), "request_headers": _pairs(r["request_headers"]),
             "response_headers": _pairs(r["response_headers"]),
             "response_body": None if r["response_body"] is None else bytes(r["response_body"])}
            for r in rows]


def _pairs(raw: str) -> list[tuple[str, str]]:
    return [(str(n), str(v)) for n, v in orjson.loads(raw)]


async def purge(conn: Conn, older_than_seconds: float, limit: int = 5000) -> int:
    """Attempts past the retention window, even of a row still kept (one retried for days)."""
    result = await conn.execute(
        "DELETE FROM outbox_attempts WHERE id IN (SELECT id FROM outbox_attempts"
        " WHERE started_at < now() - make_interval(secs => $1) LIMIT $2)",
        float(older_than_seconds), limit)
    return int(result.split()[-1])


def secret_names(headers: Mapping[str, str]) -> set[str]:
    """The names of a row's own headers that carry credentials: an upload's configured header
    (everything the recorder set that is not one of ours)."""
    return {n for n in headers if not n.lower().startswith("x-ivr-")}
