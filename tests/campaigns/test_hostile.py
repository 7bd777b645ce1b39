"""Bad and hostile documents: each gets its XML error (errorid, comment, HTTP status) and
writes nothing - no job, call, campaign row, sound file or outbox row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.campaigns.service import Campaigns
from ivr.campaigns.xmldoc import MAX_BODY
from ivr.dialer.accounts import Accounts
from ivr.settings import Settings
from tests.campaigns.conftest import Client, campaign_xml, hours_excluding_now, snapshot

LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE campaign [\n<!ENTITY lol "lol">\n'
          + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                     .encode() for i in range(1, 10))
          + b']>\n<campaign menuid="1-1234" action="0"><prompts><prompt promptid="1" '
            b'tts="&lol9;"/></prompts><phonenumbers><phonenumber number="8185550100"/>'
            b"</phonenumbers></campaign>")
XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE campaign [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<campaign menuid="1-1234" action="0"><prompts><prompt promptid="1" tts="&x;"/>'
       b'</prompts><phonenumbers><phonenumber number="8185550100"/></phonenumbers></campaign>')
EXTERNAL_DTD = (b'<?xml version="1.0"?>\n<!DOCTYPE campaign SYSTEM "http://127.0.0.1:9/x.dtd">'
                b'<campaign menuid="1-1234" action="7"/>')
PARAMETER_ENTITY = (b'<?xml version="1.0"?>\n<!DOCTYPE campaign [<!ENTITY % p SYSTEM '
                    b'"http://127.0.0.1:9/p.dtd"> %p;]><campaign menuid="1-1234" action="7"/>')
DEEP = (b'<campaign menuid="1-1234" action="3"><phonenumbers>' + b"<a>" * 50_000
        + b"</a>" * 50_000 + b"</phonenumbers></campaign>")
GOOD = campaign_xml("1-1234", ["8185550100", "8185550117"])

CASES: dict[str, tuple[bytes | str, int, int]] = {
    "billion laughs": (LAUGHS, 3, 400),
    "external entity": (XXE, 3, 400),
    "external dtd": (EXTERNAL_DTD, 3, 400),
    "parameter entity": (PARAMETER_ENTITY, 3, 400),
    "deeply nested": (DEEP, 3, 400),
    "malformed": (b'<campaign menuid="1-1234" action="0"><phonenumbers>', 3, 400),
    "empty body": (b"", 3, 400),
    "not xml": (b'{"menuid": "1-1234", "action": 0}', 3, 400),
    "wrong root": (b'<campaigns menuid="1-1234" action="0"/>', 18, 400),
    "no action": (b'<campaign menuid="1-1234"/>', 4, 400),
    "unknown action": (b'<campaign menuid="1-1234" action="9"/>', 4, 400),
    "event action": (b'<campaign menuid="1-1234" action="4"/>', 4, 400),
    "missing menuid": (GOOD.replace(' menuid="1-1234"', ""), 5, 400),
    "unknown menuid": (GOOD.replace("1-1234", "9-9999"), 19, 404),
    "one bad number": (campaign_xml("1-1234", ["8185550100", "12ab"]), 8, 400),
    "no phonenumbers": (b'<campaign menuid="1-1234" action="0"><prompts><prompt promptid="1"'
                        b' tts="x"/></prompts></campaign>', 17, 400),
    "no prompts": (b'<campaign menuid="1-1234" action="0"><phonenumbers>'
                   b'<phonenumber number="8185550100"/></phonenumbers></campaign>', 15, 400),
    "unknown sound file": (GOOD.replace('tts="Web server 1 is down."', 'filename="nope.wav"'),
                           23, 404),
    "path in filename": (b'<campaign action="1"><file filename="../../etc/x.wav" '
                         b'fileaction="delete"/></campaign>', 13, 400),
    "delete without callid": (b'<campaign menuid="1-1234" action="2"><phonenumbers>'
                              b'<phonenumber/></phonenumbers></campaign>', 6, 400),
    "scheduled over a year ahead": (GOOD.replace('number="8185550100"',
                                    'number="8185550100" dateandtime="1/1/2099 3:00 PM"'),
                       10, 400),
}


@pytest.fixture(scope="module")
async def client(pool: asyncpg.Pool, xmlapi: TestClient, campaigns: Campaigns
                 ) -> AsyncIterator[Client]:
    new = await Accounts(pool).create(name="hostile", hours=hours_excluding_now())
    menu = await campaigns.create_menu(new.account, "1-1234")
    yield Client(new, xmlapi, menu)


@pytest.mark.parametrize("case", list(CASES))
async def test_refused_and_nothing_changed(case: str, client: Client, pool: asyncpg.Pool,
                                           settings: Settings) -> None:
    body, errorid, status = CASES[case]
    before = await snapshot(pool, settings)
    reply = await client.post(body)
    assert (reply.status, reply.errorid) == (status, errorid), reply.comment
    assert reply.comment and reply.comment != "ok"
    assert set(reply.root.attrib) == {"errorid", "comment"}
    assert await snapshot(pool, settings) == before


async def test_credentials(client: Client, pool: asyncpg.Pool, settings: Settings) -> None:
    before = await snapshot(pool, settings)
    for headers in ({}, {"Authorization": "Basic !!!"},
                    {"Authorization": "Bearer " + client.new.secret},
                    {"Authorization": client.headers["Authorization"][:-4] + "AAA="}):
        reply = await client.post(GOOD, headers=headers)
        assert (reply.status, reply.errorid) == (401, 1), headers
    resp = await client.http.post("/campaigns/v1/ivrapi", data=GOOD)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert await snapshot(pool, settings) == before
    # Both paths, and action 6 (test configuration) with good credentials.
    for path in ("/ivrapi.asp", "/campaigns/v1/ivrapi"):
        reply = await client.post('<campaign action="6"/>', path=path)
        assert (reply.status, reply.errorid, reply.comment) == (200, 0, "ok")
    resp = await client.http.get("/ivrapi.asp")
    assert resp.status == 405 and b'errorid="24"' in await resp.read()


async def test_oversize_is_refused_before_parsing(client: Client, pool: asyncpg.Pool,
                                                  settings: Settings) -> None:
    before = await snapshot(pool, settings)
    padding = b" " * (MAX_BODY + 1 - len(GOOD))
    reply = await client.post(GOOD.encode() + padding)  # valid XML, one byte too long
    assert (reply.status, reply.errorid) == (413, 22)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut while reading
        yield GOOD.encode()
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536
            await asyncio.sleep(0)

    resp = await client.http.post("/ivrapi.asp", data=chunks(), headers=client.headers)
    assert resp.status == 413 and b'errorid="22"' in await resp.read()
    assert await snapshot(pool, settings) == before


async def test_served_by_the_app(api: TestClient, client: Client) -> None:
    """The same face, wired into the application `ivr serve` runs."""
    for path in ("/ivrapi.asp", "/campaigns/v1/ivrapi"):
        resp = await api.post(path, data='<campaign menuid="1-1234" action="7"/>',
                              headers=client.headers)
        assert (resp.status, resp.content_type) == (200, "text/xml")
        assert b'errorid="0" comment="ok" action="7" menuid="1-1234"' in await resp.read()
    resp = await api.post("/ivrapi.asp", data=LAUGHS, headers=client.headers)
    assert resp.status == 400 and b'errorid="3"' in await resp.read()
