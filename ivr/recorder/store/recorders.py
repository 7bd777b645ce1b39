"""Voice recorders (with their numbers and prompts as columns of one row) and their
uploaded prompts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from ivr.core.db import Conn
from ivr.recorder.models import PhoneNumber, Recorder
from ivr.recorder.store.sql import _assignments

RECORDER_FIELDS = (
    "name", "audio_format", "storage", "upload_url", "retention_days", "password_required",
    "password_hash", "phone_password_hash", "prompt_set", "initiation", "identification",
    "lookup_mode",
    "touchtone_prompt", "touchtone_length", "pin_length", "pin_ttl_seconds",
    "max_take_seconds", "silence_seconds", "min_take_seconds",
    "callback_url", "callback_secret", "callback_format", "upload_method", "upload_auth_header",
    "link_ttl_seconds", "quality_check", "quality_keep_anyway", "quality_min_speech_seconds",
    "quality_min_loudness_lufs", "quality_max_clipped_ratio", "quality_min_snr_db",
    "trim_silence", "normalize_lufs",
)


# A recorder's prompts and numbers, as columns of its row (`v`): a recorder, or a number's
# route with its recorders, is one round trip.
_RECORDER_EXTRAS = """
    ARRAY(SELECT p.prompt_name FROM recorder_prompts p WHERE p.recorder_id = v.id
          ORDER BY p.prompt_name) AS prompt_names,
    ARRAY(SELECT ROW(n.id, n.phone_number_key, n.number, n.display_number, n.country)
          FROM phone_numbers n JOIN recorder_numbers rn ON rn.phone_number_id = n.id
          WHERE rn.recorder_id = v.id ORDER BY n.number) AS numbers"""


_RECORDER_SELECT = "SELECT v.*," + _RECORDER_EXTRAS + " FROM voice_recorders v"


async def _recorder(conn: Conn, row: asyncpg.Record) -> Recorder:
    """A recorder from a row written just now (RETURNING *): its prompts and numbers read."""
    return await recorder_by_id(conn, row["id"])


def _recorder_of(row: asyncpg.Record) -> Recorder:
    """A recorder from a row of _RECORDER_SELECT (or a query with _RECORDER_EXTRAS)."""
    return Recorder(
        id=row["id"], developer_id=row["developer_id"], recorder_key=row["recorder_key"],
        name=row["name"], audio_format=row["audio_format"], storage=row["storage"],
        upload_url=row["upload_url"], retention_days=row["retention_days"],
        password_required=row["password_required"], prompt_set=row["prompt_set"],
        initiation=row["initiation"], identification=row["identification"],
        lookup_mode=row["lookup_mode"], touchtone_prompt=row["touchtone_prompt"],
        touchtone_length=row["touchtone_length"], pin_length=row["pin_length"],
        pin_ttl_seconds=row["pin_ttl_seconds"], max_take_seconds=row["max_take_seconds"],
        silence_seconds=row["silence_seconds"], min_take_seconds=row["min_take_seconds"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        phone_numbers=tuple(PhoneNumber(*n) for n in row["numbers"]),
        prompts=tuple(row["prompt_names"]),
        callback_url=row["callback_url"], callback_format=row["callback_format"],
        upload_method=row["upload_method"],
        upload_authenticated=row["upload_auth_header"] is not None,
        link_ttl_seconds=row["link_ttl_seconds"],
        quality_check=row["quality_check"], quality_keep_anyway=row["quality_keep_anyway"],
        quality_min_speech_seconds=row["quality_min_speech_seconds"],
        quality_min_loudness_lufs=row["quality_min_loudness_lufs"],
        quality_max_clipped_ratio=row["quality_max_clipped_ratio"],
        quality_min_snr_db=row["quality_min_snr_db"],
        trim_silence=row["trim_silence"], normalize_lufs=row["normalize_lufs"],
    )


async def insert_recorder(conn: Conn, developer_id: int, key: str,
                          fields: Mapping[str, Any]) -> Recorder:
    names = ["developer_id", "recorder_key", *fields]
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO voice_recorders ({', '.join(names)}) VALUES ({marks}) RETURNING *",
        developer_id, key, *fields.values())
    return await _recorder(conn, row)


async def recorder_by_key(conn: Conn, key: str, *, for_update: bool = False) -> Recorder | None:
    row = await conn.fetchrow(
        _RECORDER_SELECT + " WHERE v.recorder_key = $1"
        + (" FOR UPDATE OF v" if for_update else ""), key)
    return None if row is None else _recorder_of(row)


async def recorder_by_id(conn: Conn, recorder_id: int) -> Recorder:
    return _recorder_of(await conn.fetchrow(_RECORDER_SELECT + " WHERE v.id = $1", recorder_id))


async def recorder_password_hashes(conn: Conn, recorder_id: int) -> tuple[str | None, str | None]:
    """(phone_password_hash, password_hash) of a recorder; (None, None) when there is none."""
    row = await conn.fetchrow(
        "SELECT phone_password_hash, password_hash FROM voice_recorders WHERE id = $1",
        recorder_id)
    return (None, None) if row is None else (row["phone_password_hash"], row["password_hash"])


async def fill_phone_password_hash(conn: Conn, recorder_id: int, password_hash: str) -> None:
    """A recorder whose password is all digits has it as its keypad form too: the same hash
    becomes the keypad hash where there is none, unless the password changed meanwhile."""
    await conn.execute(
        "UPDATE voice_recorders SET phone_password_hash = password_hash"
        " WHERE id = $1 AND password_hash = $2 AND phone_password_hash IS NULL",
        recorder_id, password_hash)


async def recorder_phone_password_hash(conn: Conn, recorder_id: int) -> str | None:
    value = await conn.fetchval("SELECT phone_password_hash FROM voice_recorders WHERE id = $1",
                                recorder_id)
    return None if value is None else str(value)


async def recorder_password_hash(conn: Conn, recorder_id: int) -> str | None:
    value = await conn.fetchval("SELECT password_hash FROM voice_recorders WHERE id = $1",
                                recorder_id)
    return None if value is None else str(value)


async def update_recorder(conn: Conn, recorder_id: int, changes: Mapping[str, Any]) -> Recorder:
    sets, values = _assignments(changes)
    row = await conn.fetchrow(f"UPDATE voice_recorders SET {sets} WHERE id = $1 RETURNING *",
                              recorder_id, *values)
    return await _recorder(conn, row)


async def recorders_of(conn: Conn, developer_id: int) -> list[Recorder]:
    rows = await conn.fetch(_RECORDER_SELECT + " WHERE v.developer_id = $1 ORDER BY v.id",
                            developer_id)
    return [_recorder_of(r) for r in rows]


async def delete_recorder(conn: Conn, recorder_id: int) -> None:
    await conn.execute("DELETE FROM voice_recorders WHERE id = $1", recorder_id)


async def upsert_prompt(conn: Conn, recorder_id: int, name: str, play_key: str,
                        size: int) -> None:
    await conn.execute(
        "INSERT INTO recorder_prompts (recorder_id, prompt_name, play_key, size_bytes)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (recorder_id, prompt_name) DO UPDATE"
        " SET size_bytes = EXCLUDED.size_bytes, uploaded_at = now()",
        recorder_id, name, play_key, size)


async def prompt_play_key(conn: Conn, recorder_id: int, name: str) -> str | None:
    value = await conn.fetchval(
        "SELECT play_key FROM recorder_prompts WHERE recorder_id = $1 AND prompt_name = $2",
        recorder_id, name)
    return None if value is None else str(value)


async def prompt_by_play_key(conn: Conn, play_key: str) -> tuple[str, str] | None:
    row = await conn.fetchrow(
        "SELECT v.recorder_key, p.prompt_name FROM recorder_prompts p"
        " JOIN voice_recorders v ON v.id = p.recorder_id WHERE p.play_key = $1", play_key)
    return None if row is None else (row["recorder_key"], row["prompt_name"])


async def delete_prompt(conn: Conn, recorder_id: int, name: str) -> bool:
    found = await conn.fetchval(
        "DELETE FROM recorder_prompts WHERE recorder_id = $1 AND prompt_name = $2 RETURNING 1",
        recorder_id, name)
    return found is not None
