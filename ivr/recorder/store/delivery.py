"""Where a recorder's events and uploads go, and audio past retention."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ivr.core.db import Conn


async def event_target(conn: Conn, recorder_id: int,
                       session_id: int | None) -> asyncpg.Record | None:
    """Where a recorder's event goes: the session's callback_url, else the recorder's; with
    the recorder's secret and format. None when neither names one."""
    return await conn.fetchrow(
        "SELECT coalesce(s.callback_url, v.callback_url) AS url, v.callback_secret,"
        " v.callback_format, v.recorder_key FROM voice_recorders v"
        " LEFT JOIN recording_sessions s ON s.id = $2 AND s.recorder_id = v.id"
        " WHERE v.id = $1 AND coalesce(s.callback_url, v.callback_url) IS NOT NULL",
        recorder_id, session_id)


async def upload_target(conn: Conn, recording_id: int) -> asyncpg.Record | None:
    """The recorder's upload options and the keys an upload_url template names, for a
    recorder with storage=upload."""
    return await conn.fetchrow(
        "SELECT v.id AS recorder_id, v.recorder_key, v.upload_url, v.upload_method,"
        " v.upload_auth_header, l.list_key, r.recording_key, r.play_key"
        " FROM recordings r JOIN recording_lists l ON l.id = r.list_id"
        " JOIN voice_recorders v ON v.id = l.recorder_id"
        " WHERE r.id = $1 AND v.storage = 'upload'", recording_id)


async def takes_past_retention(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Takes with audio older than their recorder's retention period, locked; rows another
    transaction holds wait for the next batch."""
    return list(await conn.fetch(
        "SELECT t.id, t.take_number, t.has_wav_file, t.has_mp3_file, t.recording_id,"
        " r.play_key, r.accepted_take_id = t.id AS accepted, l.recorder_id"
        " FROM takes t JOIN recordings r ON r.id = t.recording_id"
        " JOIN recording_lists l ON l.id = r.list_id"
        " JOIN voice_recorders v ON v.id = l.recorder_id"
        " WHERE t.audio_deleted_at IS NULL AND (t.has_wav_file OR t.has_mp3_file"
        "   OR t.status = 'discarded')"
        " AND t.status <> 'pending' AND v.retention_days IS NOT NULL"
        " AND t.created_at < now() - make_interval(days => v.retention_days)"
        " ORDER BY t.id LIMIT $1 FOR UPDATE OF t, r SKIP LOCKED", limit))


async def mark_audio_deleted(conn: Conn, take_ids: Sequence[int],
                             recording_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE takes SET audio_deleted_at = now(), has_wav_file = false, has_mp3_file = false"
        " WHERE id = ANY($1::bigint[])", list(take_ids))
    await conn.execute(
        "UPDATE recordings SET audio_deleted_at = now(), has_wav_file = false,"
        " has_mp3_file = false, updated_at = now() WHERE id = ANY($1::bigint[])",
        list(recording_ids))
