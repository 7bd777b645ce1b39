"""A job request checked in the seed's order; the first problem found is the answer (a
BroadcastError with its code). What passes becomes a `Request` for the dialer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ivr.broadcast.errors import err
from ivr.dialer.flow import LANGUAGES
from ivr.dialer.models import Account, Destination
from ivr.media.tts import MAX_TEXT

TOP_LEVEL = {"client_job_id", "destinations", "voice_content", "sender_id", "callback_url",
             "enable_menu_response", "ring_timeout", "max_retries", "retry_interval", "amd"}
VOICE_CONTENT = {"tts_text", "voice", "language", "audio_file_url"}
TTS_ONLY = ("voice", "language")
# The seed's own names for fields of ours: -99 names the job id 'job_id', the postbacks
# carry 'tts_voice' / 'tts_lang'. Either name is taken; both, with different values, is -101.
ALIASES = {"job_id": "client_job_id"}
VOICE_CONTENT_ALIASES = {"tts_voice": "voice", "tts_lang": "language"}
DESTINATION = {"number", "custom_id"}
VOICES = {"MAN": "male", "WOMAN": "female"}
AMD = {"off": "off", "after_beep": "after_beep", "skip_machine": "skip_machine"}
# Formatting a number may carry; anything else makes it no number at all.
_FORMATTING = re.compile(r"[\s\-().]")
_URL = re.compile(r"^https?://.+", re.IGNORECASE)
_CALLBACK = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


@dataclass
class Request:
    client_job_id: str | None
    destinations: list[Destination]
    tts_text: str | None = None
    voice: str = "MAN"
    language: str = "en-US"
    audio_file_url: str | None = None
    sender_id: str | None = None
    callback_url: str | None = None
    enable_menu_response: bool = False
    ring_timeout: int = 30
    max_retries: int = 0
    retry_interval: int = 60
    amd: str = "off"
    ignored: list[str] = field(default_factory=list)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _digits(value: Any) -> str | None:
    """A phone number with its formatting taken out; None when it is no number at all."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _FORMATTING.sub("", str(value))
    if text.startswith("+"):
        text = text[1:]
    return text if text.isdigit() else None


def _integer(body: dict[str, Any], name: str, default: int, above_ten: bool) -> int:
    if name not in body:
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise err(-104, name)
    if above_ten and value <= 10:
        raise err(-103, name)
    return value


def unalias(obj: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """`obj` with each alias under its field's name (the order of keys kept)."""
    for alias, name in aliases.items():
        if alias in obj and name in obj and not _same(obj[alias], obj[name]):
            raise err(-101, f"'{alias}' is another name of '{name}': give one of them, or "
                      "both with the same value")
    return {aliases.get(key, key): value for key, value in obj.items()}


def _same(a: Any, b: Any) -> bool:
    """Equal, or the same text (a job id given as 1234567 and as "1234567")."""
    texts = all(isinstance(x, str | int) and not isinstance(x, bool) for x in (a, b))
    return a == b or (texts and str(a) == str(b))


def check(body: Any, account: Account) -> Request:
    if not isinstance(body, dict):
        raise err(-80)
    body = unalias(body, ALIASES)
    for key in body:
        if key not in TOP_LEVEL:
            raise err(-82, key)
    client_job_id = body.get("client_job_id")
    if client_job_id is not None:
        if isinstance(client_job_id, int) and not isinstance(client_job_id, bool):
            client_job_id = str(client_job_id)
        if not isinstance(client_job_id, str) or not 7 <= len(client_job_id) <= 15:
            raise err(-99)
    req = Request(client_job_id=client_job_id, destinations=_destinations(body, account))
    _voice_content(body, req)
    sender = body.get("sender_id")
    if _present(sender):
        digits = _digits(sender)
        if digits is None or not 7 <= len(digits) <= 15:
            raise err(-92, sender)
        req.sender_id = digits
    menu = body.get("enable_menu_response", False)
    if isinstance(menu, str) and menu.lower() in ("true", "false"):
        menu = menu.lower() == "true"
    if not isinstance(menu, bool):
        raise err(-93)
    req.enable_menu_response = menu
    callback = body.get("callback_url")
    if _present(callback):
        if not isinstance(callback, str) or not _CALLBACK.match(callback) or len(callback) > 2000:
            raise err(-101, "'callback_url' must be an http or https URL")
        req.callback_url = callback
    req.ring_timeout = _integer(body, "ring_timeout", 30, above_ten=True)
    if req.ring_timeout > 300:
        raise err(-101, "'ring_timeout' may be at most 300 seconds")
    req.max_retries = _integer(body, "max_retries", 0, above_ten=False)
    if not 0 <= req.max_retries <= 9:
        raise err(-101, "'max_retries' must be 0 to 9")
    req.retry_interval = _integer(body, "retry_interval", 60, above_ten=True)
    amd = body.get("amd", "off")
    if amd not in AMD:
        raise err(-101, "'amd' must be off, after_beep or skip_machine")
    req.amd = AMD[amd]
    return req


def _destinations(body: dict[str, Any], account: Account) -> list[Destination]:
    if "destinations" not in body:
        raise err(-88)
    items = body["destinations"]
    if not isinstance(items, list):
        raise err(-83)
    found: list[Destination] = []
    numbers: set[str] = set()
    custom_ids: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or "number" not in item:
            raise err(-84)
        for key in item:
            if key not in DESTINATION:
                raise err(-82, key)
        digits = _digits(item["number"])
        if digits is None or not digits:
            continue  # not a number at all: sanitized away
        if not 7 <= len(digits) <= 15:
            raise err(-85)
        custom_id = item.get("custom_id")
        if custom_id is not None:
            if isinstance(custom_id, int) and not isinstance(custom_id, bool):
                custom_id = str(custom_id)
            if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 100:
                raise err(-101, "'custom_id' must be a string of 1 to 100 characters")
            if custom_id in custom_ids:
                raise err(-102, custom_id)
            custom_ids.add(custom_id)
        if digits in numbers:
            continue  # the same number twice is called once
        numbers.add(digits)
        found.append(Destination(digits, custom_id))
    if not found:
        raise err(-87)
    if account.test_number is not None:
        if len(found) > 1:
            raise err(-122)
        if found[0].number != account.test_number:
            raise err(-123, account.test_number)
    if len(found) > account.max_destinations:
        raise err(-86, account.max_destinations)
    return found


def _voice_content(body: dict[str, Any], req: Request) -> None:
    if "voice_content" not in body or not isinstance(body["voice_content"], dict):
        raise err(-98)
    vc = unalias(body["voice_content"], VOICE_CONTENT_ALIASES)
    for key in vc:
        if key not in VOICE_CONTENT:
            raise err(-82, key)
    text, url = vc.get("tts_text"), vc.get("audio_file_url")
    if _present(text) and _present(url):
        raise err(-81)
    if _present(url):
        if any(k in vc for k in (*TTS_ONLY, "tts_text")):
            raise err(-90)
        if not isinstance(url, str) or not _URL.match(url):
            raise err(-111)
        req.audio_file_url = url
        return
    if _present(text):
        if "audio_file_url" in vc:
            raise err(-91)
        if not isinstance(text, str) or not 7 <= len(text.strip()) <= MAX_TEXT:
            raise err(-95, MAX_TEXT)
        voice = vc.get("voice", "MAN")
        if not isinstance(voice, str) or voice.upper() not in VOICES:
            raise err(-96)
        language = vc.get("language", "en-US")
        if not isinstance(language, str) or language not in LANGUAGES:
            raise err(-97)
        req.tts_text, req.voice, req.language = text.strip(), voice.upper(), language
        return
    raise err(-89)
