"""Delivery fixtures: a real receiver (an aiohttp server on loopback) that records every request
and can fail, hang or succeed on cue; the app with short retry timings; recorders with
callbacks and uploads; a take stored as the phone flow stores one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import create_app
from ivr.core import db
from ivr.media.transcode import wav_to_mp3
from ivr.recorder.models import take_path
from ivr.recorder.phone import RecorderPhone, Take
from ivr.recorder.service import RecorderService
from ivr.settings import Settings
from tests.helpers.vr import Dev, Vr, fresh_number, parse

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    filename: str | None = None


@dataclass
class Receiver:
    """Answers 200 unless told otherwise per path: `fail_first[path] = n` answers 500 to the
    first n requests, `always_fail` always, `hang_first` holds the first request open until
    `release` is set, `hang_all` every request."""

    url: str = ""
    got: list[Request] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    hang_first: set[str] = field(default_factory=set)
    hang_all: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        filename = None
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form["file"]
            assert isinstance(part, web.FileField)
            body, filename = part.file.read(), part.filename
        else:
            body = await request.read()
        path = request.path
        self.seen[path] = count = self.seen.get(path, 0) + 1
        self.got.append(Request(request.method, path, dict(request.headers), body, filename))
        self.arrived.set()
        if path in self.hang_all or (path in self.hang_first and count == 1):
            await asyncio.wait_for(self.release.wait(), 60)
            return web.Response(status=503)
        if path in self.always_fail or count <= self.fail_first.get(path, 0):
            return web.Response(status=500, text="receiver says no")
        return web.Response(text="ok")

    def at(self, path: str) -> list[Request]:
        return [r for r in self.got if r.path == path]

    async def wait(self, path: str, count: int, timeout: float = 10) -> list[Request]:
        async def arrived() -> bool:
            return len(self.at(path)) >= count

        await eventually(arrived, timeout, f"{count} requests at {path}")
        return self.at(path)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5,
                     what: str = "the condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


@pytest.fixture(scope="session")
async def delivery_database_url(base_settings: Settings) -> AsyncIterator[str]:
    """A database of the delivery tests' own: the suite's engine (another test file's app)
    runs a delivery worker of its own on the shared database and would race these tests'
    workers for their outbox rows."""
    name = f"ivr_test_{os.getpid()}_delivery"
    url = db.with_database(base_settings.database_url, name)
    await db.drop_database(url)
    await db.prepare_database(url)
    yield url
    await db.drop_database(url)


@pytest.fixture(scope="session")
def settings(settings: Settings, delivery_database_url: str) -> Settings:
    return dataclasses.replace(settings, database_url=delivery_database_url)


@pytest.fixture(scope="session")
async def pool(delivery_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(delivery_database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A Receiver on a port of its own (so on a host:port of its own)."""
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}"
    yield found
    found.release.set()
    await runner.cleanup()


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Retries 50 ms apart at first, given up after 1.5 s: minutes of backoff in a second."""
    return dataclasses.replace(settings, delivery_backoff=0.05, delivery_retry_for=1.5)


@pytest.fixture
async def app(fast_settings: Settings) -> AsyncIterator[TestClient]:
    """The app with its delivery worker running (no telephony)."""
    client = TestClient(TestServer(create_app(fast_settings, with_telephony=False),
                                   host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def delivery_number(pool: asyncpg.Pool, settings: Settings) -> str:
    return (await RecorderService(pool, settings.data_dir, open_signup=True).add_number(
        fresh_number("533"), None, "US", None)).number


@dataclass
class Made:
    vr: Vr
    key: str
    secret: str
    recorder_id: int


@pytest.fixture
def make_recorder(app: TestClient, pool: asyncpg.Pool,
                  delivery_number: str) -> Callable[..., Any]:
    async def make(**options: Any) -> Made:
        username, password = "dl" + secrets.token_hex(4), secrets.token_urlsafe(12)
        vr = Vr(app, Dev(username, password, ""))
        await vr.ok("CreateDeveloper")
        tree = await vr.ok("CreateVoiceRecorder", "json", **options)
        rec = tree["voice_recorder"]
        key = rec["voice_recorder_key"]
        recorder_id = await pool.fetchval(
            "SELECT id FROM voice_recorders WHERE recorder_key = $1", key)
        return Made(Vr(app, Dev(username, password, key)), key, rec["callback_secret"],
                    recorder_id)

    return make


async def new_session(made: Made, count: int = 1, **params: Any) -> dict[str, Any]:
    lk = (await made.vr.ok("CreateRecordingList", "json"))["recording_list"][
        "recording_list_key"]
    keys = [(await made.vr.ok("CreateRecording", "json", recording_list_key=lk))["recording"]
            ["recording_key"] for _ in range(count)]
    tree = await made.vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                            recording_keys=",".join(keys), **params)
    return {"list_key": lk, "keys": keys, "session_key": tree["recording_session_key"],
            "pin": tree["ivr_pin"]}


async def store_take(phone: RecorderPhone, pool: asyncpg.Pool, session_key: str,
                     recording_key: str, *, mp3: bool = False,
                     touchtone: str | None = None, kept_on_hangup: bool = False) -> Take:
    """What the phone flow does for one take: session called, take started, its audio stored
    under its own file (a real WAV, and an MP3 made from it), then accepted (confirmed by the
    caller, or `kept_on_hangup`)."""
    session_id = await pool.fetchval(
        "SELECT id FROM recording_sessions WHERE session_key = $1", session_key)
    row = await pool.fetchrow(
        "SELECT r.id, r.play_key FROM recordings r JOIN session_recordings s"
        " ON s.recording_id = r.id WHERE s.session_id = $1 AND r.recording_key = $2",
        session_id, recording_key)
    await phone.mark_called(session_id)
    assert await phone.start_take(session_id, row["id"])
    take = await phone.new_take(session_id, row["id"], "chan-test")
    wav = take_path(phone.data_dir, row["play_key"], take.number, "wav")
    wav.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "speech-short.wav", wav)
    if mp3:
        await wav_to_mp3(wav, wav.with_suffix(".mp3"))
    assert await phone.accept_take(session_id, row["id"], take, duration_ms=1707, has_wav=True,
                                   has_mp3=mp3, caller_id="5125550123",
                                   touchtone_input=touchtone, kept_on_hangup=kept_on_hangup)
    return take


def event_of(request: Request) -> dict[str, Any]:
    """The event a callback carries, from either format."""
    if request.headers["Content-Type"].startswith("text/xml"):
        return parse(request.body.decode(), "xml")
    doc = orjson.loads(request.body)
    assert list(doc) == ["MyVoxapi"]
    return dict(doc["MyVoxapi"])
