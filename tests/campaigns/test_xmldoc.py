"""The document reader on the seed's own examples and on the edges it must refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import defusedxml.ElementTree as SafeET
import pytest

from ivr.campaigns import render
from ivr.campaigns.errors import CampaignError
from ivr.campaigns.models import (
    DeleteCalls,
    DeleteFile,
    GetFile,
    Pause,
    Prompt,
    Query,
    Resume,
    SaveFile,
    SendCalls,
)
from ivr.campaigns.xmldoc import MAX_DEPTH, parse

SEED_SEND = b"""<campaign menuid="1-1234" action="0">
   <prompts>
      <prompt promptid="1" tts="Web server 1 is down." />
   </prompts>
   <phonenumbers>
      <phonenumber number="8185550100" />
      <phonenumber number="8185550117" />
      <phonenumber number="8185550152" />
   </phonenumbers>
</campaign>"""
SEED_PER_NUMBER = b"""<campaign menuid="1-1234" action="0">
   <phonenumbers>
      <phonenumber number="8185550100" >
         <prompts><prompt promptid="1" tts="Web server 1 is down." /></prompts>
      </phonenumber>
      <phonenumber number="8185550117" >
         <prompts><prompt promptid="1" tts="Web server 2 is down." /></prompts>
      </phonenumber>
   </phonenumbers>
</campaign>"""
# The seed's upload example, as printed: its base64 is cut short (not a whole WAV).
SEED_UPLOAD = b"""<campaign action="1">
<file xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="bin.base64" filename="hello.wav"
 fileaction="save">UklGRmZGAABXQVZFZm10IBIAAAABAAEAgD4AAAB9AAACABAAAABmYWN0BAAAAKAPAABkYXRh
QB8AAAgAIAAoACAAGAAgAFAAOAAwAEgAIAAoABgACAAgADgASAAYABgAGAD4//j/8P/I/7j/ uP/A/+D/mP+Y/7j/
IPuA+wD8QPyg/OD8YP2g/cD94P0A/kD+oP6g/iD/YP9A/6D/oP/g/w==</file>
</campaign>"""


def test_seed_examples() -> None:
    sent = parse(SEED_SEND)
    assert isinstance(sent, SendCalls) and sent.menuid == "1-1234"
    assert [d.number for d in sent.destinations] == ["8185550100", "8185550117", "8185550152"]
    assert all(d.prompts == (Prompt(1, tts="Web server 1 is down."),)
               for d in sent.destinations)
    assert all(d.callid is None for d in sent.destinations)
    own = parse(SEED_PER_NUMBER)
    assert isinstance(own, SendCalls)
    assert [d.prompts[0].tts for d in own.destinations] == ["Web server 1 is down.",
                                                            "Web server 2 is down."]
    assert parse(b'<campaign menuid="1-1234" action="7" />') == Pause("1-1234")
    assert parse(b'<campaign menuid="1-1234" action="8" />') == Resume("1-1234")
    assert parse(b"""<campaign action="2" menuid="1-1234"><phonenumbers>
        <phonenumber callid="001" /><phonenumber callid="002" /><phonenumber callid="001" />
        </phonenumbers></campaign>""") == DeleteCalls("1-1234", ("001", "002"))
    assert parse(b"""<campaign action="3" menuid="1-1234"><phonenumbers>
        <phonenumber callid="" /></phonenumbers></campaign>""") == Query("1-1234", ())
    assert parse(b'<campaign action="3" menuid="1-1234"/>') == Query("1-1234", ())
    assert parse(b'<campaign action="1"><file filename="Hello.WAV" fileaction="delete"/>'
                 b"</campaign >") == DeleteFile("hello.wav")
    assert parse(b'<campaign action="1"><file filename="Hello.WAV" fileaction="get"/>'
                 b"</campaign>") == GetFile("hello.wav")
    upload = parse(SEED_UPLOAD)
    assert isinstance(upload, SaveFile) and upload.filename == "hello.wav"
    assert upload.data.startswith(b"RIFF") and b"WAVEfmt " in upload.data[:16]


def test_mixed_prompts_callids_and_case() -> None:
    sent = parse(b"""<CAMPAIGN MenuID="m1" Action="0"><Prompts>
        <Prompt PromptID="2" filename="Intro.wav"/><prompt promptid="1" tts="  Hello
        there  "/></Prompts><phonenumbers>
        <phonenumber number="(818) 555-0100" callid="grp-1" callerid="8185550000"/>
        <phonenumber number="+35699000001" callid="grp-1"/></phonenumbers></CAMPAIGN>""")
    assert isinstance(sent, SendCalls)
    first, second = sent.destinations
    assert (first.number, first.callid, first.callerid) == ("8185550100", "grp-1",
                                                            "8185550000")
    assert second.number == "35699000001"  # the dialer takes digits only
    assert first.prompts == (Prompt(2, filename="intro.wav"), Prompt(1, tts="Hello there"))


REFUSALS = [
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a"/>'
     b'<prompt promptid="1" tts="b"/></prompts><phonenumbers><phonenumber number="8185550100"'
     b"/></phonenumbers></campaign>", 11, "twice"),
    (b'<campaign menuid="m" action="0"><prompts><prompt tts="a"/></prompts><phonenumbers>'
     b'<phonenumber number="8185550100"/></phonenumbers></campaign>', 11, "Promptid"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a" '
     b'filename="a.wav"/></prompts><phonenumbers><phonenumber number="8185550100"/>'
     b"</phonenumbers></campaign>", 7, "both"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="' + b"a" * 501
     + b'"/></prompts><phonenumbers><phonenumber number="8185550100"/></phonenumbers>'
     b"</campaign>", 12, "500"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a"/></prompts>'
     b'<phonenumbers><phonenumber number="8185550100" callid="a b"/></phonenumbers>'
     b"</campaign>", 6, "callid"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a"/></prompts>'
     b'<phonenumbers><phonenumber number="8185550100" callerid="12"/></phonenumbers>'
     b"</campaign>", 9, "callerid"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a"/></prompts>'
     b'<phonenumbers><phonenumber number="8185550100" dateandtime="someday"/></phonenumbers>'
     b"</campaign>", 10, "dateandtime"),
    (b'<campaign menuid="m" action="0"><prompts/><phonenumbers><phonenumber '
     b'number="8185550100"/></phonenumbers></campaign>', 14, "PROMPT"),
    (b'<campaign menuid="m" action="0"><prompts><prompt promptid="1" tts="a"/></prompts>'
     b"<phonenumbers/></campaign>", 16, "PHONENUMBER"),
    (b'<campaign menuid="m" action="7"><extra/></campaign>', 7, "unexpected"),
    (b'<campaign menuid="a b" action="7"/>', 5, "menuid"),
    (b'<campaign action="1"><file filename="a.wav" fileaction="copy"/></campaign>', 20,
     "fileaction"),
    (b'<campaign action="1"/>', 20, "<file>"),
    (b'<campaign action="1"><file filename="a.wav" fileaction="save">@@@@</file></campaign>',
     21, "base64"),
    (b'<campaign action="1"><file filename="a.wav" fileaction="save"></file></campaign>',
     21, "empty"),
    (b'<campaign action="1"><file filename="sub/a.wav" fileaction="delete"/></campaign>', 13,
     "plain name"),
    (b'<campaign action="1"><file filename="a.mp3" fileaction="delete"/></campaign>', 13,
     ".wav"),
    (b'<campaign action="1"><file filename=".wav" fileaction="delete"/></campaign>', 13,
     "plain name"),
    (b"<campaign action='7' menuid='m'>" + b"<a>" * (MAX_DEPTH) + b"</a>" * MAX_DEPTH
     + b"</campaign>", 3, "nested"),
]


@pytest.mark.parametrize(("body", "errorid", "words"), REFUSALS,
                         ids=[f"{errorid}-{words}" for _, errorid, words in REFUSALS])
def test_refusals(body: bytes, errorid: int, words: str) -> None:
    with pytest.raises(CampaignError) as caught:
        parse(body)
    assert caught.value.errorid == errorid, caught.value.comment
    assert words in caught.value.comment


def test_rendered_xml_escapes_and_dates() -> None:
    comment = 'bad <phonenumber> & "quotes" \'too\''
    root = SafeET.fromstring(render.error_xml(3, comment))
    assert root.attrib == {"errorid": "3", "comment": comment}
    east = timezone(timedelta(hours=2))
    assert render.when(datetime(2026, 11, 30, 0, 5, 7, tzinfo=east)) == "11/29/2026 10:05:07 PM"
    assert render.when(datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)) == "1/2/2026 12:00:00 PM"
    assert render.when(datetime(2026, 1, 2, 0, 30, 0, tzinfo=UTC)) == "1/2/2026 12:30:00 AM"
