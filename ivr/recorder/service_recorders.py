"""RecorderService, second part: voice recorders, their prompts, and the passwords of lists and
recordings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound
from ivr.core.files import write_private
from ivr.core.passwords import hash_password, lookup_digest
from ivr.media.prompts import prompt_path
from ivr.recorder import numbers, store
from ivr.recorder.errors import AssetPasswordRequired, NoAudio, RecorderNotYours, RecorderQuota
from ivr.recorder.inputs import as_asset_passwords
from ivr.recorder.models import (
    Developer,
    Generated,
    Recorder,
    is_random_password_request,
    keypad_digits,
)
from ivr.recorder.params import ABSENT
from ivr.recorder.rules import (
    MAX_PROMPT_BYTES,
    OBJECT_NAMES,
    PASSWORD_FIELDS,
    Supplied,
    check_keyable,
    check_prompt_name,
    check_violation,
    recorder_fields,
    set_callback_secret,
)
from ivr.recorder.service_accounts import AccountOps


class RecorderOps(AccountOps):
    async def _own_recorder(self, conn: Conn, developer: Developer, key: str, *,
                            for_update: bool = False) -> Recorder:
        recorder = await store.recorder_by_key(conn, key, for_update=for_update)
        if recorder is None:
            raise NotFound(f"voice recorder '{key}' not found")
        if recorder.developer_id != developer.id:
            raise RecorderNotYours(f"voice recorder '{key}' belongs to another developer")
        return recorder

    async def _assign_numbers(self, conn: Conn, recorder_id: int, initiation: str) -> None:
        await numbers.assign(conn, recorder_id, initiation)

    async def create_recorder(self, developer: Developer, key: str | None,
                              fields: Mapping[str, Any],
                              password: str | None) -> tuple[Recorder, Generated]:
        generated = Generated()
        values = recorder_fields(fields, self.allow_private_urls)
        set_callback_secret(values, generated, creating=True)
        if password is not None:
            await self._set_recorder_password(values, password, generated)
        if values.get("password_required"):
            if "password_hash" not in values:
                raise InvalidParameter("recorder_password",
                                       "password_required needs a recorder_password")
            check_keyable(values.get("phone_password_hash"))
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.recorder_count(conn, developer.id) >= self.max_recorders:
                raise RecorderQuota(f"you have {self.max_recorders} voice recorders, as many as "
                                    "this server allows; delete one or ask the operator")
            try:
                async with conn.transaction():
                    recorder = await store.insert_recorder(
                        conn, developer.id, key or keys.new_key(), values)
            except asyncpg.UniqueViolationError:
                raise InvalidParameter("voice_recorder_key",
                                       f"voice recorder key '{key}' is already in use") from None
            except asyncpg.CheckViolationError as exc:
                raise check_violation(exc) from None
            await self._assign_numbers(conn, recorder.id, recorder.initiation)
            return await store.recorder_by_id(conn, recorder.id), generated

    async def get_recorder(self, developer: Developer, key: str) -> Recorder:
        async with self.pool.acquire() as conn:
            return await self._own_recorder(conn, developer, key)

    async def list_recorders(self, developer: Developer) -> list[Recorder]:
        async with self.pool.acquire() as conn:
            return await store.recorders_of(conn, developer.id)

    async def set_recorder(self, developer: Developer, key: str, fields: Mapping[str, Any],
                           password: str | Any | None) -> tuple[Recorder, Generated]:
        generated = Generated()
        values = recorder_fields(fields, self.allow_private_urls)
        set_callback_secret(values, generated, creating=False)
        if isinstance(password, str):
            await self._set_recorder_password(values, password, generated)
        elif password is None:
            values["password_hash"] = values["phone_password_hash"] = None
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            if values.get("password_required", recorder.password_required) and (
                    "password_hash" in values or not recorder.password_required):
                # Callers must be able to key the password the recorder will ask them for.
                check_keyable(values["phone_password_hash"] if "password_hash" in values
                         else await store.recorder_phone_password_hash(conn, recorder.id))
            if values:
                try:
                    async with conn.transaction():
                        await store.update_recorder(conn, recorder.id, values)
                except asyncpg.CheckViolationError as exc:
                    raise check_violation(exc) from None
            if values.get("initiation", recorder.initiation) != recorder.initiation:
                await self._assign_numbers(conn, recorder.id, values["initiation"])
            return await store.recorder_by_id(conn, recorder.id), generated

    async def delete_recorder(self, developer: Developer, key: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            await store.delete_recorder(conn, recorder.id)

    async def set_prompt_set(self, developer: Developer, key: str, prompt_set: str) -> Recorder:
        recorder, _ = await self.set_recorder(developer, key, {"prompt_set": prompt_set}, ABSENT)
        return recorder

    async def upload_prompt(self, developer: Developer, key: str, prompt_name: str,
                            audio: bytes) -> str:
        """Store a WAV file as the recorder's prompt; returns its play key."""
        check_prompt_name(prompt_name)
        if len(audio) > MAX_PROMPT_BYTES:
            raise InvalidParameter("prompt_file", "prompt_file is larger than 10 MB")
        if len(audio) < 44 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
            raise InvalidParameter("prompt_file", "prompt_file must be a WAV file")
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            play_key = await store.prompt_play_key(conn, recorder.id, prompt_name)
            play_key = play_key or keys.new_play_key()
            path = prompt_path(self.data_dir, recorder.recorder_key, prompt_name)
            await asyncio.to_thread(write_private, path, audio)
            await store.upsert_prompt(conn, recorder.id, prompt_name, play_key, len(audio))
            return play_key

    async def prompt_play_key(self, developer: Developer, key: str, prompt_name: str) -> str:
        check_prompt_name(prompt_name)
        async with self.pool.acquire() as conn:
            recorder = await self._own_recorder(conn, developer, key)
            play_key = await store.prompt_play_key(conn, recorder.id, prompt_name)
        if play_key is None:
            raise NoAudio(f"prompt '{prompt_name}' has no uploaded audio; calls play it from "
                          f"the '{recorder.prompt_set}' prompt set")
        return play_key

    async def prompt_file(self, play_key: str) -> Path | None:
        async with self.pool.acquire() as conn:
            found = await store.prompt_by_play_key(conn, play_key)
        return None if found is None else prompt_path(self.data_dir, *found)

    async def reset_prompt(self, developer: Developer, key: str, prompt_name: str) -> None:
        """Back to the prompt set's default: the upload's row and file go (safe to repeat)."""
        check_prompt_name(prompt_name)
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            await store.delete_prompt(conn, recorder.id, prompt_name)
            prompt_path(self.data_dir, recorder.recorder_key, prompt_name).unlink(missing_ok=True)

    async def _set_recorder_password(self, values: dict[str, Any], password: str,
                                     generated: Generated) -> None:
        """The recorder password's hash, and that of its keypad digits (what a caller keys
        when the recorder asks for it on the phone)."""
        if is_random_password_request(password):
            password = keys.new_password()
            generated.passwords["recorder_password"] = password
        values["password_hash"] = await hash_password(password)
        digits = keypad_digits(password)
        values["phone_password_hash"] = None if digits is None else await hash_password(digits)

    async def _password_changes(self, values: Mapping[str, Any], generated: Generated,
                                recorder_key: str) -> dict[str, Any]:
        """The hashes of a list's or recording's new passwords; the access password also as
        its recorder-wide lookup digest (for searches, migration 0033)."""
        changes: dict[str, Any] = {}
        for name in PASSWORD_FIELDS:
            if name not in values:
                continue
            value = values[name]
            if value is not None and is_random_password_request(value):
                value = keys.new_password()
                generated.passwords[name] = value
            changes[f"{name}_hash"] = None if value is None else await hash_password(value)
            if name == "access_password":
                changes["access_lookup"] = (None if value is None
                                            else await lookup_digest(value, recorder_key))
        return changes

    async def _require(self, supplied: Supplied, row: Any, target: str, role: str) -> None:
        """The row's (a list's or a recording's) password for the role, checked against the
        value given for that object and role; failures count per object (core/throttle)."""
        stored = row[f"{role}_password_hash"]
        given = as_asset_passwords(supplied).of(target, role)
        if stored is None:
            return
        if given is None or not await self.throttle.verify(f"{target}:{row['id']}", stored,
                                                            given):
            raise AssetPasswordRequired(f"the {OBJECT_NAMES[target]}'s {role} password is "
                                        "required for this command")
