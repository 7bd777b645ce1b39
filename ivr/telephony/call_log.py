"""Where calls are written down as they start and end (the `calls` table)."""

from __future__ import annotations

from typing import Protocol

import asyncpg

from ivr.core.patient_pool import PatientPool


class CallLog(Protocol):
    async def started(self, channel_id: str, direction: str, caller_id: str, dialed: str,
                      flow: str) -> None: ...

    async def ended(self, channel_id: str, outcome: str,
                    failure: tuple[str, str] | None = None) -> None:
        """`failure`: (code, reason) when the flow failed."""
        ...

    async def reconcile(self, live_channel_ids: set[str]) -> int:
        """Close every open call whose channel no longer exists; returns how many."""
        ...

    async def engines_of(self, channel_ids: list[str]) -> dict[str, str]:
        """Which engine (Stasis app) runs each of these open calls, where one is known."""
        ...


class PgCallLog:
    def __init__(self, pool: asyncpg.Pool, engine: str | None = None) -> None:
        # Each statement is idempotent, and a call must not fail for a database blip.
        self._pool = PatientPool(pool)
        self.engine = engine  # this engine's Stasis app, written on each call it runs

    async def started(self, channel_id: str, direction: str, caller_id: str, dialed: str,
                      flow: str) -> None:
        await self._pool.execute(
            """INSERT INTO calls (channel_id, direction, caller_id, dialed, flow, engine)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (channel_id) DO UPDATE SET flow = EXCLUDED.flow,
                 engine = EXCLUDED.engine""",
            channel_id, direction, caller_id, dialed, flow, self.engine,
        )

    async def ended(self, channel_id: str, outcome: str,
                    failure: tuple[str, str] | None = None) -> None:
        code, reason = failure or (None, None)
        await self._pool.execute(
            "UPDATE calls SET ended_at = now(), outcome = $2, failure_code = $3,"
            " failure_reason = $4 WHERE channel_id = $1 AND ended_at IS NULL",
            channel_id, outcome, code, reason,
        )

    async def reconcile(self, live_channel_ids: set[str]) -> int:
        status = await self._pool.execute(
            "UPDATE calls SET ended_at = now(), outcome = 'lost' "
            "WHERE ended_at IS NULL AND NOT (channel_id = ANY($1::text[]))",
            list(live_channel_ids),
        )
        return int(status.split()[-1])

    async def engines_of(self, channel_ids: list[str]) -> dict[str, str]:
        if not channel_ids:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT channel_id, engine FROM calls WHERE channel_id = ANY($1::text[])"
                " AND ended_at IS NULL AND engine IS NOT NULL", channel_ids)
        return {r["channel_id"]: r["engine"] for r in rows}
