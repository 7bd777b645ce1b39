"""The recorder's SQL. Functions take a connection (the service owns transactions) and return
model objects; nothing here decides a rule that the service or the schema does not state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from ivr.core.db import Conn
from ivr.recorder.models import (
    MAX_SEARCH_RESULTS,
    Developer,
    PhoneNumber,
    Recorder,
    Recording,
    RecordingList,
    Session,
    TakeSummary,
)


def _assignments(changes: Mapping[str, Any], start: int = 2) -> tuple[str, list[Any]]:
    # Column names come from the service's own field lists, never from a request.
    assert all(name.isidentifier() for name in changes)
    sets = [f"{name} = ${i}" for i, name in enumerate(changes, start)]
    return ", ".join([*sets, "updated_at = now()"]), list(changes.values())


def like_pattern(value: str) -> str:
    """MyVox searches treat only '%' as a wildcard: '_' and '\\' match themselves."""
    return value.replace("\\", "\\\\").replace("_", "\\_")


# --- developers -----------------------------------------------------------------------------
def _developer(row: asyncpg.Record) -> Developer:
    return Developer(row["id"], row["username"], row["email"], row["name"], row["created_at"],
                     row["updated_at"])


async def insert_developer(conn: Conn, username: str, password_hash: str, email: str,
                           name: str) -> Developer:
    row = await conn.fetchrow(
        "INSERT INTO developers (username, password_hash, email, name) VALUES ($1, $2, $3, $4)"
        " RETURNING *", username, password_hash, email, name)
    return _developer(row)


async def developer_credentials(conn: Conn, username: str) -> tuple[Developer, str] | None:
    row = await conn.fetchrow("SELECT * FROM developers WHERE username = $1", username)
    return None if row is None else (_developer(row), row["password_hash"])


async def developer_by_token(conn: Conn, digest: bytes) -> Developer | None:
    row = await conn.fetchrow(
        "SELECT d.* FROM developer_tokens t JOIN developers d ON d.id = t.developer_id"
        " WHERE t.token_hash = $1", digest)
    return None if row is None else _developer(row)


async def insert_token(conn: Conn, developer_id: int, digest: bytes) -> None:
    await conn.execute("INSERT INTO developer_tokens (token_hash, developer_id) VALUES ($1, $2)",
                       digest, developer_id)


async def update_developer(conn: Conn, developer_id: int, changes: Mapping[str, Any]) -> Developer:
    sets, values = _assignments(changes)
    row = await conn.fetchrow(f"UPDATE developers SET {sets} WHERE id = $1 RETURNING *",
                              developer_id, *values)
    return _developer(row)


async def delete_developer(conn: Conn, developer_id: int) -> None:
    await conn.execute("DELETE FROM developers WHERE id = $1", developer_id)


# --- phone numbers --------------------------------------------------------------------------
def _number(row: asyncpg.Record) -> PhoneNumber:
    return PhoneNumber(row["id"], row["phone_number_key"], row["number"], row["display_number"],
                       row["country"])


async def insert_number(conn: Conn, key: str, number: str, display: str, country: str,
                        dial_forms: Sequence[str]) -> PhoneNumber:
    row = await conn.fetchrow(
        "INSERT INTO phone_numbers (phone_number_key, number, display_number, country,"
        " dial_forms) VALUES ($1, $2, $3, $4, $5) RETURNING *",
        key, number, display, country, list(dial_forms))
    return _number(row)


async def number_by_forms(conn: Conn, forms: Sequence[str]) -> PhoneNumber | None:
    """The number stored as the first of these forms that is one, else None."""
    row = await conn.fetchrow(
        "SELECT * FROM phone_numbers WHERE number = ANY($1::text[])"
        " ORDER BY array_position($1::text[], number) LIMIT 1", list(forms))
    return None if row is None else _number(row)


async def recorders_on_number(conn: Conn, number_id: int) -> list[tuple[int, str, str, bool]]:
    """(id, key, initiation, has another number) of every recorder given this number."""
    rows = await conn.fetch(
        "SELECT v.id, v.recorder_key, v.initiation, EXISTS (SELECT 1 FROM recorder_numbers o"
        " WHERE o.recorder_id = v.id AND o.phone_number_id <> $1) AS others"
        " FROM recorder_numbers rn JOIN voice_recorders v ON v.id = rn.recorder_id"
        " WHERE rn.phone_number_id = $1 ORDER BY v.id", number_id)
    return [(r["id"], r["recorder_key"], r["initiation"], r["others"]) for r in rows]


async def live_sessions_on_number(conn: Conn, number_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM session_pins p JOIN recording_sessions s ON s.id = p.session_id"
        " WHERE p.phone_number_id = $1 AND p.live"
        " AND s.state IN ('created', 'called', 'recording')", number_id))


async def unassign_number(conn: Conn, number_id: int) -> None:
    await conn.execute("DELETE FROM recorder_numbers WHERE phone_number_id = $1", number_id)


async def delete_number(conn: Conn, number_id: int) -> None:
    """With its sessions' PINs and PIN failures on it (the schema cascades those)."""
    await conn.execute("DELETE FROM phone_numbers WHERE id = $1", number_id)


async def all_numbers(conn: Conn) -> list[tuple[PhoneNumber, int, bool]]:
    """Every number with how many recorders use it and whether one has it dedicated."""
    rows = await conn.fetch(
        "SELECT n.*, count(rn.recorder_id) AS recorders, bool_or(coalesce(rn.dedicated, false))"
        " AS dedicated FROM phone_numbers n LEFT JOIN recorder_numbers rn"
        " ON rn.phone_number_id = n.id GROUP BY n.id ORDER BY n.number")
    return [(_number(r), r["recorders"], r["dedicated"]) for r in rows]


async def lock_numbers(conn: Conn) -> None:
    """Assignments are rare; one lock over the table keeps 'dedicated' and 'shared' apart."""
    await conn.execute("LOCK TABLE recorder_numbers IN SHARE ROW EXCLUSIVE MODE")


async def assign_number(conn: Conn, recorder_id: int, number_id: int, dedicated: bool) -> None:
    await conn.execute(
        "INSERT INTO recorder_numbers (recorder_id, phone_number_id, dedicated)"
        " VALUES ($1, $2, $3)",
        recorder_id, number_id, dedicated)


async def unassign_numbers(conn: Conn, recorder_id: int) -> None:
    await conn.execute("DELETE FROM recorder_numbers WHERE recorder_id = $1", recorder_id)


# --- recorders ------------------------------------------------------------------------------
RECORDER_FIELDS = (
    "name", "audio_format", "storage", "upload_url", "retention_days", "password_required",
    "password_hash", "phone_password_hash", "prompt_set", "initiation", "identification",
    "lookup_mode",
    "touchtone_prompt", "touchtone_length", "pin_length", "pin_ttl_seconds",
    "max_take_seconds", "silence_seconds", "min_take_seconds",
    "callback_url", "callback_secret", "callback_format", "upload_method", "upload_auth_header",
    "link_ttl_seconds", "quality_check", "quality_keep_anyway", "quality_min_speech_seconds",
    "quality_min_loudness_lufs", "quality_max_clipped_ratio", "quality_min_snr_db",
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


# --- recording lists ------------------------------------------------------------------------
LIST_FIELDS = ("name", "meta_data_1", "meta_data_2", "meta_data_3", "caller_id", "access_code",
               "access_password_hash", "update_password_hash", "delete_password_hash",
               "max_recordings")
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


# --- recordings -----------------------------------------------------------------------------
RECORDING_FIELDS = ("name", "meta_data_1", "meta_data_2", "meta_data_3", "caller_id",
                    "touchtone_input", "access_password_hash", "update_password_hash",
                    "delete_password_hash")
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


# --- sessions -------------------------------------------------------------------------------
_SESSION_SELECT = """
    SELECT s.*, v.recorder_key, l.list_key
      FROM recording_sessions s
      JOIN voice_recorders v ON v.id = s.recorder_id
      JOIN recording_lists l ON l.id = s.list_id"""


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id=row["id"], session_key=row["session_key"], recorder_id=row["recorder_id"],
        recorder_key=row["recorder_key"], list_id=row["list_id"], list_key=row["list_key"],
        caller_id=row["caller_id"], state=row["state"],
        current_recording_id=row["current_recording_id"], created_at=row["created_at"],
        expires_at=row["expires_at"], called_at=row["called_at"], ended_at=row["ended_at"],
        callback_url=row["callback_url"], failure_code=row["failure_code"],
        failure_reason=row["failure_reason"],
    )


async def expire_due(conn: Conn, limit: int | None = None) -> list[int]:
    """Sessions whose PIN was not used in time become "expired" (the trigger releases their
    PINs and recordings). Rows another transaction holds are left for the next sweep.
    Returns the ids expired (at most `limit`), in id order."""
    rows = await conn.fetch(
        "UPDATE recording_sessions SET state = 'expired', ended_at = now() WHERE id IN ("
        " SELECT id FROM recording_sessions WHERE state = 'created' AND expires_at <= now()"
        " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id", limit)
    return sorted(int(r["id"]) for r in rows)


async def insert_session(conn: Conn, key: str, recorder_id: int, list_id: int, pin: str,
                         caller_id: str | None, ttl_seconds: int,
                         callback_url: str | None = None) -> int:
    return int(await conn.fetchval(
        "INSERT INTO recording_sessions (session_key, recorder_id, list_id, pin, caller_id,"
        " expires_at, callback_url) VALUES ($1, $2, $3, $4, $5,"
        " now() + make_interval(secs => $6), $7) RETURNING id",
        key, recorder_id, list_id, pin, caller_id, float(ttl_seconds), callback_url))


async def insert_pin(conn: Conn, session_id: int, number_id: int, pin: str) -> None:
    await conn.execute(
        "INSERT INTO session_pins (session_id, phone_number_id, pin) VALUES ($1, $2, $3)",
        session_id, number_id, pin)


async def live_sessions_with_pin(conn: Conn, number_ids: Sequence[int], pin: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT session_id FROM session_pins WHERE live AND pin = $1"
        " AND phone_number_id = ANY($2::bigint[])", pin, list(number_ids))
    return [r["session_id"] for r in rows]


async def locked_recording_ids(conn: Conn, recording_ids: Sequence[int]) -> set[int]:
    rows = await conn.fetch(
        "SELECT recording_id FROM session_recordings WHERE live"
        " AND recording_id = ANY($1::bigint[])", list(recording_ids))
    return {r["recording_id"] for r in rows}


async def add_session_recordings(conn: Conn, session_id: int, ids: Sequence[int]) -> None:
    await conn.execute(
        "INSERT INTO session_recordings (session_id, recording_id)"
        " SELECT $1, unnest($2::bigint[])", session_id, list(ids))


async def mark_rerecord(conn: Conn, ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE recordings SET state = 'rerecord', updated_at = now()"
        " WHERE id = ANY($1::bigint[]) AND (has_wav_file OR has_mp3_file)", list(ids))


async def session_by_key(conn: Conn, key: str, *, for_update: bool = False) -> Session | None:
    row = await conn.fetchrow(
        _SESSION_SELECT + " WHERE s.session_key = $1"
        + (" FOR UPDATE OF s" if for_update else ""), key)
    return None if row is None else _session(row)


async def session_by_id(conn: Conn, session_id: int, *, for_update: bool = False) -> Session:
    return _session(await conn.fetchrow(
        _SESSION_SELECT + " WHERE s.id = $1" + (" FOR UPDATE OF s" if for_update else ""),
        session_id))


async def session_recording_ids(conn: Conn, session_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT r.id FROM session_recordings sr JOIN recordings r ON r.id = sr.recording_id"
        " WHERE sr.session_id = $1 ORDER BY r.sequence, r.id", session_id)
    return [r["id"] for r in rows]


async def session_recordings(conn: Conn, session_id: int) -> list[Recording]:
    rows = await conn.fetch(
        _RECORDING_SELECT + " JOIN session_recordings s ON s.recording_id = r.id"
        " WHERE s.session_id = $1 ORDER BY r.sequence, r.id", session_id)
    return [_recording(r) for r in rows]


async def set_session_state(conn: Conn, session_id: int, state: str,
                            channel_id: str | None = None) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET state = $2,"
        " called_at = CASE WHEN $2 IN ('called', 'recording') THEN coalesce(called_at, now())"
        "                  ELSE called_at END,"
        " ended_at = CASE WHEN $2 IN ('ended', 'expired') THEN coalesce(ended_at, now())"
        "                 ELSE ended_at END,"
        " current_recording_id = CASE WHEN $2 = 'recording' THEN current_recording_id END,"
        " channel_id = coalesce($3, channel_id)"
        " WHERE id = $1", session_id, state, channel_id)


# The phone side's two per-take session changes, each one statement (the hot path: see
# bench/README.md). The row comes back as _SESSION_SELECT shows it.
_SESSION_OF = """
    SELECT u.*, v.recorder_key, l.list_key FROM u
      JOIN voice_recorders v ON v.id = u.recorder_id
      JOIN recording_lists l ON l.id = u.list_id"""


async def start_recording(conn: Conn, session_id: int, recording_id: int) -> Session | None:
    """The session in a call records this recording of its own; None when the session is not
    in a call or the recording is not (any more) one of its recordings."""
    row = await conn.fetchrow(
        "WITH u AS (UPDATE recording_sessions SET state = 'recording',"
        " called_at = coalesce(called_at, now()), current_recording_id = $2"
        " WHERE id = $1 AND state IN ('called', 'recording') AND EXISTS ("
        "  SELECT 1 FROM session_recordings WHERE session_id = $1 AND recording_id = $2)"
        " RETURNING *)" + _SESSION_OF, session_id, recording_id)
    return None if row is None else _session(row)


async def leave_recording_state(conn: Conn, session_id: int) -> Session:
    """A take settled: a `recording` session is back to `called` (other states stay)."""
    row = await conn.fetchrow(
        "WITH u AS (UPDATE recording_sessions SET"
        " state = CASE WHEN state = 'recording' THEN 'called' ELSE state END,"
        " current_recording_id = CASE WHEN state = 'recording' THEN NULL"
        "                        ELSE current_recording_id END"
        " WHERE id = $1 RETURNING *)" + _SESSION_OF, session_id)
    return _session(row)


# The same changes, for a call whose changes send nothing (no callback URL, no uploads): one
# statement each, no transaction around it (see RecorderPhone's `quiet`).
async def mark_called_quiet(conn: Conn, session_id: int, channel_id: str | None) -> bool:
    """A live session is `called` (if it was `created`) on this channel; False if not live."""
    state = await conn.fetchval(
        "UPDATE recording_sessions SET"
        " state = CASE WHEN state = 'created' THEN 'called' ELSE state END,"
        " called_at = coalesce(called_at, now()), channel_id = coalesce($2, channel_id)"
        " WHERE id = $1 AND state IN ('created', 'called', 'recording') RETURNING state",
        session_id, channel_id)
    return state is not None


async def start_take_quiet(conn: Conn, session_id: int, recording_id: int) -> bool:
    """`start_recording` and the recording's state, at once; False when either did not apply
    (the caller then takes the transactional way, which tells why)."""
    return bool(await conn.fetchval(
        "WITH u AS (UPDATE recording_sessions SET state = 'recording',"
        " called_at = coalesce(called_at, now()), current_recording_id = $2"
        " WHERE id = $1 AND state IN ('called', 'recording') AND EXISTS ("
        "  SELECT 1 FROM session_recordings WHERE session_id = $1 AND recording_id = $2)"
        " RETURNING id),"
        " r AS (UPDATE recordings SET state = 'recording', updated_at = now()"
        "  WHERE id = $2 AND EXISTS (SELECT 1 FROM u) RETURNING id)"
        " SELECT EXISTS (SELECT 1 FROM r)", session_id, recording_id))


async def accept_take_quiet(conn: Conn, session_id: int, recording_id: int, take_id: int,
                            take: Mapping[str, Any], recording: Mapping[str, Any]) -> bool:
    """The take accepted, the recording pointing at it and the session out of `recording`;
    False (the take alone updated) when the recording was deleted meanwhile."""
    assert all(name.isidentifier() for name in (*take, *recording))
    n = len(take)
    take_sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(take, 4))
    rec_sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(recording, 4 + n))
    return bool(await conn.fetchval(
        f"WITH t AS (UPDATE takes SET {take_sets} WHERE id = $3 RETURNING id),"
        f" r AS (UPDATE recordings SET {rec_sets}, updated_at = now() WHERE id = $2"
        "  RETURNING id),"
        " s AS (UPDATE recording_sessions SET"
        "  state = CASE WHEN state = 'recording' THEN 'called' ELSE state END,"
        "  current_recording_id = CASE WHEN state = 'recording' THEN NULL"
        "                         ELSE current_recording_id END"
        "  WHERE id = $1 AND EXISTS (SELECT 1 FROM r) RETURNING id)"
        " SELECT EXISTS (SELECT 1 FROM r)",
        session_id, recording_id, take_id, *take.values(), *recording.values()))


async def set_session_failure(conn: Conn, session_id: int, code: str, reason: str) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET failure_code = $2, failure_reason = $3 WHERE id = $1",
        session_id, code, reason)


async def end_session_quiet(conn: Conn, session_id: int) -> None:
    await conn.execute(
        "UPDATE recording_sessions SET state = 'ended', ended_at = coalesce(ended_at, now()),"
        " current_recording_id = NULL"
        " WHERE id = $1 AND state IN ('created', 'called', 'recording')", session_id)


async def set_current_recording(conn: Conn, session_id: int, recording_id: int | None) -> None:
    await conn.execute("UPDATE recording_sessions SET current_recording_id = $2 WHERE id = $1",
                       session_id, recording_id)


async def live_session_for_pin(conn: Conn, number_id: int, pin: str) -> int | None:
    value = await conn.fetchval(
        "SELECT p.session_id FROM session_pins p JOIN recording_sessions s ON s.id = p.session_id"
        " WHERE p.live AND p.phone_number_id = $1 AND p.pin = $2 AND s.expires_at > now()"
        " OR p.live AND p.phone_number_id = $1 AND p.pin = $2 AND s.state <> 'created'",
        number_id, pin)
    return None if value is None else int(value)


async def next_take_number(conn: Conn, recording_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT coalesce(max(take_number), 0) + 1 FROM takes WHERE recording_id = $1",
        recording_id))


async def insert_take(conn: Conn, recording_id: int, session_id: int | None, number: int,
                      length: int, has_wav: bool, has_mp3: bool, caller_id: str | None,
                      touchtone: str | None) -> int:
    return int(await conn.fetchval(
        "INSERT INTO takes (recording_id, session_id, take_number, length_seconds, has_wav_file,"
        " has_mp3_file, caller_id, touchtone_input) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " RETURNING id", recording_id, session_id, number, length, has_wav, has_mp3, caller_id,
        touchtone))


# --- /v1 idempotency keys -------------------------------------------------------------------
async def claim_idempotency_key(conn: Conn, developer_id: int, key: str,
                                request_hash: bytes) -> asyncpg.Record | None:
    """None when the key is new (and now claimed); otherwise the earlier request's row."""
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (developer_id, idem_key, request_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", developer_id, key, request_hash)
    if inserted:
        return None
    return await conn.fetchrow(
        "SELECT * FROM idempotency_keys WHERE developer_id = $1 AND idem_key = $2",
        developer_id, key)


async def save_idempotent_response(conn: Conn, developer_id: int, key: str, status: int,
                                   body: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4"
        " WHERE developer_id = $1 AND idem_key = $2", developer_id, key, status, body)


async def release_idempotency_key(conn: Conn, developer_id: int, key: str) -> None:
    await conn.execute("DELETE FROM idempotency_keys WHERE developer_id = $1 AND idem_key = $2",
                       developer_id, key)


# --- the phone side -------------------------------------------------------------------------
async def number_route(conn: Conn, number: str
                       ) -> tuple[PhoneNumber, list[tuple[Recorder, bool]]] | None:
    """A dialled number and (recorder, dedicated) for every recorder assigned to it, in one
    round trip (every call starts with it). The dialled string is matched against each
    number's dial forms (+15125550100, 15125550100, 5125550100: numbers.dial_forms); were two
    numbers of different countries to share a national form, the oldest answers."""
    rows = await conn.fetch(
        "WITH hit AS (SELECT * FROM phone_numbers WHERE dial_forms @> ARRAY[$1::text]"
        " ORDER BY array_position(dial_forms, $1::text), id LIMIT 1)"
        " SELECT hit.id AS number_id, hit.phone_number_key AS number_key, hit.number AS digits,"
        " hit.display_number, hit.country, rn.dedicated, v.*," + _RECORDER_EXTRAS +
        " FROM hit LEFT JOIN recorder_numbers rn ON rn.phone_number_id = hit.id"
        " LEFT JOIN voice_recorders v ON v.id = rn.recorder_id ORDER BY v.id", number)
    if not rows:
        return None
    first = rows[0]
    phone = PhoneNumber(id=first["number_id"], phone_number_key=first["number_key"],
                        number=first["digits"], display_number=first["display_number"],
                        country=first["country"])
    recorders = [(_recorder_of(r), bool(r["dedicated"])) for r in rows if r["id"] is not None]
    return phone, recorders


async def live_session_for_caller(conn: Conn, number_id: int,
                                  caller_id: str) -> Session | None:
    """A live session keyed to this caller id (never a PIN session that happens to match)."""
    row = await conn.fetchrow(
        _SESSION_SELECT + " JOIN session_pins p ON p.session_id = s.id"
        " WHERE p.live AND p.phone_number_id = $1 AND s.caller_id = $2"
        " AND (s.state <> 'created' OR s.expires_at > now())", number_id, caller_id)
    return None if row is None else _session(row)


async def pin_failures_since(conn: Conn, number_id: int, caller_id: str,
                             seconds: int) -> tuple[int, int]:
    """Recent failures (on this number, by this caller id)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS on_number,"
        " count(*) FILTER (WHERE caller_id <> '' AND caller_id = $2) AS by_caller"
        " FROM pin_failures WHERE phone_number_id = $1"
        " AND failed_at > now() - make_interval(secs => $3)",
        number_id, caller_id, float(seconds))
    return int(row["on_number"]), int(row["by_caller"])


async def insert_pin_failure(conn: Conn, number_id: int, caller_id: str) -> None:
    await conn.execute("INSERT INTO pin_failures (phone_number_id, caller_id) VALUES ($1, $2)",
                       number_id, caller_id)


async def insert_pending_take(conn: Conn, recording_id: int, session_id: int,
                              channel_id: str, asterisk_name: str | None,
                              quality: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """A take row for audio about to be stored: (take id, take number)."""
    # One statement: the recording's row lock serializes take numbers; the UNIQUE
    # (recording_id, take_number) constraint backs it.
    row = await conn.fetchrow(
        "WITH lock AS (SELECT id FROM recordings WHERE id = $1 FOR UPDATE)"
        " INSERT INTO takes (recording_id, session_id, take_number, status, channel_id,"
        " asterisk_name, quality) SELECT $1, $2, (SELECT coalesce(max(take_number), 0) + 1"
        " FROM takes WHERE recording_id = (SELECT id FROM lock)), 'pending', $3, $4, $5::jsonb"
        " RETURNING id, take_number", recording_id, session_id, channel_id, asterisk_name,
        None if quality is None else orjson.dumps(quality).decode())
    return int(row["id"]), int(row["take_number"])


async def update_take(conn: Conn, take_id: int, changes: Mapping[str, Any]) -> None:
    assert all(name.isidentifier() for name in changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, 2))
    await conn.execute(f"UPDATE takes SET {sets} WHERE id = $1", take_id, *changes.values())


async def accepted_take_number(conn: Conn, recording_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT t.take_number FROM recordings r JOIN takes t ON t.id = r.accepted_take_id"
        " WHERE r.id = $1", recording_id)
    return None if value is None else int(value)


async def live_session_of_recording(conn: Conn, recording_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT session_id FROM session_recordings WHERE recording_id = $1 AND live",
        recording_id)
    return None if value is None else int(value)


async def live_session_of_list(conn: Conn, list_id: int) -> int | None:
    value = await conn.fetchval(
        "SELECT id FROM recording_sessions WHERE list_id = $1"
        " AND state IN ('created', 'called', 'recording') ORDER BY id DESC LIMIT 1", list_id)
    return None if value is None else int(value)


async def lists_for_caller(conn: Conn, recorder_id: int, caller_id: str | None,
                           access_code: str | None) -> list[int]:
    """Lists matching every given identifier, most recently used first."""
    rows = await conn.fetch(
        "SELECT id FROM recording_lists WHERE recorder_id = $1"
        " AND ($2::text IS NULL OR caller_id = $2) AND ($3::text IS NULL OR access_code = $3)"
        " ORDER BY accessed_at DESC, id DESC LIMIT 1", recorder_id, caller_id, access_code)
    return [int(r["id"]) for r in rows]


# --- delivery -------------------------------------------------------------------------------
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


# --- the console's reads and prompt reset ---------------------------------------------------
async def developer_by_id(conn: Conn, developer_id: int) -> Developer | None:
    row = await conn.fetchrow("SELECT * FROM developers WHERE id = $1", developer_id)
    return None if row is None else _developer(row)


async def takes_of_recording(conn: Conn, recording_id: int) -> list[TakeSummary]:
    rows = await conn.fetch(
        "SELECT take_number, status, duration_ms, kept_on_hangup, created_at, quality"
        " FROM takes WHERE recording_id = $1 ORDER BY take_number", recording_id)
    return [TakeSummary(**{**dict(r), "quality": _json_or_none(r["quality"])}) for r in rows]


async def delete_prompt(conn: Conn, recorder_id: int, name: str) -> bool:
    found = await conn.fetchval(
        "DELETE FROM recorder_prompts WHERE recorder_id = $1 AND prompt_name = $2 RETURNING 1",
        recorder_id, name)
    return found is not None
