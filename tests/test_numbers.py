"""The operator's phone numbers: validated and stored in E.164 (`ivr number add`), removed
(`ivr number remove`), reached in whatever form a trunk or softphone dials them, shown as
dialable; and a fresh install's development number (IVR_DEV_NUMBER) with `ivr db up`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import create_app
from ivr.cli import banner, cmd_env_init
from ivr.core import db
from ivr.core.errors import ConfigError, InvalidParameter
from ivr.recorder.errors import NumberInUse
from ivr.recorder.numbers import Numbers, dial_forms
from ivr.recorder.phone import RecorderPhone
from ivr.settings import REPO_ROOT, Settings
from tests.helpers.vr import Dev, Vr, as_list, fresh_number
from tests.telephony_harness import Caller, Engine


@dataclasses.dataclass
class Fresh:
    """A database of its own, as on a fresh install: no numbers but the test's."""

    url: str
    pool: asyncpg.Pool
    api: TestClient
    settings: Settings


@pytest.fixture
async def fresh(settings: Settings) -> AsyncIterator[Fresh]:
    url = db.with_database(settings.database_url, f"ivr_numbers_{secrets.token_hex(4)}")
    await db.prepare_database(url)
    pool = await db.create_pool(url, min_size=1, max_size=4)
    own = dataclasses.replace(settings, database_url=url)
    api = TestClient(TestServer(create_app(own, with_telephony=False), host="127.0.0.1"))
    await api.start_server()
    try:
        yield Fresh(url, pool, api, own)
    finally:
        await api.close()
        await pool.close()
        await db.drop_database(url)


async def ivr(url: str, *args: str, **env: str) -> tuple[int, str]:
    """The `ivr` command on that database: (exit status, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", *args, cwd=REPO_ROOT,
        env={**os.environ, "IVR_DATABASE_URL": url, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def developer(api: TestClient, **recorder: Any) -> tuple[Vr, dict[str, Any]]:
    vr = Vr(api, Dev("num" + secrets.token_hex(4), secrets.token_urlsafe(12), ""))
    await vr.ok("CreateDeveloper")
    tree = await vr.ok("CreateVoiceRecorder", "json", **recorder)
    vr.dev.recorder_key = tree["voice_recorder"]["voice_recorder_key"]
    return vr, tree["voice_recorder"]


def numbers_of(recorder: dict[str, Any]) -> list[str]:
    return [n["phone_number"] for n in as_list(recorder["phone_number_list"]["phone_number_info"])]


# --- adding -----------------------------------------------------------------------------------
async def test_numbers_are_validated_and_stored_in_e164(fresh: Fresh) -> None:
    code, out = await ivr(fresh.url, "number", "add", "123")
    assert code == 1
    assert "'123' is not a valid phone number in US" in out and "+15125550100" in out
    numbers = Numbers(fresh.pool)
    assert await numbers.list() == []

    n = await numbers.add("5125550100", None)
    assert (n.number, n.display_number, n.country) == ("+15125550100", "+1 512-555-0100", "US")
    for same in ("15125550100", "+15125550100", "+1 (512) 555-0100", "1-512-555-0100"):
        with pytest.raises(InvalidParameter, match=r"number \+15125550100 exists"):
            await numbers.add(same, "another label")
    # Another country: as dialled there, or international; its own region is kept.
    uk = await numbers.add("020 7183 8750", "London", "GB")
    assert (uk.number, uk.country) == ("+442071838750", "GB")
    with pytest.raises(InvalidParameter, match="exists"):
        await numbers.add("+44 20 7183 8750", None, "US")
    with pytest.raises(InvalidParameter, match="country 'XX'"):
        await numbers.add("5125550101", None, "XX")
    code, out = await ivr(fresh.url, "number", "add", "1 512 555 0102", "--display",
                          "512-555-0102")
    assert code == 0 and "number +15125550102 (512-555-0102, US) added" in out
    code, out = await ivr(fresh.url, "number", "list")
    assert [line.split("\t")[1] for line in out.splitlines()] == [
        "+15125550100", "+15125550102", "+442071838750"]


async def test_numbers_stored_before_e164_are_normalised(settings: Settings) -> None:
    url = db.with_database(settings.database_url, f"ivr_numbers_{secrets.token_hex(4)}")
    await db.ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        before = [m for m in db.load_migrations() if m.version < 18]
        await db.migrate(conn, before)
        for key, number, country in [("a", "5125550100", "US"), ("b", "15125550100", "US"),
                                     ("c", "15125550101", "US"), ("d", "442071838750", "GB"),
                                     ("e", "1000", "US")]:
            await conn.execute("INSERT INTO phone_numbers (phone_number_key, number,"
                               " display_number, country) VALUES ($1, $2, $2, $3)",
                               key, number, country)
        await db.migrate(conn)
        rows = await conn.fetch("SELECT phone_number_key, number, dial_forms FROM phone_numbers"
                                " ORDER BY phone_number_key")
        # The older of two rows that are one number becomes E.164; the other keeps its form.
        assert [(r["phone_number_key"], r["number"], r["dial_forms"]) for r in rows] == [
            ("a", "+15125550100", dial_forms("+15125550100")),
            ("b", "15125550100", ["15125550100"]),
            ("c", "+15125550101", dial_forms("+15125550101")),
            ("d", "442071838750", ["442071838750"]),
            ("e", "1000", ["1000"]),
        ]
    finally:
        await conn.close()
        await db.drop_database(url)


# --- what callers dial ------------------------------------------------------------------------
async def test_every_form_of_a_number_reaches_it(fresh: Fresh) -> None:
    await Numbers(fresh.pool).add("5125550100", "512-555-0100")
    await Numbers(fresh.pool).add("+442071838750", None)
    _, recorder = await developer(fresh.api)
    (number,) = numbers_of(recorder)
    assert number == "+15125550100"
    phone = RecorderPhone(fresh.pool, fresh.settings.data_dir)
    for dialled in ("+15125550100", "15125550100", "5125550100"):
        route = await phone.route(dialled)
        assert route is not None and route.number.number == "+15125550100", dialled
        assert [r.recorder_key for r in route.recorders] == [recorder["voice_recorder_key"]]
    for other in ("5125550199", "+5125550100", "125550100", "9999"):
        assert await phone.route(other) is None, other
    assert dial_forms("+442071838750") == ["+442071838750", "442071838750", "02071838750",
                                           "2071838750"]


@pytest.mark.asterisk
async def test_a_call_in_any_form_reaches_the_recorder(
        engine: Engine, caller: Caller, api: TestClient, pool: asyncpg.Pool,
        settings: Settings) -> None:
    await Numbers(pool).add(fresh_number("830"), None)
    _, recorder = await developer(api, initiation="call", identification="caller_id",
                                  lookup_mode="lookup")
    (number,) = numbers_of(recorder)
    assert number.startswith("+1")
    for dialled in (number, number[1:], number[2:]):
        leg = await caller.dial(dialled, caller_id="5558880042")
        flow = None
        for _ in range(50):
            flow = await pool.fetchval(
                "SELECT flow FROM calls WHERE dialed = $1 AND direction = 'inbound'"
                " ORDER BY started_at DESC LIMIT 1", dialled)
            if flow is not None:
                break
            await asyncio.sleep(0.1)
        assert flow == "recorder-call-in", dialled
        await leg.hangup()


async def test_the_console_and_the_api_show_the_number_to_dial(fresh: Fresh) -> None:
    await Numbers(fresh.pool).add("15125550100", "512-555-0100")
    vr, _ = await developer(fresh.api)
    lk = (await vr.ok("CreateRecordingList", "json"))["recording_list"]["recording_list_key"]
    rk = (await vr.ok("CreateRecording", "json", recording_list_key=lk))["recording"][
        "recording_key"]
    start = await vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                        recording_keys=rk)
    (info,) = as_list(start["phone_number_list"]["phone_number_info"])
    assert (info["phone_number"], info["display_number"]) == ("+15125550100", "512-555-0100")

    page = await fresh.api.get("/console/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    signed = await fresh.api.post("/console/signin", data={
        "csrf_token": token.group(1), "next": "/console/recorders",
        "username": vr.dev.username, "password": vr.dev.password})
    assert signed.status == 200 and signed.url.path == "/console/recorders"
    html = await (await fresh.api.get(
        f"/console/sessions/{start['recording_session_key']}")).text()
    dial = re.search(r'id="dial-number">([^<]*)<', html)
    assert dial is not None and dial.group(1) == "+15125550100"
    assert "512-555-0100" in html  # the label, beside it


# --- removing ---------------------------------------------------------------------------------
async def test_remove_refuses_a_number_in_use_unless_forced(fresh: Fresh) -> None:
    numbers = Numbers(fresh.pool)
    first = await numbers.add("5125550100", None)
    vr, recorder = await developer(fresh.api)
    assert numbers_of(recorder) == [first.number]
    lk = (await vr.ok("CreateRecordingList", "json"))["recording_list"]["recording_list_key"]
    rk = (await vr.ok("CreateRecording", "json", recording_list_key=lk))["recording"][
        "recording_key"]
    await vr.ok("StartRecordingSession", "json", recording_list_key=lk, recording_keys=rk)
    second = await numbers.add("5125550101", None)
    _, dedicated = await developer(fresh.api, initiation="call")
    assert numbers_of(dedicated) == [second.number]
    third = await numbers.add("5125550102", None)

    with pytest.raises(NumberInUse) as refused:
        await numbers.remove("15125550100", force=False)
    message = refused.value.message
    assert f"given to 1 voice recorder(s) ({vr.dev.recorder_key})" in message
    assert "1 live session(s)" in message and "--force" in message
    assert len(await numbers.list()) == 3  # nothing changed
    code, out = await ivr(fresh.url, "number", "remove", "5125550100")
    assert code == 1 and "ivr number remove +15125550100 --force" in out

    code, out = await ivr(fresh.url, "number", "remove", "5125550100", "--force")
    assert code == 0, out
    assert "number +15125550100 removed" in out
    assert f"voice recorder {vr.dev.recorder_key} now has number {third.number}" in out
    assert "1 live session(s) can no longer be called on it" in out
    got = (await vr.ok("GetVoiceRecorder", "json"))["voice_recorder"]
    assert numbers_of(got) == [third.number]

    # A call-initiated recorder needs a free number of its own: none is left for it.
    with pytest.raises(NumberInUse):
        await numbers.remove("+15125550101", force=False)
    removal = await numbers.remove("+15125550101", force=True)
    assert removal.stranded == [dedicated["voice_recorder_key"]]
    assert removal.moved == []
    assert [n.number for n, _, _ in await numbers.list()] == [third.number]
    with pytest.raises(Exception, match=r"no phone number \+15125550101"):
        await numbers.remove("+15125550101", force=True)


# --- a fresh install --------------------------------------------------------------------------
async def test_a_fresh_install_has_a_number_for_recorders(fresh: Fresh, tmp_path: Path) -> None:
    vr = Vr(fresh.api, Dev("num" + secrets.token_hex(4), secrets.token_urlsafe(12), ""))
    await vr.ok("CreateDeveloper")
    tree = await vr.fail("CreateVoiceRecorder", 1201)
    assert ("the operator adds one with `ivr number add NUMBER` "
            "(e.g. `ivr number add +15125550100`)") in tree["error_details"]
    tree = await vr.fail("CreateVoiceRecorder", 1201, initiation="call")
    assert "`ivr number add NUMBER`" in tree["error_details"]

    # The development .env (`ivr env init`, as `make run` writes it) has a number ...
    env = tmp_path / ".env"
    cmd_env_init(type("Args", (), {"file": str(env)})())
    loaded = Settings.load(env={}, env_file=env)
    assert loaded.dev_number == "+15125550100"
    # ... that `ivr db up` (run by `make run`) adds, once.
    for said in ("added for voice recorders", "is there for voice recorders"):
        code, out = await ivr(fresh.url, "db", "up", IVR_DEV_NUMBER=loaded.dev_number)
        assert code == 0, out
        assert f"development number +15125550100 (IVR_DEV_NUMBER) {said}" in out
    tree = await vr.ok("CreateVoiceRecorder", "json")
    assert numbers_of(tree["voice_recorder"]) == ["+15125550100"]

    # The banner says what to dial, or how to get a number.
    shown = banner(loaded, "9999", ["+15125550100"])
    assert "dial +15125550100 (IVR_DEV_NUMBER) for voice recorders" in shown
    assert "sip:+15125550100@127.0.0.1:5060" in shown
    assert "ivr number add +15125550100" in banner(loaded, "9999", [])
    with pytest.raises(ConfigError, match="IVR_DEV_NUMBER must be a valid phone number"):
        Settings.load(env={"IVR_DEV_NUMBER": "123"}, env_file=env)
