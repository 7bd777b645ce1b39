"""Recording lists and recordings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from ivr.core.db import Conn
from ivr.recorder.models import MAX_SEARCH_RESULTS, Recording, RecordingList, TakeSummary
from ivr.recorder.store.sql import _assignments, like_pattern

LIST_FIELDS = ("name", "meta_data_1", "meta_data_2", "meta_data_3", "caller_id", "access_code",
               "access_password_hash", "update_password_hash", "delete_password_hash",
               "max_recordings", "access_lookup")


_LIST_SELECT = """
    SELECT l.*, v.recorder_key,
           (SELECT count(*) FROM recordings r WHERE r.list_id = l.id) AS recording_count
      FROM recording_lists l JOIN voice_recorders v ON v.id = l.recorder_id"""


def _list(row: asyncpg.Record) -> RecordingList:
    return RecordingList(
        id=row["id"], recorder_id=row["recorder_id"], recorder_key=row["recorder_key"],
        list_key=row["list_key"], name=row["name"], meta_data_1=row["meta_data_1"],
        meta_data_2=row["meta_data_2"], meta_data_3=row["meta_data_3"],
        caller_id=row["caller_id"], access_code=row["access_code"],
        access_protected=row["access_password_hash"] is not None,
        update_protected=row["update_password_hash"] is not None,
        delete_protected=row["delete_password_hash"] is not None,
        max_recordings=row["max_recordings"], recording_count=row["recording_count"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        accessed_at=row["accessed_at"],
    )


async def insert_list(conn: Conn, recorder_id: int, key: str,
                      fields: Mapping[str, Any]) -> int:
    names = ["recorder_id", "list_key", *fields]
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return int(await conn.fetchval(
        f"INSERT INTO recording_lists ({', '.join(names)}) VALUES ({marks}) RETURNING id",
        recorder_id, key, *fields.values()))


async def list_by_id(conn: Conn, list_id: int) -> RecordingList:
    return _list(await conn.fetchrow(_LIST_SELECT + " WHERE l.id = $1", list_id))


async def list_row(conn: Conn, recorder_id: int, key: str, *,
                   for_update: bool = False) -> asyncpg.Record | None:
    """The raw row (with password hashes); FOR UPDATE serialises every change to the list's
    recordings, which is what keeps sequences gap- and duplicate-free."""
    return await conn.fetchrow(
        "SELECT * FROM recording_lists WHERE recorder_id = $1 AND list_key = $2"
        + (" FOR UPDATE" if for_update else ""), recorder_id, key)


async def search_lists(conn: Conn, recorder_id: int,
                       filters: Mapping[str, str]) -> list[asyncpg.Record]:
    clauses = ["l.recorder_id = $1"]
    values: list[Any] = [recorder_id]
    for name, value in filters.items():
        assert name.isidentifier()
        values.append(like_pattern(value))
        clauses.append(f"l.{name} LIKE ${len(values)}")
    return list(await conn.fetch(
        f"SELECT l.* FROM recording_lists l WHERE {' AND '.join(clauses)}"
        f" ORDER BY l.created_at, l.id LIMIT {MAX_SEARCH_RESULTS}", *values))


async def touch_lists(conn: Conn, list_ids: Sequence[int]) -> list[RecordingList]:
    rows = await conn.fetch(
        "UPDATE recording_lists SET accessed_at = now() WHERE id = ANY($1::bigint[])"
        " RETURNING id", list(list_ids))
    found = {r["id"] for r in rows}
    return [await list_by_id(conn, i) for i in list_ids if i in found]


async def update_list(conn: Conn, list_id: int, changes: Mapping[str, Any]) -> None:
    sets, values = _assignments(changes)
    await conn.execute(f"UPDATE recording_lists SET {sets} WHERE id = $1", list_id, *values)


async def delete_list(conn: Conn, list_id: int) -> None:
    await conn.execute("DELETE FROM recording_lists WHERE id = $1", list_id)


RECORDING_FIELDS = ("name", "meta_data_1", "meta_data_2", "meta_data_3", "caller_id",
                    "touchtone_input", "access_password_hash", "update_password_hash",
                    "delete_password_hash", "access_lookup")


_RECORDING_SELECT = """
    SELECT r.*, l.list_key,
           EXISTS (SELECT 1 FROM session_recordings sr
                    WHERE sr.recording_id = r.id AND sr.live) AS is_in_session,
           (SELECT t.take_number FROM takes t WHERE t.id = r.accepted_take_id) AS accepted_take,
           (SELECT t.upload_state FROM takes t WHERE t.id = r.accepted_take_id) AS upload_state,
           (SELECT t.kept_on_hangup FROM takes t WHERE t.id = r.accepted_take_id)
               AS kept_on_hangup,
           (SELECT t.quality FROM takes t WHERE t.id = r.accepted_take_id) AS quality,
           (SELECT v.link_ttl_seconds FROM voice_recorders v WHERE v.id = l.recorder_id)
               AS link_ttl_seconds
      FROM recordings r JOIN recording_lists l ON l.id = r.list_id"""


def _recording(row: asyncpg.Record) -> Recording:
    return Recording(
        id=row["id"], list_id=row["list_id"], list_key=row["list_key"],
        recording_key=row["recording_key"], sequence=row["sequence"], name=row["name"],
        meta_data_1=row["meta_data_1"], meta_data_2=row["meta_data_2"],
        meta_data_3=row["meta_data_3"], state=row["state"], play_key=row["play_key"],
        recording_length=row["recording_length"], has_wav_file=row["has_wav_file"],
        has_mp3_file=row["has_mp3_file"], caller_id=row["caller_id"],
        touchtone_input=row["touchtone_input"], access_code=row["access_code"],
        access_protected=row["access_password_hash"] is not None,
        update_protected=row["update_password_hash"] is not None,
        delete_protected=row["delete_password_hash"] is not None,
        is_in_session=row["is_in_session"], created_at=row["created_at"],
        updated_at=row["updated_at"], accessed_at=row["accessed_at"],
        accepted_take=row["accepted_take"], link_ttl_seconds=row["link_ttl_seconds"],
        upload_state=row["upload_state"], audio_deleted_at=row["audio_deleted_at"],
        kept_on_hangup=bool(row["kept_on_hangup"]),
        quality=_json_or_none(row["quality"]),
    )


def _json_or_none(value: str | None) -> dict[str, Any] | None:
    return None if value is None else orjson.loads(value)


async def recording_ids_in_order(conn: Conn, list_id: int) -> list[int]:
    rows = await conn.fetch("SELECT id FROM recordings WHERE list_id = $1 ORDER BY sequence, id",
                            list_id)
    return [r["id"] for r in rows]


async def used_sequences(conn: Conn, list_id: int) -> set[int]:
    rows = await conn.fetch("SELECT sequence FROM recordings WHERE list_id = $1", list_id)
    return {r["sequence"] for r in rows}


async def insert_recording(conn: Conn, list_id: int, key: str, sequence: int, play_key: str,
                           fields: Mapping[str, Any]) -> int:
    names = ["list_id", "recording_key", "sequence", "play_key", *fields]
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return int(await conn.fetchval(
        f"INSERT INTO recordings ({', '.join(names)}) VALUES ({marks}) RETURNING id",
        list_id, key, sequence, play_key, *fields.values()))


async def renumber(conn: Conn, ids_in_order: Sequence[int]) -> None:
    """Sequences 1..N in the given order (the unique constraint is checked at commit)."""
    await conn.execute(
        "UPDATE recordings r SET sequence = n.seq, updated_at = now()"
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS n(id, seq)"
        " WHERE r.id = n.id AND r.sequence <> n.seq", list(ids_in_order))


async def recording_by_id(conn: Conn, recording_id: int) -> Recording:
    return _recording(await conn.fetchrow(_RECORDING_SELECT + " WHERE r.id = $1", recording_id))


async def recording_row(conn: Conn, list_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM recordings WHERE list_id = $1 AND recording_key = $2", list_id, key)


async def recordings_of_list(conn: Conn, list_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM recordings WHERE list_id = $1 ORDER BY sequence, id", list_id))


async def search_recordings(conn: Conn, list_id: int,
                            filters: Mapping[str, str]) -> list[asyncpg.Record]:
    clauses = ["list_id = $1"]
    values: list[Any] = [list_id]
    for name, value in filters.items():
        assert name.isidentifier()
        values.append(like_pattern(value))
        clauses.append(f"{name} LIKE ${len(values)}")
    return list(await conn.fetch(
        f"SELECT * FROM recordings WHERE {' AND '.join(clauses)}"
        f" ORDER BY sequence, id LIMIT {MAX_SEARCH_RESULTS}", *values))


async def touch_recordings(conn: Conn, ids: Sequence[int]) -> list[Recording]:
    await conn.execute("UPDATE recordings SET accessed_at = now() WHERE id = ANY($1::bigint[])",
                       list(ids))
    rows = await conn.fetch(_RECORDING_SELECT + " WHERE r.id = ANY($1::bigint[])"
                            " ORDER BY r.sequence, r.id", list(ids))
    order = {rid: i for i, rid in enumerate(ids)}
    return sorted((_recording(r) for r in rows), key=lambda r: order[r.id])


async def update_recording(conn: Conn, recording_id: int, changes: Mapping[str, Any]) -> bool:
    """False when there is no such recording (any more)."""
    sets, values = _assignments(changes)
    status = await conn.execute(f"UPDATE recordings SET {sets} WHERE id = $1", recording_id,
                                *values)
    return status != "UPDATE 0"


async def delete_recording(conn: Conn, recording_id: int) -> None:
    await conn.execute("DELETE FROM recordings WHERE id = $1", recording_id)


async def recording_by_play_key(conn: Conn, play_key: str) -> Recording | None:
    row = await conn.fetchrow(_RECORDING_SELECT + " WHERE r.play_key = $1", play_key)
    return None if row is None else _recording(row)


async def takes_of_recording(conn: Conn, recording_id: int) -> list[TakeSummary]:
    rows = await conn.fetch(
        "SELECT take_number, status, duration_ms, kept_on_hangup, created_at, quality"
        " FROM takes WHERE recording_id = $1 ORDER BY take_number", recording_id)
    return [TakeSummary(**{**dict(r), "quality": _json_or_none(r["quality"])}) for r in rows]
