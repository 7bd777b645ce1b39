"""Campaign fixtures: the XML face on a test server over the real database, dialer accounts
(a "quiet" one whose calling hours exclude now, so no worker ever dials its calls), and a
snapshot of every table a command could write, to prove a refused one wrote nothing."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element

import asyncpg
import defusedxml.ElementTree as SafeET
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.campaigns.service import Campaigns, Menu
from ivr.campaigns.sounds import sounds_dir
from ivr.campaigns.web import CAMPAIGNS, add_routes
from ivr.delivery.signing import EVENT_TYPE_HEADER
from ivr.dialer.accounts import Accounts, NewAccount
from ivr.dialer.flow import Speech, Telephone
from ivr.dialer.kinds import load_hooks
from ivr.dialer.service import Dialer
from ivr.dialer.worker import DialerWorker
from ivr.settings import Settings
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Engine

TABLES = ("campaign_menus", "campaign_calls", "campaign_sounds", "dialer_jobs", "dialer_calls",
          "outbox")


@pytest.fixture(scope="session")
async def campaigns(pool: asyncpg.Pool, settings: Settings) -> Campaigns:
    return Campaigns(pool, Dialer(pool, settings), settings.data_dir, settings.public_url)


@pytest.fixture(scope="session")
async def xmlapi(campaigns: Campaigns) -> AsyncIterator[TestClient]:
    app = web.Application()
    app[CAMPAIGNS] = campaigns
    add_routes(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@dataclass
class Reply:
    status: int
    root: Element

    @property
    def errorid(self) -> int:
        return int(self.root.attrib["errorid"])

    @property
    def comment(self) -> str:
        return self.root.attrib["comment"]


@dataclass
class Client:
    """A dialer account with its credentials, posting to the XML face."""

    new: NewAccount
    http: TestClient
    menu: Menu | None = None

    @property
    def menu_pk(self) -> int:
        assert self.menu is not None
        return self.menu.pk

    @property
    def headers(self) -> dict[str, str]:
        pair = f"{self.new.account_id}:{self.new.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    async def post(self, body: bytes | str, headers: dict[str, str] | None = None,
                   path: str = "/ivrapi.asp") -> Reply:
        data = body.encode() if isinstance(body, str) else body
        resp = await self.http.post(path, data=data,
                                    headers=self.headers if headers is None else headers)
        assert resp.content_type == "text/xml"
        return Reply(resp.status, SafeET.fromstring(await resp.read()))


def hours_excluding_now() -> tuple[int, int]:
    """A one-minute calling window twelve hours from now: the dialer never starts these."""
    now = datetime.now(UTC)
    start = (now.hour * 60 + now.minute + 720) % 1439
    return start, start + 1


@pytest.fixture
async def quiet(pool: asyncpg.Pool, xmlapi: TestClient, campaigns: Campaigns,
                tmp_path: Path) -> Client:
    new = await Accounts(pool).create(name="quiet", hours=hours_excluding_now())
    menu = await campaigns.create_menu(new.account, "1-1234")
    return Client(new, xmlapi, menu)


async def snapshot(pool: asyncpg.Pool, settings: Settings) -> dict[str, object]:
    counts: dict[str, object] = {t: await pool.fetchval(f"SELECT count(*) FROM {t}")
                                 for t in TABLES}
    folder = sounds_dir(settings.data_dir)
    counts["files"] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    counts["job_states"] = await pool.fetchval(
        "SELECT coalesce(string_agg(state, ',' ORDER BY id), '') FROM dialer_jobs")
    counts["call_states"] = await pool.fetchval(
        "SELECT coalesce(string_agg(state, ',' ORDER BY id), '') FROM dialer_calls")
    return counts


def campaign_xml(menuid: str, numbers: list[str], tts: str = "Web server 1 is down.",
                 callids: list[str] | None = None) -> str:
    rows = "".join(
        f'<phonenumber number="{n}"' + (f' callid="{callids[i]}"' if callids else "") + "/>"
        for i, n in enumerate(numbers))
    return (f'<campaign menuid="{menuid}" action="0"><prompts><prompt promptid="1" '
            f'tts="{tts}"/></prompts><phonenumbers>{rows}</phonenumbers></campaign>')


# --- calls: a dialer worker on the engine's telephony, and a postback receiver ---------------
@pytest.fixture
async def dialer_worker(engine: Engine, pool: asyncpg.Pool, settings: Settings
                        ) -> AsyncIterator[DialerWorker]:
    """A dialer worker for one test (the engine runs none), placing calls through the
    engine's ARI connection and router: the calls come back in over `ivr-loopback` to the
    engine's test routes; the engine's app serves the audio and runs the delivery outbox."""
    tel = engine.tel
    worker = DialerWorker(
        pool, settings,
        Telephone(tel.ari, tel.runner.router, tel.runner.app, settings.dialer_trunk,
                  Speech(settings.data_dir, settings.public_url)),
        load_hooks(settings))
    worker.start()
    yield worker
    await worker.stop(5)


@dataclass
class Post:
    path: str
    event_type: str
    root: Element
    at: float = field(default_factory=time.monotonic)  # when it arrived


def _xml_post(request: web.Request, body: bytes) -> Post | None:
    if request.content_type != "text/xml":
        return None
    return Post(request.path, request.headers[EVENT_TYPE_HEADER], SafeET.fromstring(body))


class Receiver(SignedReceiver[Post]):
    """Takes the XML postbacks at /events and /summary; each must carry a valid signature."""

    def __init__(self) -> None:
        super().__init__(_xml_post)

    @property
    def posts(self) -> list[Post]:
        return self.got

    @property
    def bad(self) -> int:
        return self.bad_signatures

    def of(self, callid: str, path: str | None = None) -> list[Post]:
        return [p for p in self.posts if p.root.attrib.get("callid") == callid
                and (path is None or p.path == path)]

    async def summaries(self, callids: list[str], timeout: float = 30) -> dict[str, Element]:
        await self.wait_until(
            lambda: all(self.of(c, "/summary") for c in callids), timeout,
            lambda: f"no summary for some of {callids}; got "
                    f"{[p.root.attrib for p in self.posts]}")
        return {c: self.of(c, "/summary")[0].root for c in callids}


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    async with serving(got, "/events", "/summary") as base:
        got.url = base
        yield got
