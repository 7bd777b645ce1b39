"""Shared fixtures: real PostgreSQL (a fresh database per test session) and the web app.
Telephony fixtures (the real Asterisk, callers, baresip) live in tests/telephony_harness.py."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
import shutil
import socket
import struct
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import create_app
from ivr.core import db
from ivr.media.manifest import MANIFEST, load_manifest
from ivr.media.prompts import PROMPTS_DIR
from ivr.provision.postgres import ensure_server
from ivr.settings import REPO_ROOT, Settings

pytest_plugins = ["tests.telephony_harness"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relaxations(settings: Settings) -> dict[str, str]:
    """The test settings' development relaxations (the `settings` fixture) as the variables
    an `ivr serve` of the suite's gets them by."""
    sec = settings.security
    return {"IVR_ALLOW_PRIVATE_URLS": str(sec.allow_private_urls).lower(),
            "IVR_AUTH_ADDRESS_FAILURES": str(sec.auth_address_failures),
            "IVR_SIGNUP_PER_HOUR": str(sec.signup_per_hour),
            "IVR_TOLL_PREFIXES": "*", "IVR_TOLL_CONCURRENT": str(sec.toll_concurrent),
            "IVR_TOLL_PER_DAY": str(sec.toll_per_day),
            "IVR_OPEN_SIGNUP": str(settings.open_signup).lower()}


async def start_serve(settings: Settings, log_to: Path | None = None,
                      **env: str) -> asyncio.subprocess.Process:
    """`ivr serve` as its own process on `settings` (database, port, data) plus `env`;
    returns once /healthz answers 200 (database and ARI connected). `log_to`: a file for
    its output (default: none kept)."""
    full = {**os.environ, "IVR_DATABASE_URL": settings.database_url,
            "IVR_HTTP_PORT": str(settings.http_port), "IVR_PUBLIC_URL": settings.public_url,
            "IVR_DATA_DIR": str(settings.data_dir), "IVR_PROMPTS_DIR": str(settings.prompts_dir),
            "IVR_AGI_LISTEN": "", **relaxations(settings), **env}
    out = log_to.open("ab") if log_to is not None else asyncio.subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "serve", cwd=REPO_ROOT, env=full, stdout=out,
            stderr=asyncio.subprocess.STDOUT)
    finally:
        if log_to is not None:
            out.close()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{settings.http_port}/healthz"
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    await proc.wait()
    raise AssertionError("ivr serve did not become healthy")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The developer's settings (.env, as `make run` uses them), so the suite drives the same
    Asterisk configuration; a test's own database and port come on top."""
    env_file = REPO_ROOT / ".env"
    if not env_file.exists() and "IVR_ARI_PASSWORD" not in os.environ:
        pytest.fail("no .env: run the suite with `make test` (it writes one)", pytrace=False)
    return Settings.load(env_file=env_file)


@pytest.fixture(scope="session")
async def database_url(base_settings: Settings) -> AsyncIterator[str]:
    ensure_server(base_settings.database_url, REPO_ROOT / ".local" / "postgres", lambda _: None)
    name = f"ivr_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = db.with_database(base_settings.database_url, name)
    await db.prepare_database(url)
    yield url
    await db.drop_database(url)


def short_prompts(folder: Path) -> Path:
    """The default prompt set's names, each a quarter second of tone: real calls play prompts
    in real time, and the product's spoken ones (the review menu alone is 12 s) would make the
    suite wait on speech no test listens to. Tests of the prompts themselves use PROMPTS_DIR."""
    source = PROMPTS_DIR / "en"
    target = folder / "en"
    target.mkdir(parents=True)
    shutil.copy(source / MANIFEST, target / MANIFEST)
    rate, seconds = 8000, 0.25
    tone = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 600 * i / rate)))
                    for i in range(int(rate * seconds)))
    for name, entry in load_manifest(source / MANIFEST).items():
        if entry.source != "core":
            with wave.open(str(target / f"{name}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(tone)
    return folder


@pytest.fixture(scope="session")
def settings(
    base_settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    port = free_port()
    return dataclasses.replace(
        base_settings,
        database_url=database_url,
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        data_dir=Path(tmp_path_factory.mktemp("data")),
        prompts_dir=short_prompts(Path(tmp_path_factory.mktemp("prompts"))),
        shutdown_grace=5.0,
        agi_listen=None,  # a FastAGI port of its own where a test asks for one (test_agi.py)
        open_signup=True,  # tests make their developers over the API
        # The development relaxations, set on purpose: the suite's receivers listen on
        # loopback, and every test's client is 127.0.0.1 (one address's failures add up over
        # the whole suite). tests/security/ checks the defaults on an app of their own.
        security=dataclasses.replace(base_settings.security, allow_private_urls=True,
                                     auth_address_failures=10**9, signup_per_hour=10**9,
                                     toll_prefixes=("",), toll_concurrent=10**6,
                                     toll_per_day=10**9),
    )


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[TestClient]:
    """The web app without the telephony worker, for API tests."""
    app = create_app(settings, with_telephony=False)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
