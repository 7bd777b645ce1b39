"""Stored audio is private (issue #20, host hygiene): a caller's take (its WAV, its original
and its MP3) and an uploaded prompt are 0640 in 0750 folders, even when the process umask
would let every user read them (they were 0644 in listable folders)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ivr.core.files import write_private
from ivr.media.prompts import prompt_path
from ivr.recorder.flow import RecorderFlow
from ivr.recorder.models import ORIGINAL, take_path
from ivr.settings import Settings
from tests.helpers.audio import padded
from tests.helpers.phone import start_session
from tests.helpers.scripted_call import Take
from tests.phone.test_flow_scripted import converse, flow  # noqa: F401  (the fixture)
from tests.recorder.test_accounts import wav_bytes


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The widest umask: whatever is private below is so because the code made it so."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(data_dir: Path, path: Path) -> None:
    assert mode(path) == 0o640, (path, oct(mode(path)))
    for folder in path.relative_to(data_dir).parents:
        if folder != Path("."):
            assert mode(data_dir / folder) == 0o750, (folder, oct(mode(data_dir / folder)))


def test_write_private_is_atomic_and_private(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "a" / "b" / "take.wav"
    write_private(target, b"one")
    write_private(target, b"two", fsync=False)
    assert target.read_bytes() == b"two"
    assert_private(tmp_path, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["take.wav"]  # no part left


async def test_a_kept_take_and_its_mp3_are_private(
    flow: RecorderFlow, make_recorder: Any, pool: asyncpg.Pool,  # noqa: F811
    settings: Settings, open_umask: None,
) -> None:
    rec = await make_recorder(audio_format="both")
    s = await start_session(rec, [None])
    await converse(flow, rec.number, [s["pin"] + "#", Take(padded(1.0, 1.0, gain_db=-10)), "9"])
    row = await pool.fetchrow(
        "SELECT r.play_key, t.take_number FROM recordings r"
        " JOIN takes t ON t.id = r.accepted_take_id WHERE r.recording_key = $1", s["keys"][0])
    for ext in ("wav", ORIGINAL, "mp3"):
        assert_private(settings.data_dir,
                       take_path(settings.data_dir, row["play_key"], row["take_number"], ext))


async def test_an_uploaded_prompt_is_private(
    make_recorder: Any, settings: Settings, open_umask: None
) -> None:
    rec = await make_recorder()
    data = aiohttp.FormData()
    for k, v in {"action": "UploadPrompt", "username": rec.vr.dev.username,
                 "password": rec.vr.dev.password, "voice_recorder_key": rec.key,
                 "prompt_name": "welcome", "reply": "json"}.items():
        data.add_field(k, v)
    data.add_field("prompt_file", wav_bytes(), filename="welcome.wav", content_type="audio/wav")
    resp = await rec.vr.api.post("/vr", data=data)
    assert (await resp.json())["MyVoxapi"]["status"] == "success"
    assert_private(settings.data_dir, prompt_path(settings.data_dir, rec.key, "welcome"))
