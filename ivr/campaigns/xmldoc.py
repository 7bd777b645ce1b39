"""Reading a posted `<campaign>` document into a command, or a CampaignError that names what is
wrong. Nothing here touches the database: a document is refused whole before anything is
written.

Hostile input is stopped at the parser: defusedxml refuses any DTD (so no entity expansion,
billion laughs or external entities), a builder aborts past MAX_DEPTH nesting or MAX_ELEMENTS
elements, and the web face caps the body at MAX_BODY bytes before parsing (web.py).

Element and attribute names are matched case-insensitively (VoiceShot's own examples mix
`dt:dt` and `DT:DT`); namespaces are dropped except that `dt:dt` must say `bin.base64`."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ivr.campaigns import errors as e
from ivr.campaigns.errors import CampaignError
from ivr.campaigns.models import (
    CALLID_RE,
    FILENAME_RE,
    MAX_TTS,
    MENUID_RE,
    Command,
    DeleteCalls,
    DeleteFile,
    Destination,
    GetFile,
    Pause,
    Prompt,
    Query,
    Resume,
    SaveFile,
    SendCalls,
    TestConfig,
)

MAX_BODY = 16 * 1024 * 1024  # a base64 WAV of up to MAX_WAV, with room for line breaks
MAX_WAV = 10 * 1024 * 1024
MAX_DEPTH = 8  # campaign > phonenumbers > phonenumber > prompts > prompt is 5
MAX_ELEMENTS = 50_000
MAX_NUMBERS = 10_000
MAX_PROMPTS = 20
_NUMBER_JUNK = re.compile(r"[\s().-]")
_NUMBER_RE = re.compile(r"\+?[0-9]{7,15}")
_DATETIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p")


class _Limited(TreeBuilder):
    """A tree builder that stops a too deep or too large document while it is being read."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        self.count += 1
        if self.depth > MAX_DEPTH:
            raise CampaignError(e.MALFORMED, f"XML nested more than {MAX_DEPTH} levels deep")
        if self.count > MAX_ELEMENTS:
            raise CampaignError(e.PARSE, f"more than {MAX_ELEMENTS} XML elements")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return super().end(tag)


def read_xml(body: bytes) -> Element:
    if len(body) > MAX_BODY:
        raise CampaignError(e.TOO_LARGE, f"the request is larger than {MAX_BODY} bytes")
    if not body.strip():
        raise CampaignError(e.MALFORMED, "XML file malformed or missing: the body is empty")
    parser = DefusedXMLParser(target=_Limited(), forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    try:
        parser.feed(body)
        root: Element = parser.close()
    except DefusedXmlException:
        raise CampaignError(e.MALFORMED, "XML file malformed: a DTD, entity declaration or "
                            "external reference is not allowed") from None
    except ParseError as exc:
        raise CampaignError(e.MALFORMED, f"XML file malformed: {exc}") from None
    except (ValueError, LookupError):
        # expat reads only single-byte encodings and the UTF family: UTF-7, an unknown name.
        raise CampaignError(e.MALFORMED, "XML file malformed: its encoding is not supported; "
                            "send UTF-8") from None
    return root


def _name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _attrs(el: Element) -> dict[str, str]:
    return {_name(k): v for k, v in el.attrib.items()}


def _children(el: Element, allowed: set[str]) -> list[tuple[str, Element]]:
    found = []
    for child in el:
        name = _name(child.tag)
        if name not in allowed:
            raise CampaignError(e.PARSE, f"unexpected element <{name}> in <{_name(el.tag)}>")
        found.append((name, child))
    return found


def _one(el: Element, name: str, code: int, allowed: set[str]) -> Element | None:
    matches = [c for n, c in _children(el, allowed) if n == name]
    if len(matches) > 1:
        raise CampaignError(code, f"<{name}> given more than once in <{_name(el.tag)}>")
    return matches[0] if matches else None


def parse(body: bytes) -> Command:
    """The command a document asks for; CampaignError for anything wrong with it."""
    root = read_xml(body)
    if _name(root.tag) != "campaign":
        raise CampaignError(e.CAMPAIGN_TAG, f"the top element must be <campaign>, not "
                            f"<{_name(root.tag)}>")
    attrs = _attrs(root)
    raw = attrs.get("action", "").strip()
    if not raw:
        raise CampaignError(e.NO_ACTION, "No action defined: <campaign> needs action=\"0\"-"
                            "\"8\"")
    if not raw.isdigit() or int(raw) not in _ACTIONS:
        detail = (" (4 and 5 are call events this service sends)" if raw in ("4", "5")
                  else "")
        raise CampaignError(e.NO_ACTION, f"unknown action {raw[:20]!r}{detail}; the actions "
                            "are 0 send, 1 file, 2 delete, 3 query, 6 test, 7 pause, 8 resume")
    return _ACTIONS[int(raw)](root, attrs)


def _menuid(attrs: dict[str, str]) -> str:
    menuid = attrs.get("menuid", "").strip()
    if not menuid:
        raise CampaignError(e.MENUID, "Menuid missing: <campaign> needs menuid=\"...\"")
    if not MENUID_RE.fullmatch(menuid):
        raise CampaignError(e.MENUID, "menuid must be 1-40 letters, digits, '_', '.', ':' or "
                            "'-'")
    return menuid


def _callid(value: str) -> str:
    if not CALLID_RE.fullmatch(value):
        raise CampaignError(e.CALLID, f"callid {value[:70]!r} must be 1-64 letters, digits, "
                            "'_', '.', ':' or '-'")
    return value


def _send(root: Element, attrs: dict[str, str]) -> SendCalls:
    menuid = _menuid(attrs)
    allowed = {"prompts", "phonenumbers"}
    shared = _one(root, "prompts", e.PROMPTS_TAG, allowed)
    numbers = _one(root, "phonenumbers", e.PHONENUMBERS_TAG, allowed)
    if numbers is None:
        raise CampaignError(e.PHONENUMBERS_TAG, "PHONENUMBERS tag missing: action 0 needs "
                            "<phonenumbers>")
    common = _prompts(shared) if shared is not None else None
    found = _children(numbers, {"phonenumber"})
    if not found:
        raise CampaignError(e.PHONENUMBER_TAG, "PHONENUMBER tag missing: <phonenumbers> is "
                            "empty")
    if len(found) > MAX_NUMBERS:
        raise CampaignError(e.PARSE, f"more than {MAX_NUMBERS} phone numbers in one post")
    return SendCalls(menuid, tuple(_destination(el, common) for _, el in found))


def _destination(el: Element, common: tuple[Prompt, ...] | None) -> Destination:
    attrs = _attrs(el)
    raw = attrs.get("number", "")
    number = _NUMBER_JUNK.sub("", raw)
    if not raw:
        raise CampaignError(e.PHONENUMBER, "Phonenumber missing: <phonenumber> needs "
                            "number=\"...\"")
    if not _NUMBER_RE.fullmatch(number):
        raise CampaignError(e.PHONENUMBER, f"phone number {raw[:40]!r} must have 7-15 digits")
    callid = attrs.get("callid", "").strip()
    callerid = _NUMBER_JUNK.sub("", attrs.get("callerid", ""))
    if callerid and not re.fullmatch(r"[0-9]{7,15}", callerid):
        raise CampaignError(e.CALLERID, f"callerid {callerid[:40]!r} must have 7-15 digits")
    own = _one(el, "prompts", e.PROMPTS_TAG, {"prompts"})
    prompts = _prompts(own) if own is not None else common
    if prompts is None:
        raise CampaignError(e.PROMPTS_TAG, f"PROMPTS tag missing: no <prompts> for {raw!r} "
                            "(give them in <campaign> or in its <phonenumber>)")
    return Destination(number.lstrip("+"), _callid(callid) if callid else None, prompts,
                       callerid or None, _when(attrs.get("dateandtime", "")))


def _when(raw: str) -> datetime | None:
    """VoiceShot's "1/1/2003 3:00 PM" or ISO 8601; without a zone it is UTC."""
    raw = raw.strip()
    if not raw:
        return None
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise CampaignError(e.DATETIME, f"dateandtime {raw[:40]!r} is not \"M/D/YYYY h:mm AM\""
                            " or ISO 8601") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _prompts(el: Element) -> tuple[Prompt, ...]:
    found = _children(el, {"prompt"})
    if not found:
        raise CampaignError(e.PROMPT_TAG, "PROMPT tag missing: <prompts> is empty")
    if len(found) > MAX_PROMPTS:
        raise CampaignError(e.PARSE, f"more than {MAX_PROMPTS} prompts for one call")
    prompts: list[Prompt] = []
    for _, child in found:
        _children(child, set())
        attrs = _attrs(child)
        pid = attrs.get("promptid", "").strip()
        if not pid.isdigit() or len(pid) > 9:
            raise CampaignError(e.PROMPTID, "Promptid missing or not a number: <prompt> "
                                "needs promptid=\"1\"")
        promptid = int(pid)
        if any(p.promptid == promptid for p in prompts):
            raise CampaignError(e.PROMPTID, f"promptid {promptid} given twice")
        tts = " ".join(attrs.get("tts", "").split()) or None
        filename = attrs.get("filename", "").strip() or None
        if tts is None and filename is None:
            raise CampaignError(e.TTS, f"TTS text missing: prompt {promptid} needs tts=\"...\" "
                                "or filename=\"....wav\"")
        if tts is not None and filename is not None:
            raise CampaignError(e.PARSE, f"prompt {promptid} gives both tts and filename")
        if tts is not None and len(tts) > MAX_TTS:
            raise CampaignError(e.TTS, f"prompt {promptid}: tts is longer than {MAX_TTS} "
                                "characters")
        prompts.append(Prompt(promptid, tts, None if filename is None else
                              sound_name(filename)))
    return tuple(prompts)


def sound_name(raw: str) -> str:
    """A sound file's name, lower-cased; a path, a hidden name or another extension is an
    error (the name becomes part of nothing on disk, but must be sane to show and match)."""
    name = raw.strip().lower()
    if not name:
        raise CampaignError(e.FILENAME, "Filename missing: filename=\"....wav\" is required")
    if not FILENAME_RE.fullmatch(name) or ".." in name:
        raise CampaignError(e.FILENAME, f"filename {raw[:70]!r} must be a plain name of "
                            "letters, digits, '_', '.' or '-' ending in .wav (at most 64)")
    return name


# "get" fetches a saved sound back (the seed's <file> "sends, receives or deletes sound
# files"); "receive" is the seed's own word for it.
_FILE_ACTIONS = ("save", "delete", "get", "receive")


def _files(root: Element, attrs: dict[str, str]) -> SaveFile | DeleteFile | GetFile:
    el = _one(root, "file", e.FILE_ATTRIBUTES, {"file"})
    if el is None:
        raise CampaignError(e.FILE_ATTRIBUTES, "action 1 needs a <file> element")
    _children(el, set())
    fattrs = _attrs(el)
    what = fattrs.get("fileaction", "").strip().lower()
    if what not in _FILE_ACTIONS:
        raise CampaignError(e.FILE_ATTRIBUTES, "File attributes incorrect: fileaction must be "
                            "\"save\", \"delete\" or \"get\"")
    name = sound_name(fattrs.get("filename", ""))
    if what == "delete":
        return DeleteFile(name)
    if what in ("get", "receive"):
        if "".join((el.text or "").split()):
            raise CampaignError(e.FILE_ATTRIBUTES, "File attributes incorrect: "
                                f"fileaction=\"{what}\" takes no content")
        return GetFile(name)
    dt = fattrs.get("dt", "bin.base64").strip().lower()
    if dt != "bin.base64":
        raise CampaignError(e.FILE_ATTRIBUTES, "File attributes incorrect: dt:dt must be "
                            "\"bin.base64\"")
    text = "".join((el.text or "").split())
    if not text:
        raise CampaignError(e.WAV_INVALID, "Wav format invalid: the <file> element is empty")
    if len(text) > MAX_WAV * 4 // 3 + 4:
        raise CampaignError(e.TOO_LARGE, f"the sound file is larger than {MAX_WAV} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CampaignError(e.WAV_INVALID, "Wav format invalid: the content is not valid "
                            "base64") from None
    return SaveFile(name, data)


def _callids(root: Element, *, required: bool) -> tuple[str, ...]:
    numbers = _one(root, "phonenumbers", e.PHONENUMBERS_TAG, {"phonenumbers"})
    if numbers is None:
        if required:
            raise CampaignError(e.PHONENUMBERS_TAG, "PHONENUMBERS tag missing: list the calls"
                                " as <phonenumber callid=\"...\"/>")
        return ()
    found = _children(numbers, {"phonenumber"})
    if required and not found:
        raise CampaignError(e.PHONENUMBER_TAG, "PHONENUMBER tag missing: <phonenumbers> is "
                            "empty")
    if len(found) > MAX_NUMBERS:
        raise CampaignError(e.PARSE, f"more than {MAX_NUMBERS} call ids in one post")
    ids: list[str] = []
    for _, el in found:
        callid = _attrs(el).get("callid", "").strip()
        if not callid:
            if required:
                raise CampaignError(e.CALLID, "Callid missing: <phonenumber> needs "
                                    "callid=\"...\"")
            return ()  # an empty callid asks for every call of the menu
        ids.append(_callid(callid))
    return tuple(dict.fromkeys(ids))


def _delete(root: Element, attrs: dict[str, str]) -> DeleteCalls:
    return DeleteCalls(_menuid(attrs), _callids(root, required=True))


def _query(root: Element, attrs: dict[str, str]) -> Query:
    return Query(_menuid(attrs), _callids(root, required=False))


def _pause(root: Element, attrs: dict[str, str]) -> Pause:
    _children(root, set())
    return Pause(_menuid(attrs))


def _resume(root: Element, attrs: dict[str, str]) -> Resume:
    _children(root, set())
    return Resume(_menuid(attrs))


def _test(root: Element, attrs: dict[str, Any]) -> TestConfig:
    return TestConfig()


_ACTIONS: dict[int, Any] = {0: _send, 1: _files, 2: _delete, 3: _query, 6: _test, 7: _pause,
                            8: _resume}
