"""The README's softphone walk-through, as written: its shell blocks, read from README.md itself,
run by bash against a real `ivr serve` (on a database of its own, from nothing) and the real
Asterisk, with baresip calling over SIP through the softphone account."""

from __future__ import annotations

import asyncio
import audioop
import dataclasses
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from ivr.core import db
from ivr.settings import REPO_ROOT, Settings
from ivr.telephony.rest import AriClient
from tests.conftest import free_port, start_serve
from tests.telephony_harness import wav_seconds

pytestmark = pytest.mark.asterisk

README = REPO_ROOT / "README.md"


def shell_blocks(heading: str) -> list[str]:
    """The ```sh blocks of the README section under `heading`, up to the next heading (a `#`
    line inside a block is a shell comment, not a heading)."""
    blocks: list[str] = []
    fence: list[str] | None = None  # the lines of the block being read
    keep = inside = found = False
    for line in README.read_text().splitlines():
        if fence is not None:
            if line.startswith("```"):
                if keep:
                    blocks.append("\n".join(fence) + "\n")
                fence = None
            else:
                fence.append(line)
        elif line.startswith("```"):
            fence, keep = [], inside and line.strip() == "```sh"
        elif line.startswith("#"):
            inside = line.lstrip("#").strip() == heading
            found = found or inside
    assert found, f"README.md has no section {heading!r}"
    assert blocks, f"README.md's section {heading!r} has no sh block"
    return blocks


@dataclass
class Checkout:
    """Where the README's commands run: a folder that looks like the repository (its .venv,
    tests and .env linked in) with a HOME of its own (no ~/.baresip), so what they write
    stays here. The environment points the commands at the served instance."""

    dir: Path
    env: dict[str, str]
    database_url: str

    async def run(self, script: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", script, cwd=self.dir, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, f"the README's block failed ({proc.returncode}):\n{text}"
        return text


@pytest.fixture
async def checkout(
    settings: Settings, asterisk: object, ari: AriClient, engine_lock: None, tmp_path: Path
) -> AsyncIterator[Checkout]:
    # SIP calls from the softphone account go to the dialplan's IVR_APP: while this test
    # owns the Stasis app (engine_lock), that is the served instance's app.
    port = free_port()
    app = f"ivr-readme-{port}"
    url = db.with_database(settings.database_url, f"ivr_readme_{os.getpid()}_"
                           f"{secrets.token_hex(3)}")
    await db.prepare_database(url)
    served = dataclasses.replace(settings, database_url=url, http_port=port,
                                 public_url=f"http://127.0.0.1:{port}")
    before = {name: await ari.get_global_var(name) for name in ("IVR_APP", "IVR_SHARDS")}
    await ari.set_global_var("IVR_APP", app)
    proc = None
    try:
        proc = await start_serve(served, IVR_ARI_APP=app)
        home = tmp_path / "home"
        home.mkdir()
        for name in (".venv", "tests", ".env"):
            (tmp_path / name).symlink_to(REPO_ROOT / name)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
               "IVR_DATABASE_URL": url, "IVR_HTTP_PORT": str(port)}
        yield Checkout(tmp_path, env, url)
    finally:
        if proc is not None:
            proc.terminate()
            await proc.wait()
        for name, value in before.items():
            await ari.set_global_var(name, value)
        await db.drop_database(url)


def speech_rms(path: Path) -> int:
    data = path.read_bytes()
    return audioop.rms(data[44:], 2)


async def test_the_readme_softphone_walkthrough_runs_as_written(checkout: Checkout) -> None:
    (line_check,) = shell_blocks("Calling it from a softphone")
    await checkout.run(line_check)
    heard = checkout.dir / "var" / "line-check.wav"
    # The greeting, the beep, the take played back, goodbye: what the softphone heard.
    assert wav_seconds(heard.read_bytes()) > 11
    assert speech_rms(heard) > 200

    (walkthrough,) = shell_blocks("Record a session by phone, from nothing")
    out = await checkout.run(walkthrough)
    assert out.rstrip().splitlines()[-1] == "ended", out
    assert "keying 9 key(s)" in out
    assert not re.search(r"(?<!\d)\d{6}(?!\d)", out), "the PIN is not shown"
    conn = await asyncpg.connect(checkout.database_url)
    try:
        states = [r["state"] for r in await conn.fetch("SELECT state FROM recording_sessions")]
        takes = await conn.fetch("SELECT status FROM takes")
    finally:
        await conn.close()
    assert states == ["ended"], out
    assert [t["status"] for t in takes] == ["accepted"], out
    take = checkout.dir / "var" / "take.wav"
    assert wav_seconds(take.read_bytes()) > 3, out
    assert speech_rms(take) > 200, "the take holds the softphone's speech"
