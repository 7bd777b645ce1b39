"""RecorderService, third part: recording lists and recordings."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound
from ivr.core.passwords import lookup_digest, verify_password
from ivr.recorder import events, store
from ivr.recorder.errors import LimitReached, ListKeyInUse, NoAudio, RecordingKeyInUse
from ivr.recorder.inputs import as_asset_passwords
from ivr.recorder.models import (
    Developer,
    Generated,
    Recorder,
    Recording,
    RecordingList,
    TakeSummary,
)
from ivr.recorder.rules import PASSWORD_FIELDS, Supplied
from ivr.recorder.service_recorders import RecorderOps


@dataclass(frozen=True, slots=True)
class Page:
    """Search results: at most MAX_SEARCH_RESULTS items."""

    items: tuple[Any, ...]


LEGACY_CHECKS = 5  # protected rows without a lookup digest verified per search, at most


class RecordingOps(RecorderOps):
    async def _list(self, conn: Conn, developer: Developer, recorder_key: str,
                    list_key: str, *, for_update: bool = False) -> tuple[Recorder, Any]:
        recorder = await self._own_recorder(conn, developer, recorder_key)
        row = await store.list_row(conn, recorder.id, list_key, for_update=for_update)
        if row is None:
            raise NotFound(f"recording list '{list_key}' not found")
        return recorder, row

    async def _visible(self, rows: list[Any], supplied: str | None,
                       recorder_key: str) -> list[int]:
        """The ids of the rows a search shows: the unprotected ones, and the protected ones
        whose access password `supplied` is. One Argon2 computation for the whole search (the
        recorder-wide lookup digest), not one per row; rows from before that digest existed
        are verified one by one, at most LEGACY_CHECKS of them. A search whose password opens
        none of them counts as a failure for the recorder (core/throttle.py)."""
        protected = [r for r in rows if r["access_password_hash"] is not None]
        if supplied is None or not protected:
            return [r["id"] for r in rows if r["access_password_hash"] is None]
        account = f"search:{recorder_key}"
        await self.throttle.check(account)
        digest = await lookup_digest(supplied, recorder_key)
        opened = {r["id"] for r in protected if r["access_lookup"] is not None
                  and hmac.compare_digest(bytes(r["access_lookup"]), digest)}
        legacy = [r for r in protected if r["access_lookup"] is None][:LEGACY_CHECKS]
        opened |= {r["id"] for r in legacy
                   if await verify_password(r["access_password_hash"], supplied)}
        await (self.throttle.succeeded(account) if opened else self.throttle.failed(account))
        return [r["id"] for r in rows if r["access_password_hash"] is None or r["id"] in opened]

    async def create_list(self, developer: Developer, recorder_key: str, list_key: str | None,
                          values: Mapping[str, Any],
                          initial_recordings: int) -> tuple[RecordingList, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated, recorder_key))
        maximum = fields.get("max_recordings")
        if maximum is not None and initial_recordings > maximum:
            raise InvalidParameter("initial_recordings",
                                   "initial_recordings is larger than max_recordings")
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, recorder_key)
            key = list_key or keys.new_key()
            try:
                async with conn.transaction():
                    list_id = await store.insert_list(conn, recorder.id, key, fields)
            except asyncpg.UniqueViolationError:
                raise ListKeyInUse(f"recording list key '{key}' is already in use") from None
            for sequence in range(1, initial_recordings + 1):
                await store.insert_recording(conn, list_id, keys.new_key(), sequence,
                                             keys.new_play_key(), {})
            return await store.list_by_id(conn, list_id), generated

    async def get_list(self, developer: Developer, recorder_key: str, list_key: str,
                       password: Supplied) -> RecordingList:
        async with self.pool.acquire() as conn, conn.transaction():
            _, row = await self._list(conn, developer, recorder_key, list_key)
            await self._require(password, row, "list", "access")
            (found,) = await store.touch_lists(conn, [row["id"]])
            return found

    async def search_lists(self, developer: Developer, recorder_key: str,
                           filters: Mapping[str, str], password: Supplied) -> Page:
        """Lists matching every filter ('%' wildcards); protected lists appear only to a
        caller who gives their access password."""
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, recorder_key)
            rows = await store.search_lists(conn, recorder.id, filters)
            supplied = as_asset_passwords(password).of("list", "access")
            visible = await self._visible(rows, supplied, recorder_key)
            return Page(tuple(await store.touch_lists(conn, visible)))

    async def set_list(self, developer: Developer, recorder_key: str, list_key: str,
                       values: Mapping[str, Any],
                       password: Supplied) -> tuple[RecordingList, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated, recorder_key))
        async with self.pool.acquire() as conn, conn.transaction():
            _, row = await self._list(conn, developer, recorder_key, list_key, for_update=True)
            await self._require(password, row, "list", "update")
            maximum = fields.get("max_recordings")
            if maximum is not None:
                count = len(await store.recording_ids_in_order(conn, row["id"]))
                if count > maximum:
                    raise InvalidParameter("max_recordings", f"the list already holds {count} "
                                           "recordings, more than max_recordings")
            if fields:
                await store.update_list(conn, row["id"], fields)
            return await store.list_by_id(conn, row["id"]), generated

    async def delete_list(self, developer: Developer, recorder_key: str, list_key: str,
                          password: Supplied) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            _, row = await self._list(conn, developer, recorder_key, list_key, for_update=True)
            await self._require(password, row, "list", "delete")
            # Each recording goes with its list: subscribers hear of each, as they would of
            # DeleteRecording, in the same transaction.
            for recording_id in await store.recording_ids_in_order(conn, row["id"]):
                live = await store.live_session_of_recording(conn, recording_id)
                await self.events.recording(
                    conn, recording_id, events.RECORDING_DELETED,
                    recorder_id=row["recorder_id"],
                    session=None if live is None else await store.session_by_id(conn, live))
            await store.delete_list(conn, row["id"])

    async def create_recording(self, developer: Developer, recorder_key: str, list_key: str,
                               recording_key: str | None, values: Mapping[str, Any],
                               sequence: int | None, keep_consecutive: bool,
                               password: Supplied) -> tuple[Recording, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated, recorder_key))
        async with self.pool.acquire() as conn, conn.transaction():
            _, row = await self._list(conn, developer, recorder_key, list_key, for_update=True)
            await self._require(password, row, "list", "update")
            ids = await store.recording_ids_in_order(conn, row["id"])
            if row["max_recordings"] is not None and len(ids) >= row["max_recordings"]:
                raise LimitReached(f"the list holds max_recordings={row['max_recordings']} "
                                   "recordings already")
            used = await store.used_sequences(conn, row["id"])
            if keep_consecutive:
                position = min(max(sequence or len(ids) + 1, 1), len(ids) + 1)
                initial = max(used, default=0) + 1
            else:
                if sequence is not None and sequence in used:
                    raise InvalidParameter("sequence", f"sequence {sequence} is used by another "
                                           "recording; keep_consecutive=true shifts the others")
                initial = sequence or max(used, default=0) + 1
            key = recording_key or keys.new_key()
            try:
                async with conn.transaction():
                    new_id = await store.insert_recording(conn, row["id"], key, initial,
                                                          keys.new_play_key(), fields)
            except asyncpg.UniqueViolationError:
                raise RecordingKeyInUse(f"recording key '{key}' is already in use") from None
            if keep_consecutive:
                ids.insert(position - 1, new_id)
                await store.renumber(conn, ids)
            # A caller voicing this list right now gets the new recording at its next step.
            live_session = await store.live_session_of_list(conn, row["id"])
            if live_session is not None:
                await store.add_session_recordings(conn, live_session, [new_id])
            (recording,) = await store.touch_recordings(conn, [new_id])
            return recording, generated

    async def _recording(self, conn: Conn, list_row: Any, key: str) -> Any:
        row = await store.recording_row(conn, list_row["id"], key)
        if row is None:
            raise NotFound(f"recording '{key}' not found in list '{list_row['list_key']}'")
        return row

    async def get_recording(self, developer: Developer, recorder_key: str, list_key: str,
                            recording_key: str, password: Supplied) -> Recording:
        async with self.pool.acquire() as conn, conn.transaction():
            _, lrow = await self._list(conn, developer, recorder_key, list_key)
            row = await self._recording(conn, lrow, recording_key)
            await self._require(password, lrow, "list", "access")
            await self._require(password, row, "recording", "access")
            (recording,) = await store.touch_recordings(conn, [row["id"]])
            return recording

    async def search_recordings(self, developer: Developer, recorder_key: str, list_key: str,
                                filters: Mapping[str, str], password: Supplied) -> Page:
        async with self.pool.acquire() as conn, conn.transaction():
            _, lrow = await self._list(conn, developer, recorder_key, list_key)
            await self._require(password, lrow, "list", "access")
            rows = await store.search_recordings(conn, lrow["id"], filters)
            supplied = as_asset_passwords(password).of("recording", "access")
            visible = await self._visible(rows, supplied, recorder_key)
            return Page(tuple(await store.touch_recordings(conn, visible)))

    async def set_recording(self, developer: Developer, recorder_key: str, list_key: str,
                            recording_key: str, values: Mapping[str, Any],
                            sequence: int | None, keep_consecutive: bool,
                            password: Supplied) -> tuple[Recording, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated, recorder_key))
        async with self.pool.acquire() as conn, conn.transaction():
            _, lrow = await self._list(conn, developer, recorder_key, list_key, for_update=True)
            row = await self._recording(conn, lrow, recording_key)
            await self._require(password, lrow, "list", "update")
            await self._require(password, row, "recording", "update")
            if fields:
                await store.update_recording(conn, row["id"], fields)
            if sequence is not None and sequence != row["sequence"]:
                ids = await store.recording_ids_in_order(conn, lrow["id"])
                if keep_consecutive:
                    ids.remove(row["id"])
                    ids.insert(min(max(sequence, 1), len(ids) + 1) - 1, row["id"])
                    await store.renumber(conn, ids)
                else:
                    if sequence in await store.used_sequences(conn, lrow["id"]):
                        raise InvalidParameter("sequence", f"sequence {sequence} is used by "
                                               "another recording; keep_consecutive=true "
                                               "shifts the others")
                    await store.update_recording(conn, row["id"], {"sequence": sequence})
            (recording,) = await store.touch_recordings(conn, [row["id"]])
            return recording, generated

    async def delete_recording(self, developer: Developer, recorder_key: str, list_key: str,
                               recording_key: str, keep_consecutive: bool,
                               password: Supplied) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            _, lrow = await self._list(conn, developer, recorder_key, list_key, for_update=True)
            row = await self._recording(conn, lrow, recording_key)
            await self._require(password, lrow, "list", "delete")
            await self._require(password, row, "recording", "delete")
            live = await store.live_session_of_recording(conn, row["id"])
            session = None if live is None else await store.session_by_id(conn, live)
            await self.events.recording(conn, await store.recording_by_id(conn, row["id"]),
                                        events.RECORDING_DELETED,
                                        recorder_id=lrow["recorder_id"], session=session)
            await store.delete_recording(conn, row["id"])
            if keep_consecutive:
                await store.renumber(conn, await store.recording_ids_in_order(conn, lrow["id"]))

    async def play_recording(self, developer: Developer, recorder_key: str, list_key: str,
                             recording_key: str, password: Supplied) -> Recording:
        recording = await self.get_recording(developer, recorder_key, list_key, recording_key,
                                             password)
        if not (recording.has_wav_file or recording.has_mp3_file):
            raise NoAudio(f"recording '{recording_key}' has no audio yet")
        return recording

    async def recording_takes(self, developer: Developer, recorder_key: str, list_key: str,
                              recording_key: str, password: Supplied) -> list[TakeSummary]:
        """Every take of a recording, oldest first (the accepted one, re-recorded ones,
        those kept on hang-up)."""
        async with self.pool.acquire() as conn:
            _, lrow = await self._list(conn, developer, recorder_key, list_key)
            row = await self._recording(conn, lrow, recording_key)
            await self._require(password, lrow, "list", "access")
            await self._require(password, row, "recording", "access")
            return await store.takes_of_recording(conn, row["id"])

    async def developer(self, developer_id: int) -> Developer | None:
        """The account behind a console sign-in (the console keeps only its id)."""
        async with self.pool.acquire() as conn:
            return await store.developer_by_id(conn, developer_id)

    async def recording_for_play_key(self, play_key: str) -> Recording | None:
        async with self.pool.acquire() as conn:
            return await store.recording_by_play_key(conn, play_key)
