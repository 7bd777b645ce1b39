"""What a parsed `<campaign>` document asks for: one command dataclass per action."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# action numbers (VoiceShot's; 4 and 5 are the call events we send, never commands)
SEND, FILES, DELETE, QUERY, ANSWER_EVENT, HANGUP_EVENT, TEST, PAUSE, RESUME = range(9)

MENUID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
CALLID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# A sound file's name: one path part, letters/digits/_ . -, ending in .wav; kept lower-case.
FILENAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}\.wav")
MAX_TTS = 500  # characters, as the TTS engine allows (ivr/media/tts.py)


@dataclass(frozen=True, slots=True)
class Prompt:
    promptid: int
    tts: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Destination:
    number: str
    callid: str | None  # the client's id (several calls may share one); None: we make one
    prompts: tuple[Prompt, ...]
    callerid: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendCalls:
    menuid: str
    destinations: tuple[Destination, ...]


@dataclass(frozen=True, slots=True)
class Pause:
    menuid: str


@dataclass(frozen=True, slots=True)
class Resume:
    menuid: str


@dataclass(frozen=True, slots=True)
class DeleteCalls:
    menuid: str
    callids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Query:
    menuid: str
    callids: tuple[str, ...]  # empty: every call of the menu


@dataclass(frozen=True, slots=True)
class SaveFile:
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class DeleteFile:
    filename: str


@dataclass(frozen=True, slots=True)
class GetFile:
    filename: str


@dataclass(frozen=True, slots=True)
class TestConfig:
    pass


Command = (SendCalls | Pause | Resume | DeleteCalls | Query | SaveFile | DeleteFile | GetFile
           | TestConfig)


def action_of(command: Command) -> int:
    return {SendCalls: SEND, SaveFile: FILES, DeleteFile: FILES, GetFile: FILES,
            DeleteCalls: DELETE, Query: QUERY, TestConfig: TEST, Pause: PAUSE,
            Resume: RESUME}[type(command)]
