"""The console's forms: which recorder options the edit page shows (every one the API takes,
read back through the same input readers as /vr and /v1) and how a posted form becomes those
readers' parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.recorder.models import (
    AUDIO_FORMATS,
    CALLBACK_FORMATS,
    IDENTIFICATIONS,
    INITIATIONS,
    LOOKUP_MODES,
    STORAGES,
    UPLOAD_METHODS,
    Recorder,
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str  # text, number, choice, flag, secret
    options: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None
    clearable: bool = False  # an empty value clears it (else an empty value leaves it as is)
    hint: str = ""


RECORDER_FIELDS: tuple[tuple[str, tuple[Field, ...]], ...] = (
    ("General", (
        Field("name", "Name", "text"),
        Field("audio_format", "Audio format", "choice", AUDIO_FORMATS),
        Field("prompt_set", "Prompt set", "text", hint="lowercase letters, digits, - or _"),
        Field("password_required", "Recorder password required", "flag"),
        Field("recorder_password", "New recorder password", "secret",
              hint="empty leaves it; ??? makes a random one"),
    )),
    ("Callers", (
        Field("initiation", "Initiation", "choice", INITIATIONS,
              hint="call: a dedicated number, the caller starts the session"),
        Field("identification", "Identification", "choice", IDENTIFICATIONS),
        Field("lookup_mode", "Lookup mode", "choice", LOOKUP_MODES),
        Field("touchtone_prompt", "Ask for touchtone input", "flag"),
        Field("touchtone_length", "Touchtone length", "number", lo=1, hi=32, clearable=True),
        Field("pin_length", "PIN length", "number", lo=4, hi=10),
        Field("pin_ttl_seconds", "PIN lifetime (s)", "number", lo=60, hi=604800),
    )),
    ("Takes", (
        Field("max_take_seconds", "Longest take (s)", "number", lo=5, hi=3600),
        Field("silence_seconds", "Silence that ends a take (s)", "number", lo=0, hi=60,
              hint="0: silence never ends a take"),
        Field("min_take_seconds", "Shortest take kept on hang-up (s)", "number", lo=0, hi=60),
    )),
    ("Storage and retention", (
        Field("storage", "Storage", "choice", STORAGES),
        Field("upload_url", "Upload URL", "text", clearable=True,
              hint="{recorder_key} {list_key} {recording_key} {play_key} {take} {ext}"),
        Field("upload_method", "Upload method", "choice", UPLOAD_METHODS),
        Field("upload_auth_header", "Upload header", "secret",
              hint="Name: value, sent with each upload; empty leaves it"),
        Field("retention_days", "Keep audio for (days)", "number", lo=1, hi=36500,
              clearable=True, hint="empty: forever"),
        Field("link_ttl_seconds", "Audio links expire after (s)", "number", lo=60, hi=604800,
              clearable=True, hint="empty: plain links that do not expire"),
    )),
    ("Callbacks", (
        Field("callback_url", "Callback URL", "text", clearable=True),
        Field("callback_format", "Callback format", "choice", CALLBACK_FORMATS),
        Field("callback_secret", "New callback secret", "secret",
              hint="empty leaves it; ??? makes a random one"),
    )),
)

ALL_FIELDS = tuple(f for _, group in RECORDER_FIELDS for f in group)
LIST_FIELDS = (
    Field("name", "Name", "text"),
    Field("meta_data_1", "Meta data 1", "text"),
    Field("meta_data_2", "Meta data 2", "text"),
    Field("meta_data_3", "Meta data 3", "text"),
    Field("caller_id", "Caller id", "text"),
    Field("access_code", "Access code", "text"),
    Field("max_recordings", "Max recordings", "number", lo=0, hi=100000),
    Field("initial_recordings", "Empty recordings to add", "number", lo=0, hi=1000),
)
RECORDING_FIELDS = (
    Field("name", "Name", "text"),
    Field("meta_data_1", "Meta data 1", "text"),
    Field("meta_data_2", "Meta data 2", "text"),
    Field("meta_data_3", "Meta data 3", "text"),
    Field("sequence", "Position", "number", lo=1, hi=100000, hint="empty: at the end"),
)


def current(recorder: Recorder, name: str) -> Any:
    """What the edit form shows for a field (secrets are never shown)."""
    field = next(f for f in ALL_FIELDS if f.name == name)
    if field.kind == "secret":
        return ""
    value = getattr(recorder, name, None)
    if field.kind == "flag":
        return "true" if value else "false"
    return "" if value is None else str(value)


def recorder_params(form: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The form as the input readers' parameters: an empty box leaves its option as it is
    (or the default, when creating), except for options an empty value clears."""
    params: dict[str, Any] = {}
    for field in ALL_FIELDS:
        value = form.get(field.name)
        if not isinstance(value, str):
            continue
        value = value.strip()
        if value == "" and (creating or not field.clearable):
            continue
        params[field.name] = value
    return params


def plain_params(form: Mapping[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """A create form's non-empty values."""
    return {f.name: v.strip() for f in fields
            if isinstance(v := form.get(f.name), str) and v.strip()}
