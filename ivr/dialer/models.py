"""What the dialer stores and hands to hooks: accounts, jobs, calls and their content."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

NUMBER_RE = re.compile(r"^[0-9]{7,15}$")
AMD_MODES = ("off", "after_beep", "skip_machine")
# Final outcomes; busy and no_answer are retried while attempts remain.
RETRYABLE = ("busy", "no_answer")


@dataclass(frozen=True, slots=True)
class Content:
    """What a call says: synthesized text, or an audio file. `audio` is the content digest of
    an 8 kHz WAV the dialer keeps (`Content.audio(path)` converts at job creation)."""

    text: str | None = None
    voice: str = "male"  # "male" | "female"
    language: str = "en-US"
    audio: str | None = None  # digest, once stored
    source: Path | None = None  # a file to convert and store at job creation

    @classmethod
    def tts(cls, text: str, voice: str = "male", language: str = "en-US") -> Content:
        return cls(text=text, voice=voice, language=language)

    @classmethod
    def audio_file(cls, path: Path) -> Content:
        return cls(source=Path(path))

    @property
    def kind(self) -> str:
        return "tts" if self.text is not None else "audio"

    def as_json(self) -> dict[str, Any]:
        if self.text is not None:
            return {"tts": self.text, "voice": self.voice, "language": self.language}
        return {"audio": self.audio}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        if "tts" in data:
            return cls(text=data["tts"], voice=data.get("voice", "male"),
                       language=data.get("language", "en-US"))
        return cls(audio=data["audio"])


@dataclass(frozen=True, slots=True)
class Destination:
    number: str
    custom_id: str | None = None
    content: Content | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None  # a scheduled call: not dialled before this


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: str
    content: Content
    destinations: list[Destination]
    sender_id: str | None = None
    callback_url: str | None = None
    enable_menu_response: bool = False
    amd: str = "off"
    max_attempts: int = 1
    retry_delay: float = 60.0
    ring_timeout: int = 30
    client_job_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Account:
    pk: int
    account_id: str
    name: str
    webhook_secret: str
    timezone: str
    hours_from: int
    hours_until: int
    max_destinations: int
    test_number: str | None = None  # a test account calls this number only


@dataclass(frozen=True, slots=True)
class Job:
    id: uuid.UUID
    kind: str
    account: Account
    client_job_id: str | None
    state: str
    content: Content
    sender_id: str | None
    callback_url: str | None
    enable_menu_response: bool
    amd: str
    max_attempts: int
    retry_delay: float
    ring_timeout: int
    meta: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


@dataclass(slots=True)
class CallRecord:
    id: int
    job_id: uuid.UUID
    message_id: str
    custom_id: str | None
    number: str
    content: Content | None
    meta: dict[str, Any]
    state: str
    attempts: int
    channel_id: str | None
    started_at: datetime | None
    ring_at: datetime | None
    answer_at: datetime | None
    hang_at: datetime | None
    outcome: str | None
    cause: int | None
    cause_name: str | None
    keypress: str | None
    amd: str | None
    duration: int
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedCall:
    message_id: str
    number: str
    custom_id: str | None


@dataclass(frozen=True, slots=True)
class CreatedJob:
    job_id: uuid.UUID
    calls: list[CreatedCall]


@dataclass(frozen=True, slots=True)
class JobStatus:
    job: Job
    counts: dict[str, int]  # by call state
    outcomes: dict[str, int]  # final calls by outcome

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def progress(self) -> float:
        settled = sum(n for s, n in self.counts.items() if s not in ("queued", "dialing"))
        return 1.0 if self.total == 0 else settled / self.total
