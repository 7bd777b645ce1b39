"""A recorder's retention period: takes older than `retention_days` lose their audio files.
Recordings stay; a recording whose accepted take expired keeps its state and length, its
has_wav_file / has_mp3_file turn false, its urls go, audio_deleted_at says when, and a
`recording.audio_deleted` event goes to the recorder's callback URL.

One batch is one transaction: the rows are locked, the files deleted, then the rows marked. A
batch that fails to commit leaves its rows as they were and the next pass deletes again (a
file already gone is fine), so no file outlives its rows' claim that it is gone."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg

from ivr.recorder import events, store
from ivr.recorder.events import RecorderEvents
from ivr.recorder.models import ORIGINAL, take_path


class AudioRetention:
    def __init__(self, pool: asyncpg.Pool, data_dir: Path, events: RecorderEvents) -> None:
        self.pool = pool
        self.data_dir = data_dir
        self.events = events

    async def sweep(self, limit: int) -> tuple[int, int]:
        """One batch of at most `limit` takes: (takes, files deleted)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.takes_past_retention(conn, limit)
            if not rows:
                return 0, 0
            paths = [take_path(self.data_dir, r["play_key"], r["take_number"], ext)
                     for r in rows for ext in ("wav", "mp3", ORIGINAL)]
            deleted = await asyncio.to_thread(_delete, paths)
            accepted = sorted({(r["recording_id"], r["recorder_id"]) for r in rows
                               if r["accepted"]})
            await store.mark_audio_deleted(conn, [r["id"] for r in rows],
                                           [rid for rid, _ in accepted])
            for recording_id, recorder_id in accepted:
                await self.events.recording(
                    conn, await store.recording_by_id(conn, recording_id),
                    events.RECORDING_AUDIO_DELETED, recorder_id=recorder_id, session=None)
            return len(rows), deleted


def _delete(paths: list[Path]) -> int:
    deleted = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
    for folder in {p.parent for p in paths}:
        with contextlib.suppress(OSError):  # left when other takes still have files
            folder.rmdir()
    return deleted
