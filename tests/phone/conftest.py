"""Phone-side fixtures: a developer's recorders (tests/helpers/phone.py has the rest)."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.settings import Settings
from tests.helpers.phone import (
    Recorder,
    StatusWatch,
    engine_call,
    new_number,
    recordings_of,
    start_session,
    take,
    when_not_recording,
    when_recording,
)
from tests.helpers.vr import Dev, Vr, as_list

__all__ = ["Recorder", "StatusWatch", "engine_call", "new_number", "recordings_of",
           "start_session", "take", "when_not_recording", "when_recording"]


@pytest.fixture
async def make_recorder(api: TestClient, pool: asyncpg.Pool, settings: Settings):  # type: ignore[no-untyped-def]
    """A developer's recorder with options; each gets its own number (dedicated numbers for
    call-initiated ones must be free; API-initiated ones share the least used)."""

    async def make(**options: Any) -> Recorder:
        await new_number(pool, settings)
        username, password = "ph" + secrets.token_hex(4), secrets.token_urlsafe(12)
        vr = Vr(api, Dev(username, password, ""))
        await vr.ok("CreateDeveloper")
        tree = await vr.ok("CreateVoiceRecorder", "json", **options)
        recorder = tree["voice_recorder"]
        dev = Dev(username, password, recorder["voice_recorder_key"])
        number = as_list(recorder["phone_number_list"]["phone_number_info"])[0]["phone_number"]
        return Recorder(Vr(api, dev), dev.recorder_key, number,
                        recorder.get("callback_secret", ""))

    return make
