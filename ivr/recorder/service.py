"""The recorder's operations, shared by /vr, /v1, the CLI and the phone flow. Each public
method is one transaction: it either does all of its writes or none. Rules that concern one
list (sequences, max_recordings, session locks) run with the list row locked FOR UPDATE."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ivr.core import keys
from ivr.core.db import Conn
from ivr.core.errors import InvalidParameter, NotFound, Unauthorized
from ivr.core.passwords import burn_time, hash_password, verify_password
from ivr.delivery import outbox
from ivr.delivery.outbox import DEFAULT_RETRY_FOR
from ivr.media.prompts import PROMPT_NAMES, prompt_path
from ivr.recorder import events, numbers, store
from ivr.recorder.errors import (
    AssetPasswordRequired,
    LimitReached,
    ListKeyInUse,
    MailNotConfigured,
    NoAudio,
    NoPhoneNumber,
    RecorderNotYours,
    RecordingKeyInUse,
    RecordingsLocked,
    SessionInUse,
    SignupClosed,
    UsernameTaken,
)
from ivr.recorder.inputs import AssetPasswords, as_asset_passwords
from ivr.recorder.models import (
    LIVE_SESSION_STATES,
    UPLOAD_PLACEHOLDERS,
    Developer,
    Generated,
    PhoneNumber,
    Recorder,
    Recording,
    RecordingList,
    Session,
    SessionView,
    TakeSummary,
    is_random_password_request,
    keypad_digits,
)
from ivr.recorder.params import ABSENT

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
MIN_PASSWORD = 8
MAX_PROMPT_BYTES = 10 * 1024 * 1024
PIN_ATTEMPTS = 50
PASSWORD_FIELDS = ("access_password", "update_password", "delete_password")
DELIVERY_STATES = ("pending", "delivered", "failed")
# What a protected command is given: AssetPasswords from /vr, one value from /v1, or None.
Supplied = AssetPasswords | str | None
_OBJECT_NAMES = {"list": "recording list", "recording": "recording"}


@dataclass(frozen=True, slots=True)
class Page:
    """Search results: at most MAX_SEARCH_RESULTS items."""

    items: tuple[Any, ...]


class RecorderService:
    def __init__(self, pool: asyncpg.Pool, data_dir: Path, *, open_signup: bool,
                 public_url: str = "", retry_for: float = DEFAULT_RETRY_FOR) -> None:
        self.pool = pool
        self.data_dir = data_dir
        self.open_signup = open_signup
        # Events carry recordings as the API shows them: links need the public URL.
        self.events = events.RecorderEvents.for_settings(data_dir, public_url, retry_for)

    async def _expire_due(self, conn: Conn) -> None:
        async with conn.transaction():
            await self.events.sessions(conn, await store.expire_due(conn),
                                       events.SESSION_EXPIRED)

    # --- developers -------------------------------------------------------------------------
    async def create_developer(self, username: str, password: str, *, email: str = "",
                               name: str = "", by_operator: bool = False) -> Developer:
        if not by_operator and not self.open_signup:
            raise SignupClosed("sign-up is closed on this server; ask the operator for an account")
        if not _USERNAME.match(username):
            raise InvalidParameter("username", "username must be 3 to 64 letters, digits, "
                                   "'.', '_', '@' or '-', starting with a letter or digit")
        _check_new_password("password", password)
        password_hash = await hash_password(password)
        try:
            async with self.pool.acquire() as conn:
                return await store.insert_developer(conn, username, password_hash, email, name)
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(f"username '{username}' is not available") from None

    async def authenticate(self, username: str, password: str) -> Developer:
        async with self.pool.acquire() as conn:
            found = await store.developer_credentials(conn, username)
        if found is None:
            await burn_time(password)
            raise Unauthorized("authentication failed: unknown username or wrong password")
        developer, password_hash = found
        if not await verify_password(password_hash, password):
            raise Unauthorized("authentication failed: unknown username or wrong password")
        return developer

    async def authenticate_token(self, token: str) -> Developer:
        async with self.pool.acquire() as conn:
            developer = await store.developer_by_token(conn, keys.token_digest(token))
        if developer is None:
            raise Unauthorized("authentication failed: unknown token")
        return developer

    async def create_token(self, developer: Developer) -> str:
        token = keys.new_token()
        async with self.pool.acquire() as conn:
            await store.insert_token(conn, developer.id, keys.token_digest(token))
        return token

    async def set_developer(self, developer: Developer, changes: Mapping[str, Any]) -> Developer:
        changes = {k: ("" if v is None else v) for k, v in changes.items()}
        if not changes:
            return developer
        async with self.pool.acquire() as conn:
            return await store.update_developer(conn, developer.id, changes)

    async def change_password(self, developer: Developer, new_password: str) -> None:
        _check_new_password("new_password", new_password)
        new_hash = await hash_password(new_password)
        async with self.pool.acquire() as conn:
            await store.update_developer(conn, developer.id, {"password_hash": new_hash})

    async def delete_developer(self, developer: Developer) -> None:
        async with self.pool.acquire() as conn:
            await store.delete_developer(conn, developer.id)

    async def email_password(self, username: str) -> None:
        # Passwords are stored as Argon2id hashes and cannot be mailed; a reset link would need
        # a mail relay, and this server has none configured.
        raise MailNotConfigured(
            "mail is not configured on this server, so no password e-mail can be sent; "
            "ask the operator to set a new password")

    # --- phone numbers (operator) -------------------------------------------------------------
    async def add_number(self, number: str, display: str | None, country: str,
                         key: str | None) -> PhoneNumber:
        return await numbers.Numbers(self.pool).add(number, display, country, key)

    async def list_numbers(self) -> list[tuple[PhoneNumber, int, bool]]:
        async with self.pool.acquire() as conn:
            return await store.all_numbers(conn)

    # --- voice recorders ----------------------------------------------------------------------
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
        values = _recorder_fields(fields)
        _callback_secret(values, generated, creating=True)
        if password is not None:
            await self._set_recorder_password(values, password, generated)
        if values.get("password_required"):
            if "password_hash" not in values:
                raise InvalidParameter("recorder_password",
                                       "password_required needs a recorder_password")
            _keyable(values.get("phone_password_hash"))
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                async with conn.transaction():
                    recorder = await store.insert_recorder(
                        conn, developer.id, key or keys.new_key(), values)
            except asyncpg.UniqueViolationError:
                raise InvalidParameter("voice_recorder_key",
                                       f"voice recorder key '{key}' is already in use") from None
            except asyncpg.CheckViolationError as exc:
                raise _check_error(exc) from None
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
        values = _recorder_fields(fields)
        _callback_secret(values, generated, creating=False)
        if isinstance(password, str):
            await self._set_recorder_password(values, password, generated)
        elif password is None:
            values["password_hash"] = values["phone_password_hash"] = None
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            if values.get("password_required", recorder.password_required) and (
                    "password_hash" in values or not recorder.password_required):
                # Callers must be able to key the password the recorder will ask them for.
                _keyable(values["phone_password_hash"] if "password_hash" in values
                         else await store.recorder_phone_password_hash(conn, recorder.id))
            if values:
                try:
                    async with conn.transaction():
                        await store.update_recorder(conn, recorder.id, values)
                except asyncpg.CheckViolationError as exc:
                    raise _check_error(exc) from None
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
        _check_prompt_name(prompt_name)
        if len(audio) > MAX_PROMPT_BYTES:
            raise InvalidParameter("prompt_file", "prompt_file is larger than 10 MB")
        if len(audio) < 44 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
            raise InvalidParameter("prompt_file", "prompt_file must be a WAV file")
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            play_key = await store.prompt_play_key(conn, recorder.id, prompt_name)
            play_key = play_key or keys.new_play_key()
            path = prompt_path(self.data_dir, recorder.recorder_key, prompt_name)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(audio)
            os.replace(partial, path)
            await store.upsert_prompt(conn, recorder.id, prompt_name, play_key, len(audio))
            return play_key

    async def prompt_play_key(self, developer: Developer, key: str, prompt_name: str) -> str:
        _check_prompt_name(prompt_name)
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
        _check_prompt_name(prompt_name)
        async with self.pool.acquire() as conn, conn.transaction():
            recorder = await self._own_recorder(conn, developer, key, for_update=True)
            await store.delete_prompt(conn, recorder.id, prompt_name)
            prompt_path(self.data_dir, recorder.recorder_key, prompt_name).unlink(missing_ok=True)

    # --- passwords on lists and recordings ----------------------------------------------------
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

    async def _new_password_hash(self, name: str, value: str, generated: Generated) -> str:
        if is_random_password_request(value):
            value = keys.new_password()
            generated.passwords[name] = value
        return await hash_password(value)

    async def _password_changes(self, values: Mapping[str, Any],
                                generated: Generated) -> dict[str, str | None]:
        changes: dict[str, str | None] = {}
        for name in PASSWORD_FIELDS:
            if name not in values:
                continue
            value = values[name]
            changes[f"{name}_hash"] = (
                None if value is None else await self._new_password_hash(name, value, generated))
        return changes

    @staticmethod
    async def _require(supplied: Supplied, row: Any, target: str, role: str) -> None:
        """The row's (a list's or a recording's) password for the role, checked against the
        value given for that object and role."""
        if not await _allowed(row[f"{role}_password_hash"],
                              as_asset_passwords(supplied).of(target, role)):
            raise AssetPasswordRequired(f"the {_OBJECT_NAMES[target]}'s {role} password is "
                                        "required for this command")

    # --- recording lists ----------------------------------------------------------------------
    async def _list(self, conn: Conn, developer: Developer, recorder_key: str,
                    list_key: str, *, for_update: bool = False) -> tuple[Recorder, Any]:
        recorder = await self._own_recorder(conn, developer, recorder_key)
        row = await store.list_row(conn, recorder.id, list_key, for_update=for_update)
        if row is None:
            raise NotFound(f"recording list '{list_key}' not found")
        return recorder, row

    async def create_list(self, developer: Developer, recorder_key: str, list_key: str | None,
                          values: Mapping[str, Any],
                          initial_recordings: int) -> tuple[RecordingList, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated))
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
            visible = [r["id"] for r in rows
                       if await _allowed(r["access_password_hash"], supplied)]
            return Page(tuple(await store.touch_lists(conn, visible)))

    async def set_list(self, developer: Developer, recorder_key: str, list_key: str,
                       values: Mapping[str, Any],
                       password: Supplied) -> tuple[RecordingList, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated))
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

    # --- recordings ---------------------------------------------------------------------------
    async def create_recording(self, developer: Developer, recorder_key: str, list_key: str,
                               recording_key: str | None, values: Mapping[str, Any],
                               sequence: int | None, keep_consecutive: bool,
                               password: Supplied) -> tuple[Recording, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated))
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
            visible = [r["id"] for r in rows
                       if await _allowed(r["access_password_hash"], supplied)]
            return Page(tuple(await store.touch_recordings(conn, visible)))

    async def set_recording(self, developer: Developer, recorder_key: str, list_key: str,
                            recording_key: str, values: Mapping[str, Any],
                            sequence: int | None, keep_consecutive: bool,
                            password: Supplied) -> tuple[Recording, Generated]:
        generated = Generated()
        fields = {k: v for k, v in values.items() if k not in PASSWORD_FIELDS}
        fields.update(await self._password_changes(values, generated))
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

    # --- recording sessions -------------------------------------------------------------------
    async def start_session(self, developer: Developer, recorder_key: str, list_key: str,
                            recording_keys: list[str], caller_id: str | None, overwrite: bool,
                            password: Supplied, callback_url: str | None = None) -> SessionView:
        async with self.pool.acquire() as conn:
            await self._expire_due(conn)
            async with conn.transaction():
                recorder, lrow = await self._list(conn, developer, recorder_key, list_key,
                                                  for_update=True)
                await self._require(password, lrow, "list", "access")
                await self._require(password, lrow, "list", "update")
                if not recorder.phone_numbers:
                    raise NoPhoneNumber(f"voice recorder '{recorder_key}' has no phone number")
                rows = {r["recording_key"]: r for r in
                        await store.recordings_of_list(conn, lrow["id"])}
                missing = [k for k in recording_keys if k not in rows]
                if missing:
                    raise NotFound(f"no recording {', '.join(missing)} in list '{list_key}'")
                wanted = [rows[k] for k in recording_keys]
                for row in wanted:
                    await self._require(password, row, "recording", "update")
                number_ids = [n.id for n in recorder.phone_numbers]
                if caller_id is not None:
                    await self._clear_caller_sessions(conn, recorder, number_ids, caller_id,
                                                      overwrite)
                locked = await store.locked_recording_ids(conn, [r["id"] for r in wanted])
                included = [r["id"] for r in wanted if r["id"] not in locked]
                excluded = [r["id"] for r in wanted if r["id"] in locked]
                if not included:
                    raise RecordingsLocked(
                        "every requested recording is being voiced in another live recording "
                        "session", [await store.recording_by_id(conn, i) for i in excluded])
                session_id, pin = await self._insert_session(conn, recorder, lrow["id"],
                                                             number_ids, caller_id, callback_url)
                await store.add_session_recordings(conn, session_id, included)
                await store.mark_rerecord(conn, included)
                await self.events.session(conn, session_id, events.SESSION_CREATED)
                return SessionView(
                    session=await store.session_by_id(conn, session_id), pin=pin,
                    phone_numbers=recorder.phone_numbers,
                    recordings=tuple(await store.touch_recordings(conn, included)),
                    excluded=tuple(await store.touch_recordings(conn, excluded)),
                )

    async def _clear_caller_sessions(self, conn: Conn, recorder: Recorder,
                                     number_ids: list[int], caller_id: str,
                                     overwrite: bool) -> None:
        for session_id in await store.live_sessions_with_pin(conn, number_ids, caller_id):
            other = await store.session_by_id(conn, session_id, for_update=True)
            if not overwrite or other.recorder_id != recorder.id:
                raise SessionInUse(f"a live recording session is keyed to caller id {caller_id}"
                                   + ("; overwrite=true replaces it" if not overwrite else
                                      " on another voice recorder"))
            await store.set_session_state(conn, session_id, "expired")
            await self.events.session(conn, session_id, events.SESSION_EXPIRED)

    async def _insert_session(self, conn: Conn, recorder: Recorder, list_id: int,
                              number_ids: list[int], caller_id: str | None,
                              callback_url: str | None) -> tuple[int, str]:
        for _ in range(PIN_ATTEMPTS):
            pin = caller_id or keys.new_pin(recorder.pin_length)
            try:
                async with conn.transaction():
                    session_id = await store.insert_session(
                        conn, keys.new_key(), recorder.id, list_id, pin, caller_id,
                        recorder.pin_ttl_seconds, callback_url)
                    for number_id in number_ids:
                        await store.insert_pin(conn, session_id, number_id, pin)
                    return session_id, pin
            except asyncpg.UniqueViolationError:
                if caller_id is not None:
                    raise SessionInUse(f"a live recording session is keyed to caller id "
                                       f"{caller_id}") from None
        raise SessionInUse("no free PIN on this recorder's numbers; try again later")

    async def _own_session(self, conn: Conn, developer: Developer, key: str, *,
                           for_update: bool = False) -> Session:
        session = await store.session_by_key(conn, key, for_update=for_update)
        if session is None:
            raise NotFound(f"recording session '{key}' not found")
        recorder = await store.recorder_by_id(conn, session.recorder_id)
        if recorder.developer_id != developer.id:
            raise RecorderNotYours(f"recording session '{key}' belongs to another developer")
        return session

    async def _view(self, conn: Conn, session: Session) -> SessionView:
        recorder = await store.recorder_by_id(conn, session.recorder_id)
        current = None
        if session.state == "recording" and session.current_recording_id is not None:
            current = await store.recording_by_id(conn, session.current_recording_id)
        return SessionView(session, None, recorder.phone_numbers,
                           tuple(await store.session_recordings(conn, session.id)),
                           current_recording=current)

    async def session_status(self, developer: Developer, session_key: str) -> SessionView:
        async with self.pool.acquire() as conn:
            session = await self._own_session(conn, developer, session_key)
            # Status is polled: it writes only when this very session is overdue (the periodic
            # sweep would mark it a little later; the answer must not wait for that).
            if session.state == "created" and session.expires_at <= datetime.now(UTC):
                await self._expire_due(conn)
                session = await store.session_by_id(conn, session.id)
            return await self._view(conn, session)

    async def expire_session(self, developer: Developer, session_key: str) -> SessionView:
        """Expire a live session and unlock its recordings; a session that already ended or
        expired is left as it is (the command is safe to repeat)."""
        async with self.pool.acquire() as conn:
            await self._expire_due(conn)
            async with conn.transaction():
                session = await self._own_session(conn, developer, session_key, for_update=True)
                if session.state in LIVE_SESSION_STATES:
                    await store.set_session_state(conn, session.id, "expired")
                    await self.events.session(conn, session.id, events.SESSION_EXPIRED)
                return await self._view(conn, await store.session_by_id(conn, session.id))

    # --- deliveries (the outbox) ---------------------------------------------------------------
    async def deliveries(self, developer: Developer, recorder_key: str, state: str | None,
                         limit: int) -> list[dict[str, Any]]:
        """The recorder's callbacks and uploads, newest first: pending, delivered or failed,
        with attempts and the last error."""
        if state is not None and state not in DELIVERY_STATES:
            raise InvalidParameter("state", f"state must be one of {', '.join(DELIVERY_STATES)}")
        async with self.pool.acquire() as conn:
            recorder = await self._own_recorder(conn, developer, recorder_key)
            return await outbox.of_owner(conn, f"recorder:{recorder.id}", state, limit)

    async def retry_delivery(self, developer: Developer, recorder_key: str,
                             event_id: str) -> None:
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            raise InvalidParameter("event_id", "event_id must be a UUID") from None
        async with self.pool.acquire() as conn:
            recorder = await self._own_recorder(conn, developer, recorder_key)
            if not await outbox.retry(conn, f"recorder:{recorder.id}", parsed,
                                      self.events.retry_for):
                raise NotFound(f"no failed delivery {event_id} on voice recorder "
                               f"'{recorder_key}'")


async def _allowed(stored: str | None, supplied: str | None) -> bool:
    return stored is None or (supplied is not None and await verify_password(stored, supplied))


def _check_new_password(param: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(param, f"{param} must be at least {MIN_PASSWORD} characters")


def _check_prompt_name(name: str) -> None:
    if name not in PROMPT_NAMES:
        raise InvalidParameter("prompt_name",
                               f"prompt_name must be one of {', '.join(PROMPT_NAMES)}")


def _keyable(phone_password_hash: str | None) -> None:
    if phone_password_hash is None:
        raise InvalidParameter(
            "recorder_password", "password_required asks callers for the recorder password on "
            "the phone: it must be letters and digits only (letters key as on a phone's keypad)")


def _recorder_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Hashes are made here from passwords, never taken from a request.
    values = {k: v for k, v in fields.items()
              if k in store.RECORDER_FIELDS and not k.endswith("_hash")}
    _check_delivery_options(values)
    return values


def _check_error(exc: asyncpg.CheckViolationError) -> InvalidParameter:
    # The schema's cross-field rules, told in the parameters' words.
    name = getattr(exc, "constraint_name", "") or ""
    if name == "upload_url_required":
        return InvalidParameter("upload_url", "storage=upload needs an upload_url")
    if name == "touchtone_length_required":
        return InvalidParameter("touchtone_length", "touchtone_prompt needs a touchtone_length")
    if name == "recorder_password_required":
        return InvalidParameter("recorder_password", "password_required needs a recorder_password")
    return InvalidParameter("voice_recorder_key", f"invalid voice recorder options: {exc}")




MIN_CALLBACK_SECRET = 16


def _callback_secret(values: dict[str, Any], generated: Generated, *, creating: bool) -> None:
    """A new recorder gets a random callback secret unless one is given; `???` asks for a new
    random one. Either way it is shown once, in the reply that set it."""
    if "callback_secret" not in values and not creating:
        return
    given = values.get("callback_secret")
    if given is None and "callback_secret" in values:
        raise InvalidParameter("callback_secret", "callback_secret cannot be cleared; ??? sets "
                               "a new random one")
    if given is None or is_random_password_request(given):
        values["callback_secret"] = keys.new_token()
        generated.passwords["callback_secret"] = values["callback_secret"]
        return
    if len(given) < MIN_CALLBACK_SECRET or any(c.isspace() for c in given):
        raise InvalidParameter("callback_secret", f"callback_secret must be at least "
                               f"{MIN_CALLBACK_SECRET} characters without spaces, or ??? for a "
                               "random one")


def _check_delivery_options(values: Mapping[str, Any]) -> None:
    """Callbacks and uploads go over HTTP(S); an upload_url template names known keys only."""
    for name in ("callback_url", "upload_url"):
        url = values.get(name)
        if isinstance(url, str) and not re.match(r"^https?://[^\s/]+", url):
            raise InvalidParameter(name, f"{name} must be an http(s) URL")
    template = values.get("upload_url")
    if isinstance(template, str):
        unknown = [n for n in events.template_names(template) if n not in UPLOAD_PLACEHOLDERS]
        if unknown:
            raise InvalidParameter("upload_url", f"upload_url names unknown placeholders "
                                   f"{', '.join('{' + n + '}' for n in unknown)}; known: "
                                   f"{', '.join('{' + n + '}' for n in UPLOAD_PLACEHOLDERS)}")
    header = values.get("upload_auth_header")
    if isinstance(header, str) and not re.fullmatch(r"[A-Za-z0-9-]{1,64}: [^\r\n]{1,4000}",
                                                     header):
        raise InvalidParameter("upload_auth_header",
                               "upload_auth_header must look like 'Authorization: Bearer ...'")
