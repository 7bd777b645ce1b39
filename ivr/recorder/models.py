"""The recorder's entities and states: plain data, no web and no database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

RecordingState = Literal["unrecorded", "recording", "recorded", "rerecord"]
SessionState = Literal["created", "called", "recording", "ended", "expired"]
LIVE_SESSION_STATES = ("created", "called", "recording")

AUDIO_FORMATS = ("wav", "mp3", "both")
STORAGES = ("local", "upload")
CALLBACK_FORMATS = ("xml", "json")
UPLOAD_METHODS = ("put", "post")
# What an upload_url template may name: each is filled in per file.
UPLOAD_PLACEHOLDERS = ("recorder_key", "list_key", "recording_key", "play_key", "take", "ext")
INITIATIONS = ("api", "call")
IDENTIFICATIONS = ("none", "caller_id", "access_code", "both")
LOOKUP_MODES = ("lookup", "lookup_else_create", "create")
MAX_SEARCH_RESULTS = 100

# StartRecordingSession: "delimited by a comma, space, colon, semicolon, vertical bar, or
# forward slash".
_KEY_DELIMITERS = re.compile(r"[,\s:;|/]+")


def split_recording_keys(value: str) -> list[str]:
    """Keys in the order given, duplicates dropped."""
    seen: dict[str, None] = {}
    for key in _KEY_DELIMITERS.split(value.strip()):
        if key:
            seen.setdefault(key, None)
    return list(seen)


_KEYPAD = {c: d for d, letters in (("2", "abc"), ("3", "def"), ("4", "ghi"), ("5", "jkl"),
                                   ("6", "mno"), ("7", "pqrs"), ("8", "tuv"), ("9", "wxyz"))
           for c in letters}


def keypad_digits(password: str) -> str | None:
    """The password as a caller keys it: digits as they are, letters as their keypad digit
    (ABC=2 ... WXYZ=9). None when a character has no key (it could never be entered)."""
    out = []
    for c in password.lower():
        if c.isdigit() and c.isascii():
            out.append(c)
        elif c in _KEYPAD:
            out.append(_KEYPAD[c])
        else:
            return None
    return "".join(out) or None


def is_random_password_request(value: str) -> bool:
    """`???` (the parameter tables) and `?????` (the passwords note) both ask for a random
    password; so does any run of three or more question marks."""
    return len(value) >= 3 and set(value) == {"?"}


# A processed take's audio as recorded, beside it (take-N.original.wav).
ORIGINAL = "original.wav"


def take_path(data_dir: Path, play_key: str, take_number: int, ext: str) -> Path:
    """Where a take's audio lives in local storage. Every take keeps its own files, so
    accepting one never overwrites another; a recording serves its accepted take."""
    return data_dir / "recordings" / play_key / f"take-{take_number}.{ext}"


@dataclass(frozen=True, slots=True)
class Developer:
    id: int
    username: str
    email: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A developer's bearer token as listed (the token itself is shown once, when made)."""

    id: int
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    id: int
    phone_number_key: str
    number: str
    display_number: str
    country: str


@dataclass(frozen=True, slots=True)
class Recorder:
    id: int
    developer_id: int
    recorder_key: str
    name: str
    audio_format: str
    storage: str
    upload_url: str | None
    retention_days: int | None
    password_required: bool
    prompt_set: str
    initiation: str
    identification: str
    lookup_mode: str
    touchtone_prompt: bool
    touchtone_length: int | None
    pin_length: int
    pin_ttl_seconds: int
    max_take_seconds: int
    silence_seconds: int
    min_take_seconds: int
    created_at: datetime
    updated_at: datetime
    phone_numbers: tuple[PhoneNumber, ...] = ()
    prompts: tuple[str, ...] = ()
    # Delivery (ivr/delivery): where and how events and uploads go; links that expire.
    callback_url: str | None = None
    callback_format: str = "xml"
    upload_method: str = "put"
    upload_authenticated: bool = False
    link_ttl_seconds: int | None = None
    # Take quality (ivr/media/quality.py): the limits of an ok take; with quality_check the
    # caller hears what is wrong with one that is not, then may keep it (quality_keep_anyway)
    # or records it again.
    quality_check: bool = True
    quality_keep_anyway: bool = True
    quality_min_speech_seconds: float = 0.3
    quality_min_loudness_lufs: float = -40.0
    quality_max_clipped_ratio: float = 0.01
    quality_min_snr_db: float = 12.0
    # Kept takes processed for listening (quality.process): the ends' silence trimmed, the
    # loudness brought to normalize_lufs (None: left as recorded); the original kept beside.
    trim_silence: bool = True
    normalize_lufs: float | None = -16.0


@dataclass(frozen=True, slots=True)
class RecordingList:
    id: int
    recorder_id: int
    recorder_key: str
    list_key: str
    name: str | None
    meta_data_1: str | None
    meta_data_2: str | None
    meta_data_3: str | None
    caller_id: str | None
    access_code: str | None
    access_protected: bool
    update_protected: bool
    delete_protected: bool
    max_recordings: int | None
    recording_count: int
    created_at: datetime
    updated_at: datetime
    accessed_at: datetime


@dataclass(frozen=True, slots=True)
class Recording:
    id: int
    list_id: int
    list_key: str
    recording_key: str
    sequence: int
    name: str | None
    meta_data_1: str | None
    meta_data_2: str | None
    meta_data_3: str | None
    state: RecordingState
    play_key: str
    recording_length: int
    has_wav_file: bool
    has_mp3_file: bool
    caller_id: str | None
    touchtone_input: str | None
    access_code: str | None
    access_protected: bool
    update_protected: bool
    delete_protected: bool
    is_in_session: bool
    created_at: datetime
    updated_at: datetime
    accessed_at: datetime
    accepted_take: int | None = None  # the take number whose audio the recording serves
    link_ttl_seconds: int | None = None  # its recorder's: wav_url / mp3_url are signed links
    upload_state: str | None = None  # the accepted take's, when the recorder uploads
    # The accepted take's: kept without the caller's confirmation ("1"), because they hung up
    # mid-take or the engine died and its take was recovered from Asterisk's spool.
    kept_on_hangup: bool = False
    audio_deleted_at: datetime | None = None  # the retention period deleted its audio
    quality: dict[str, Any] | None = None  # the accepted take's figures and verdict


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    session_key: str
    recorder_id: int
    recorder_key: str
    list_id: int
    list_key: str
    caller_id: str | None
    state: SessionState
    current_recording_id: int | None
    created_at: datetime
    expires_at: datetime
    called_at: datetime | None
    ended_at: datetime | None
    callback_url: str | None = None  # the session's own; else the recorder's applies
    # Set when the call voicing the session failed on our side (core.errors.failure_of).
    failure_code: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session with what StartRecordingSession / GetSessionStatus report about it."""

    session: Session
    pin: str | None  # only right after StartRecordingSession; never readable again
    phone_numbers: tuple[PhoneNumber, ...]
    recordings: tuple[Recording, ...]
    excluded: tuple[Recording, ...] = ()
    current_recording: Recording | None = None


@dataclass(slots=True)
class Generated:
    """Random passwords made for `???` values: returned once, in the answer that made them."""

    passwords: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TakeSummary:
    """One take of a recording as the console lists it (the takes table's history)."""

    take_number: int
    status: str
    duration_ms: int
    kept_on_hangup: bool
    created_at: datetime
    quality: dict[str, Any] | None = None  # its figures and verdict (ivr/media/quality.py)
