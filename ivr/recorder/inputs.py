"""What each operation accepts, read from either face's parameters. /vr and /v1 use the same
names (the MyVox ones), so one reader serves both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.core.errors import InvalidParameter, MissingParameter
from ivr.recorder.models import (
    AUDIO_FORMATS,
    CALLBACK_FORMATS,
    IDENTIFICATIONS,
    INITIATIONS,
    LOOKUP_MODES,
    STORAGES,
    UPLOAD_METHODS,
    split_recording_keys,
)
from ivr.recorder.params import ABSENT, Params, present

LIST_SEARCH_FIELDS = ("meta_data_1", "meta_data_2", "meta_data_3", "caller_id", "access_code")
RECORDING_SEARCH_FIELDS = ("meta_data_1", "meta_data_2", "meta_data_3", "caller_id",
                           "access_code", "touchtone_input")


ROLES = ("access", "update", "delete")
# A recorder's limits for an ok take (ivr/media/quality.py), and the values each may take.
QUALITY_LIMITS = {
    "quality_min_speech_seconds": (0.0, 60.0),
    "quality_min_loudness_lufs": (-70.0, 0.0),
    "quality_max_clipped_ratio": (0.0, 1.0),
    "quality_min_snr_db": (0.0, 60.0),
}


@dataclass(frozen=True, slots=True)
class AssetPasswords:
    """The passwords a request gives for protected lists and recordings. Each check takes the
    value meant for it: the object's and role's own (`list_update`), else the role's
    (`update`), else the generic one. A named value that is wrong is not rescued by the
    generic one: the client said which password it meant."""

    generic: str | None = None
    named: Mapping[str, str] = field(default_factory=dict)

    def of(self, target: str, role: str) -> str | None:
        for name in (f"{target}_{role}", role):
            if name in self.named:
                return self.named[name]
        return self.generic


def as_asset_passwords(value: AssetPasswords | str | None) -> AssetPasswords:
    """A single value (/v1's X-Asset-Password, the console's None) is the generic one."""
    return value if isinstance(value, AssetPasswords) else AssetPasswords(value)


def asset_passwords(p: Params, generic: str | None, *, role_names: bool) -> AssetPasswords:
    """`list_access_password` .. `recording_delete_password`, and where the command does not
    take them as the object's new passwords (role_names), `access_password` ..
    `delete_password`. An empty value counts as not given."""
    names = [f"{target}_{role}" for target in ("list", "recording") for role in ROLES]
    named: dict[str, str] = {}
    for name in names + (list(ROLES) if role_names else []):
        value = p.text(f"{name}_password", max_len=200)
        if isinstance(value, str):
            named[name] = value
    return AssetPasswords(generic, named)


def _passwords(p: Params) -> dict[str, Any]:
    return present({name: p.text(name, max_len=200)
                    for name in ("access_password", "update_password", "delete_password")})


def list_values(p: Params) -> dict[str, Any]:
    values = present({
        "name": p.text("name", max_len=200),
        "meta_data_1": p.text("meta_data_1"),
        "meta_data_2": p.text("meta_data_2"),
        "meta_data_3": p.text("meta_data_3"),
        "caller_id": p.phone("caller_id"),
        "access_code": p.digits("access_code"),
        "max_recordings": p.integer("max_recordings", 0, 100_000),
    })
    values.update(_passwords(p))
    return values


def recording_values(p: Params, *, creating: bool) -> dict[str, Any]:
    values = present({
        "name": p.text("name", max_len=200),
        "meta_data_1": p.text("meta_data_1"),
        "meta_data_2": p.text("meta_data_2"),
        "meta_data_3": p.text("meta_data_3"),
    })
    if not creating:
        # SetRecording also takes what the caller supplied and the recording's passwords.
        values.update(present({
            "caller_id": p.phone("caller_id"),
            "touchtone_input": p.digits("touchtone_input", extra="*#"),
        }))
        values.update(_passwords(p))
    return values


def sequence(p: Params) -> int | None:
    value = p.integer("sequence", 1, 100_000)
    return None if value is ABSENT else value


def initial_recordings(p: Params) -> int:
    value = p.integer("initial_recordings", 0, 1000)
    return 0 if value in (ABSENT, None) else int(value)


def filters(p: Params, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        value = p.text(name)
        if isinstance(value, str):
            # Digits fields may hold '%' wildcards, so they are checked loosely here.
            if name in ("caller_id", "access_code", "touchtone_input") and not set(value) <= set(
                    "0123456789+*#%"):
                raise InvalidParameter(name, f"parameter '{name}' must be digits and '%'")
            found[name] = value
    return found


def recording_keys(p: Params) -> list[str]:
    raw = p.raw("recording_keys")
    if isinstance(raw, list):
        raw = ",".join(str(k) for k in raw)
    if raw is ABSENT or raw is None or not str(raw).strip():
        raise MissingParameter("recording_keys")
    found = split_recording_keys(str(raw))
    for key in found:
        if not all(c.isalnum() or c in "-_" for c in key) or len(key) > 64:
            raise InvalidParameter("recording_keys", f"'{key}' is not a recording key")
    return found


def callback_url(p: Params) -> str | None:
    """StartRecordingSession's own callback URL (the recorder's is used without one)."""
    value = p.url("callback_url")
    if isinstance(value, str) and not value.startswith(("http://", "https://")):
        raise InvalidParameter("callback_url", "parameter 'callback_url' must be an http(s) URL")
    return value if isinstance(value, str) else None


def caller_id(p: Params) -> str | None:
    value = p.phone("caller_id")
    return value if isinstance(value, str) else None


def recorder_values(p: Params) -> dict[str, Any]:
    values = present({
        "name": p.text("name", max_len=200),
        "audio_format": p.choice("audio_format", AUDIO_FORMATS),
        "storage": p.choice("storage", STORAGES),
        "upload_url": p.url("upload_url"),
        "retention_days": p.integer("retention_days", 1, 36500),
        "prompt_set": p.text("prompt_set", max_len=32),
        "initiation": p.choice("initiation", INITIATIONS),
        "identification": p.choice("identification", IDENTIFICATIONS),
        "lookup_mode": p.choice("lookup_mode", LOOKUP_MODES),
        "touchtone_length": p.integer("touchtone_length", 1, 32),
        "pin_length": p.integer("pin_length", 4, 10),
        "pin_ttl_seconds": p.integer("pin_ttl_seconds", 60, 604800),
        "max_take_seconds": p.integer("max_take_seconds", 5, 3600),
        "silence_seconds": p.integer("silence_seconds", 0, 60),
        "min_take_seconds": p.integer("min_take_seconds", 0, 60),
        "callback_url": p.url("callback_url"),
        "callback_secret": p.text("callback_secret", max_len=200),
        "callback_format": p.choice("callback_format", CALLBACK_FORMATS),
        "upload_method": p.choice("upload_method", UPLOAD_METHODS),
        "upload_auth_header": p.text("upload_auth_header", max_len=4100),
        "link_ttl_seconds": p.integer("link_ttl_seconds", 60, 604800),
        **{name: p.decimal(name, lo, hi) for name, (lo, hi) in QUALITY_LIMITS.items()},
        "normalize_lufs": p.decimal("normalize_lufs", -40.0, -6.0),
    })
    for flag in ("password_required", "touchtone_prompt", "quality_check",
                 "quality_keep_anyway", "trim_silence"):
        if p.given(flag):
            values[flag] = p.boolean(flag, False)
    for name in ("audio_format", "storage", "initiation", "identification", "lookup_mode",
                 "pin_length", "pin_ttl_seconds", "prompt_set", "max_take_seconds",
                 "silence_seconds", "min_take_seconds", "callback_format", "upload_method",
                 *QUALITY_LIMITS):
        if values.get(name, "") is None:
            raise InvalidParameter(name, f"parameter '{name}' cannot be cleared")
    prompt_set = values.get("prompt_set")
    if prompt_set is not None and not all(c.islower() or c.isdigit() or c in "_-"
                                          for c in prompt_set):
        raise InvalidParameter("prompt_set", "prompt_set must be lowercase letters, digits, "
                               "'-' or '_'")
    return values
