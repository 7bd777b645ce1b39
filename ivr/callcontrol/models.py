"""Entities and request bodies of the voice API (pure: no aiohttp, no asyncpg). Every body is
parsed into a frozen request object here, so nothing unvalidated reaches the service, the
database or Asterisk; unknown keys are refused rather than ignored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ivr.callcontrol.errors import BadRequest, VoiceNotSupported

NUMBER_RE = re.compile(r"^\+?[0-9]{2,15}$")
# sip:user@host[:port] with conservative characters: it ends up in a PJSIP dial string.
SIP_URI_RE = re.compile(r"^sips?:[A-Za-z0-9_.+*#-]{1,64}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
PROMPT_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$")
REF_RE = re.compile(r"^[\x20-\x7e]{0,128}$")
RECORDING_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
URL_RE = re.compile(r"^https?://[^\s]{1,2000}$")
# A BCP 47 language tag as the API writes it (`es-US`; `en_us` and a bare `en` too).
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$")

TTS_VOICES = ("male", "female")
# How long a leg dialled by connect / transfer / forward (or a bridge on connect) may ring.
BRIDGE_RING_TIMEOUT = 30
RECORDING_FORMATS = ("wav", "wav49", "mp3")


def timestamp() -> str:
    """UTC, ISO 8601 with milliseconds and a Z, as the API's examples show."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class Application:
    id: int
    app_id: str
    name: str
    webhook_url: str
    webhook_secret: str
    greeting: str | None
    accept_timeout: int
    numbers: tuple[str, ...]
    trunk: str | None = None  # the carrier trunk its calls leave by (None: the default)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a leg is dialled: a number (through the trunk) or a SIP URI."""

    value: str
    is_sip: bool


@dataclass(frozen=True, slots=True)
class Media:
    """What a play names: exactly one of a prompt, TTS text, or a URL."""

    prompt_name: str | None = None
    text: str | None = None
    language: str | None = None
    voice: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PlayRequest:
    media: Media
    dtmf: bool
    prompt_ref: str | None
    max_digits: int
    menu_timeout: int
    asr: bool = False
    start_timeout: int = 10  # seconds of silence before the caller starts speaking
    recognizer_timeout: int = 2  # seconds of silence that end what the caller says
    asr_phrases: tuple[str, ...] | None = None  # a grammar: the answers expected


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    from_number: str
    to: Destination
    name: str | None
    owner_ref: str | None
    event_url: str | None
    action_on_connect: PlayRequest | None
    timeout: int
    bridge_on_connect: ConnectRequest | None = None  # action_on_connect.bridge / .connect
    voicemail_detection: bool = False
    auto_record: bool = False


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    from_number: str
    to: Destination


# --- parsing ---------------------------------------------------------------------------------
def _only(body: Mapping[str, Any], allowed: set[str], where: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(unknown[0], f"unknown parameter '{where}{unknown[0]}'")


def _str(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(key, f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(key, f"'{key}' must be a string")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(key, f"'{key}' must be true or false")
    return value


def _int(body: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(key, f"'{key}' must be a whole number from {lo} to {hi}")
    return value


def parse_number(value: str | None, key: str) -> str:
    if value is None:
        raise BadRequest(key, f"'{key}' is required")
    if not NUMBER_RE.match(value):
        raise BadRequest(key, f"'{key}' must be a phone number (digits, optional leading +)")
    return value


def parse_destination(value: str | None, key: str) -> Destination:
    if value is None:
        raise BadRequest(key, f"'{key}' is required")
    if NUMBER_RE.match(value):
        return Destination(value, is_sip=False)
    if SIP_URI_RE.match(value):
        return Destination(value, is_sip=True)
    raise BadRequest(key, f"'{key}' must be a phone number or a SIP URI (sip:user@host)")


def _ref(body: Mapping[str, Any], key: str) -> str | None:
    value = _str(body, key)
    if value is not None and not REF_RE.match(value):
        raise BadRequest(key, f"'{key}' must be up to 128 printable characters")
    return value


def _url(body: Mapping[str, Any], key: str) -> str | None:
    value = _str(body, key)
    if value is not None and not URL_RE.match(value):
        raise BadRequest(key, f"'{key}' must be an http or https URL")
    return value


_PLAY_KEYS = {"prompt_name", "text", "language", "voice", "url", "dtmf", "prompt_ref",
              "max_digits", "menu_timeout", "asr", "start_timeout", "recognizer_timeout",
              "asr_phrases"}
PHRASE_RE = re.compile(r"^[A-Za-z' ,.?!-]{1,100}$")


def _phrases(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = body.get("asr_phrases")
    if value is None:
        return None
    if (not isinstance(value, list) or not 1 <= len(value) <= 100
            or not all(isinstance(p, str) and PHRASE_RE.match(p) and p.strip() for p in value)):
        raise BadRequest("asr_phrases", "'asr_phrases' must be a list of 1 to 100 phrases of "
                         "up to 100 letters, spaces and apostrophes")
    return tuple(value)


def parse_play(body: Mapping[str, Any], where: str = "",
               defaults: Mapping[str, Any] | None = None) -> PlayRequest:
    """`defaults`: action_on_connect's own start_timeout / recognizer_timeout (the seed puts
    them beside `play`); the play's values win."""
    _only(body, _PLAY_KEYS, where)
    prompt_name = _str(body, "prompt_name")
    text = _str(body, "text")
    url = _url(body, "url")
    given = [k for k, v in (("prompt_name", prompt_name), ("text", text), ("url", url)) if v]
    if len(given) != 1:
        raise BadRequest("prompt_name", "give exactly one of 'prompt_name', 'text' or 'url'")
    if prompt_name is not None and not PROMPT_NAME_RE.match(prompt_name):
        raise BadRequest("prompt_name", "'prompt_name' must be letters, digits, '_', '-', '/'")
    language = voice = None
    if text is not None:
        if not 1 <= len(text) <= 2000:
            raise BadRequest("text", "'text' must be 1 to 2000 characters")
        language = _str(body, "language", required=True)
        if not LANGUAGE_RE.match(language or ""):
            raise BadRequest("language", "'language' must be a language tag such as en-US")
        voice = (_str(body, "voice", required=True) or "").lower()  # `Female` too
        if voice not in TTS_VOICES:
            raise VoiceNotSupported("Voice not supported for text-to-speech conversion",
                                    details=f"voice '{voice}' is neither male nor female",
                                    param="voice")
    timing = {**(defaults or {}), **{k: body[k] for k in ("start_timeout",
                                                          "recognizer_timeout") if k in body}}
    asr = _bool(body, "asr")
    phrases = _phrases(body)
    if phrases is not None and not asr:
        raise BadRequest("asr_phrases", "'asr_phrases' needs \"asr\": true")
    if asr and _bool(body, "dtmf"):
        raise BadRequest("asr", "a play is either a DTMF menu or speech recognition")
    return PlayRequest(
        media=Media(prompt_name=prompt_name, text=text, language=language, voice=voice, url=url),
        dtmf=_bool(body, "dtmf"),
        prompt_ref=_ref(body, "prompt_ref"),
        max_digits=_int(body, "max_digits", 16, 1, 32),
        menu_timeout=_int(body, "menu_timeout", 5, 1, 60),
        asr=asr,
        start_timeout=_int(timing, "start_timeout", 10, 1, 10),
        recognizer_timeout=_int(timing, "recognizer_timeout", 2, 1, 10),
        asr_phrases=phrases,
    )


def _action_on_connect(action: Any) -> tuple[PlayRequest | None, ConnectRequest | None]:
    """The seed's three actions on answer: play a prompt or menu (`play`), bridge one more
    participant (`bridge`, or `connect` with from/to as EnableX's own clients send it), or
    just connect the call (`"connect": true`: the application drives it from `connected`)."""
    if not isinstance(action, dict):
        raise BadRequest("action_on_connect", "'action_on_connect' must be an object")
    where = "action_on_connect."
    _only(action, {"play", "connect", "bridge", "start_timeout", "recognizer_timeout"}, where)
    given = [k for k in ("play", "connect", "bridge") if k in action]
    if len(given) != 1:
        raise BadRequest("action_on_connect",
                         "'action_on_connect' takes exactly one of 'play', 'connect', 'bridge'")
    kind, inner = given[0], action[given[0]]
    timing = {k: action[k] for k in ("start_timeout", "recognizer_timeout") if k in action}
    if kind == "play":
        if not isinstance(inner, dict):
            raise BadRequest("action_on_connect", "'action_on_connect.play' must be an object")
        return parse_play(inner, where + "play.", timing), None
    if timing:
        raise BadRequest(next(iter(timing)), f"'{next(iter(timing))}' goes with 'play' only")
    if kind == "connect" and (inner is True or inner == {}):
        return None, None
    if not isinstance(inner, dict):
        raise BadRequest("action_on_connect", f"'{where}{kind}' must be an object with "
                         "'from' and 'to'" + (" (or true)" if kind == "connect" else ""))
    return None, parse_connect(inner, "to", where + kind + ".")


def parse_outbound(body: Mapping[str, Any]) -> OutboundRequest:
    _only(body, {"name", "owner_ref", "auto_record", "from", "to", "action_on_connect",
                 "event_url", "timeout", "voicemail_detection"})
    play = bridge = None
    if body.get("action_on_connect") is not None:
        play, bridge = _action_on_connect(body["action_on_connect"])
    name = _ref(body, "name")
    return OutboundRequest(
        from_number=parse_number(_str(body, "from"), "from"),
        to=parse_destination(_str(body, "to"), "to"),
        name=name,
        owner_ref=_ref(body, "owner_ref"),
        event_url=_url(body, "event_url"),
        action_on_connect=play,
        timeout=_int(body, "timeout", 30, 1, 120),
        voicemail_detection=_bool(body, "voicemail_detection"),
        auto_record=_bool(body, "auto_record"),
        bridge_on_connect=bridge,
    )


def parse_connect(body: Mapping[str, Any], to_key: str = "to",
                  where: str = "") -> ConnectRequest:
    _only(body, {"from", to_key}, where)
    return ConnectRequest(
        from_number=parse_number(_str(body, "from"), "from"),
        to=parse_destination(_str(body, to_key), to_key),
    )


def parse_hold(body: Mapping[str, Any]) -> bool:
    _only(body, {"hold"})
    if "hold" not in body:
        raise BadRequest("hold", "'hold' is required")
    return _bool(body, "hold")


@dataclass(frozen=True, slots=True)
class RecordingCommand:
    start: bool  # False: stop
    recording_name: str | None
    format: str


def parse_recording(body: Mapping[str, Any]) -> RecordingCommand:
    _only(body, {"start", "stop", "recording_name", "format"})
    start = _bool(body, "start")
    stop = _bool(body, "stop")
    if start == stop:
        raise BadRequest("start", "send either \"start\": true or \"stop\": true")
    name = _str(body, "recording_name")
    if name is not None and not RECORDING_NAME_RE.match(name):
        raise BadRequest("recording_name",
                         "'recording_name' must be 1 to 64 letters, digits, '_', '.', '-'")
    fmt = _str(body, "format") or "wav"
    if fmt not in RECORDING_FORMATS:
        raise BadRequest("format", "'format' must be wav, wav49 or mp3")
    if stop and (name is not None or "format" in body):
        raise BadRequest("recording_name", "stop takes no other parameter")
    return RecordingCommand(start, name, fmt)
