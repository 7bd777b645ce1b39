"""How a job kind reports outcomes: a hook runs inside the transaction that writes a call's
final state (or a job's end), so what it enqueues in the delivery outbox exists exactly when
the outcome does; and, while a call is up, in a transaction of its own per answer or key press
(call_progress), for kinds that report those as they happen."""

from __future__ import annotations

from typing import Protocol

from ivr.core.db import Conn
from ivr.dialer.models import CallRecord, Job


class OutcomeHook(Protocol):
    # Whether call_progress wants to hear of answers and key presses (a transaction each).
    live: bool

    async def call_progress(self, conn: Conn, job: Job, call: CallRecord, event: str,
                            key: str | None) -> None:
        """While the call is up: `event` is "answered", or "keypress" with the `key`. Its own
        transaction, after the fact; call_finished sees the same call again at the end."""
        ...

    async def call_finished(self, conn: Conn, job: Job, call: CallRecord) -> None: ...

    async def call_retrying(self, conn: Conn, job: Job, call: CallRecord) -> None: ...

    async def job_finished(self, conn: Conn, job: Job, counts: dict[str, int]) -> None: ...


class NoHook:
    """For a kind nobody registered: outcomes are kept in the database only."""

    live = False

    async def call_progress(self, conn: Conn, job: Job, call: CallRecord, event: str,
                            key: str | None) -> None:
        return None

    async def call_finished(self, conn: Conn, job: Job, call: CallRecord) -> None:
        return None

    async def call_retrying(self, conn: Conn, job: Job, call: CallRecord) -> None:
        return None

    async def job_finished(self, conn: Conn, job: Job, counts: dict[str, int]) -> None:
        return None
