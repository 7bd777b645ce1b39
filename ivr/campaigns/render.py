"""The XML this API writes: command responses, errors, call events and call summaries, in
VoiceShot's shapes (`<campaign errorid="0" comment="ok"/>`, attributes rather than text).
Built with ElementTree, so every value is escaped; times are UTC in VoiceShot's
"M/D/YYYY h:mm:ss AM" form."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, tostring

CONTENT_TYPE = "text/xml; charset=utf-8"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    hour = moment.hour % 12 or 12
    return (f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:"
            f"{moment.second:02d} {'AM' if moment.hour < 12 else 'PM'}")


def _xml(root: Element) -> bytes:
    return tostring(root, encoding="utf-8", xml_declaration=True)


def _campaign(attrs: Mapping[str, object]) -> Element:
    return Element("campaign", {k: str(v) for k, v in attrs.items() if v is not None})


def error_xml(errorid: int, comment: str) -> bytes:
    return _xml(_campaign({"errorid": errorid, "comment": comment}))


def ok_xml(action: int, menuid: str | None = None, **extra: object) -> bytes:
    return _xml(ok_element(action, menuid, **extra))


def ok_element(action: int, menuid: str | None = None, **extra: object) -> Element:
    return _campaign({"errorid": 0, "comment": "ok", "action": action, "menuid": menuid,
                      **extra})


def sent_xml(menuid: str, calls: Iterable[tuple[str, str]]) -> bytes:
    """Action 0: each number with the callid its call goes by."""
    root = ok_element(0, menuid)
    numbers = SubElement(root, "phonenumbers")
    for number, callid in calls:
        SubElement(numbers, "phonenumber", {"number": number, "callid": callid})
    return _xml(root)


def deleted_xml(menuid: str, counts: Mapping[str, tuple[int, int]]) -> bytes:
    """Action 2: per callid, how many pending calls were deleted and how many were left
    (already dialling or done)."""
    total = sum(d for d, _ in counts.values())
    root = ok_element(2, menuid, deleted=total)
    numbers = SubElement(root, "phonenumbers")
    for callid, (deleted, kept) in counts.items():
        SubElement(numbers, "phonenumber", {"callid": callid, "deleted": str(deleted),
                                            "notdeleted": str(kept)})
    return _xml(root)


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call as a query and a call summary report it."""

    menuid: str
    callid: str
    number: str
    status: str  # Pending, Paused, Dialing, Successful, Busy, No Answer, Failed, Deleted
    comment: str
    dateandtime: datetime | None
    duration: int
    prompts: Sequence[int] = field(default_factory=tuple)
    keypress: Mapping[int, str] = field(default_factory=dict)

    def attributes(self) -> dict[str, str]:
        return {"number": self.number, "dateandtime": when(self.dateandtime),
                "callid": self.callid, "duration": str(self.duration), "status": self.status,
                "comment": self.comment}


def _prompts(parent: Element, call: CallResult) -> None:
    prompts = SubElement(parent, "prompts")
    for pid in call.prompts:
        SubElement(prompts, "prompt", {"promptid": str(pid),
                                       "keypress": call.keypress.get(pid, "")})


def query_xml(menuid: str, calls: Iterable[CallResult]) -> bytes:
    root = ok_element(3, menuid)
    numbers = SubElement(root, "phonenumbers")
    for call in calls:
        _prompts(SubElement(numbers, "phonenumber", call.attributes()), call)
    return _xml(root)


def summary_xml(call: CallResult) -> bytes:
    """The Call Summary posted when a call is over (answered and hung up, or not reached
    after its last attempt)."""
    attrs = call.attributes()
    root = _campaign({"menuid": call.menuid, "duration": attrs["duration"],
                      "phonenumber": call.number, "status": call.status,
                      "comment": call.comment, "callid": call.callid,
                      "dateandtime": attrs["dateandtime"]})
    _prompts(root, call)
    return _xml(root)


def answer_event_xml(menuid: str, callid: str, number: str, callerid: str) -> bytes:
    return _xml(_campaign({"menuid": menuid, "callid": callid, "action": 4,
                           "phonenumber": number, "callerid": callerid}))


def hangup_event_xml(menuid: str, callid: str, number: str, duration: int) -> bytes:
    return _xml(_campaign({"menuid": menuid, "callid": callid, "action": 5,
                           "phonenumber": number, "duration": duration}))


def keypress_event_xml(menuid: str, callid: str, promptid: int, keypress: str) -> bytes:
    return _xml(Element("prompt", {"menuid": menuid, "callid": callid,
                                   "promptid": str(promptid), "keypress": keypress}))


DATATYPES_NS = "urn:schemas-microsoft-com:datatypes"


def file_xml(filename: str, fileaction: str, content: bytes | None = None,
             **extra: object) -> bytes:
    """Action 1: the file saved, deleted, or fetched (`content`: base64, in the attributes
    of the seed's upload, so the element can be posted back as it is to save it again)."""
    root = ok_element(1)
    attrs = {"filename": filename, "fileaction": fileaction,
             **{k: str(v) for k, v in extra.items()}}
    if content is not None:
        attrs = {"xmlns:dt": DATATYPES_NS, "dt:dt": "bin.base64", **attrs}
    el = SubElement(root, "file", attrs)
    if content is not None:
        el.text = base64.b64encode(content).decode()
    return _xml(root)
