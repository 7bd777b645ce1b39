"""Broadcast API fixtures: the app without telephony, accounts (a full one with a small
destination limit, a TEST one), and a file server for audio_file_url."""

from __future__ import annotations

import base64
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from ivr.dialer.accounts import Accounts, NewAccount

DATA = Path(__file__).resolve().parent.parent / "data"


def auth(made: NewAccount) -> dict[str, str]:
    token = base64.b64encode(f"{made.account_id}:{made.secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(autouse=True)
async def nothing_left_queued(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Jobs these tests accept are never meant to be dialled (another test's worker might)."""
    yield
    await pool.execute("UPDATE dialer_calls SET state = 'cancelled' WHERE state = 'queued'")


@pytest.fixture
async def full(pool: asyncpg.Pool) -> NewAccount:
    return await Accounts(pool).create(name="full", max_destinations=3)


@pytest.fixture
async def trial(pool: asyncpg.Pool) -> NewAccount:
    return await Accounts(pool).create(name="trial", test_number="35699111111")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello.wav (speech), hello.mp3 (the same as MP3), hello.ogg, corrupt.wav (noise bytes),
    empty.wav (a valid header, no sound), big.wav (for the size limit)."""
    folder = tmp_path_factory.mktemp("audio")
    (folder / "hello.wav").write_bytes((DATA / "speech-short.wav").read_bytes())
    for ext in ("mp3", "ogg"):
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i",
                        str(DATA / "speech-short.wav"), str(folder / f"hello.{ext}")],
                       check=True)
    (folder / "corrupt.wav").write_bytes(b"\x13\x37" * 2000)
    with wave.open(str(folder / "empty.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"")
    return folder


@pytest.fixture(scope="session")
async def files(audio_dir: Path) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_static("/", audio_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
