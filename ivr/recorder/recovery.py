"""Finishing what an engine that died left behind, when the next one starts: takes still in
Asterisk's spool become takes in storage (kept when long enough, as a hang-up mid-take would
be), and sessions whose caller's channel is gone end. Runs once per process, at start-up,
after the runner has hung up channels no task owns (so their recordings have finished)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from ivr.recorder import store
from ivr.recorder.takes import TakeStore, parse_take_name
from ivr.telephony.rest import AriClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    takes_kept: int = 0
    takes_discarded: int = 0
    sessions_ended: int = 0


class Recovery:
    def __init__(self, pool: asyncpg.Pool, takes: TakeStore) -> None:
        self.pool = pool
        self.takes = takes
        self._done = False

    async def once(self, ari: AriClient, live_channels: set[str]) -> RecoveryReport | None:
        """At the first (re)connection of this process only: later reconnections find flows
        of this very process still running, and those finish their own takes."""
        if self._done:
            return None
        self._done = True
        report = await self.run(ari, live_channels)
        if report != RecoveryReport():
            log.warning("recovered after a restart: %d take(s) kept, %d discarded, %d "
                        "session(s) ended", report.takes_kept, report.takes_discarded,
                        report.sessions_ended)
        return report

    async def run(self, ari: AriClient, live_channels: set[str]) -> RecoveryReport:
        kept = discarded = 0
        for stored in await ari.list_stored_recordings():
            ids = parse_take_name(stored.get("name", ""))
            if ids is None:
                continue
            outcome = await self._recover_take(ari, stored["name"], *ids, live_channels)
            kept += outcome == "kept"
            discarded += outcome == "discarded"
        ended = await self._end_orphaned_sessions(live_channels)
        return RecoveryReport(kept, discarded, ended)

    async def _recover_take(self, ari: AriClient, name: str, session_id: int,
                            recording_id: int, live_channels: set[str]) -> str:
        async with self.pool.acquire() as conn:
            if await conn.fetchval("SELECT 1 FROM takes WHERE asterisk_name = $1", name):
                outcome = "known"  # handled before the process died; only the copy is left
            else:
                row = await conn.fetchrow(
                    "SELECT s.channel_id, s.recorder_id, r.id AS recording_id"
                    " FROM recording_sessions s JOIN session_recordings sr"
                    " ON sr.session_id = s.id AND sr.recording_id = $2"
                    " JOIN recordings r ON r.id = sr.recording_id WHERE s.id = $1",
                    session_id, recording_id)
                outcome = "orphan" if row is not None else "unknown"
        if outcome == "orphan" and row["channel_id"] in live_channels:
            return "live"  # its call is still up (another process's flow may own it)
        if outcome != "orphan":
            await self.takes.forget(ari, name)
            return outcome
        async with self.pool.acquire() as conn:
            recorder = await store.recorder_by_id(conn, row["recorder_id"])
            recording = await store.recording_by_id(conn, recording_id)
        stored = await self.takes.fetch(ari, session_id, recording, name,
                                        row["channel_id"] or "", recorder)
        if stored is None:
            return "unknown"
        if stored.duration_ms >= recorder.min_take_seconds * 1000:
            await self.takes.accept(ari, session_id, recorder, recording, stored,
                                    channel_id=row["channel_id"] or "", caller_id=None,
                                    touchtone=None, kept_on_hangup=True)
            return "kept"
        await self.takes.discard(ari, stored)
        return "discarded"

    async def _end_orphaned_sessions(self, live_channels: set[str]) -> int:
        rows = await self.pool.fetch(
            "SELECT id FROM recording_sessions WHERE state IN ('called', 'recording')"
            " AND (channel_id IS NULL OR NOT (channel_id = ANY($1::text[])))",
            list(live_channels))
        for row in rows:
            # Ended through the phone side, as a hang-up would: recordings caught mid-take go
            # back to what they were.
            await self.takes.phone.end_session(row["id"])
        return len(rows)
