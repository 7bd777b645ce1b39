"""FastAGI end to end: `ivr serve` with IVR_AGI_LISTEN on a port of its own, and real calls
through the dialplan context `ivr-agi` (dialplan/ivr-agi.conf), which hands them over with
`AGI(agi://127.0.0.1:PORT/recorder,NUMBER)` as an operator's own dialplan would. The sessions
are started and read over /vr and /v1: through the API they look as ARI-voiced ones do."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.settings import Settings
from tests.conftest import free_port, start_serve
from tests.helpers.audio import audio
from tests.helpers.phone import recordings_of, start_session
from tests.helpers.serve import wait_for
from tests.telephony_harness import Caller, CallerLeg, wav_seconds

pytestmark = pytest.mark.asterisk

FOX, FOX_S = "speech-fox.wav", 4.27
SHORT, SHORT_S = "speech-short.wav", 1.71


@dataclasses.dataclass
class AgiEngine:
    port: int
    spool: Path
    log: Path  # what `ivr serve` wrote

    def variables(self) -> dict[str, str]:
        return {"IVR_AGI_PORT": str(self.port)}


@pytest.fixture(scope="module")
async def agi_engine(settings: Settings, asterisk: object,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgiEngine]:
    http_port, agi_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("agi") / "serve.log"
    proc = await start_serve(
        dataclasses.replace(settings, http_port=http_port,
                            public_url=f"http://127.0.0.1:{http_port}"),
        log_to=log, IVR_ARI_APP=f"ivr-agi-{http_port}", IVR_AGI_LISTEN=f"127.0.0.1:{agi_port}")
    try:
        yield AgiEngine(agi_port, settings.asterisk_root / "var/spool/asterisk/recording", log)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]


async def seconds_of(api: TestClient, url: str) -> float:
    """The stored take's length, read back through the API's audio link."""
    return wav_seconds(await audio(api, url))


async def session_id(pool: asyncpg.Pool, key: str) -> int:
    return int(await pool.fetchval("SELECT id FROM recording_sessions WHERE session_key = $1",
                                   key))


async def new_take(agi: AgiEngine, sid: int, seen: set[str], timeout: float = 20) -> str:
    """Once Asterisk writes a take of session `sid` not seen before (the beep has played)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        names = {p.stem for p in agi.spool.glob(f"take-{sid}-*.wav")} - seen
        if names:
            seen |= names
            return names.pop()
        await asyncio.sleep(0.02)
    raise AssertionError("no take recording started")


async def take(agi: AgiEngine, pool: asyncpg.Pool, leg: CallerLeg, sid: int, seen: set[str],
               speech: str, then: str) -> None:
    """One take as a caller makes it: after the beep, talk, #, and `then` once the review menu
    plays (the take is stored as it starts: AGI drops a key pressed while no prompt plays)."""
    name = await new_take(agi, sid, seen)
    await leg.say(speech)
    await leg.press("#")
    await wait_for(pool, "SELECT 1 FROM takes WHERE asterisk_name = $1", name, timeout=10)
    await asyncio.sleep(0.2)
    if then:
        await leg.press(then)


async def call_row(pool: asyncpg.Pool, leg: CallerLeg, timeout: float = 10) -> asyncpg.Record:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        row = await pool.fetchrow("SELECT * FROM calls WHERE channel_id = $1 AND ended_at IS NOT"
                                  " NULL", leg.id + ";2")
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("the call's row was not closed")


async def pin_two_takes_review_rerecord(agi: AgiEngine, caller: Caller, rec: Any,
                                        pool: asyncpg.Pool, api: TestClient) -> None:
    s = await start_session(rec, [None, None])
    sid = await session_id(pool, s["session_key"])
    leg = await caller.dial(rec.number, caller_id="5558880001", context="ivr-agi",
                            variables=agi.variables())
    await leg.press(s["pin"] + "#")
    seen: set[str] = set()
    # Recording 1: a take, record again (3), keep the second (1); recording 2: keep, done (9).
    await take(agi, pool, leg, sid, seen, FOX, then="3")
    await take(agi, pool, leg, sid, seen, SHORT, then="1")
    await take(agi, pool, leg, sid, seen, FOX, then="9")
    assert await leg.wait_hangup(20), "the engine hangs up after goodbye"
    recordings = await recordings_of(rec, s["list_key"])
    for key, seconds in zip(s["keys"], (SHORT_S, FOX_S), strict=True):
        r = recordings[key]
        assert r["recording_state"] == "recorded", r
        assert abs(await seconds_of(api, r["wav_url"]) - seconds) < 0.5, r
        assert r["caller_id"] == "5558880001"
    takes = await pool.fetch(
        "SELECT t.take_number, t.status FROM takes t JOIN recordings r ON r.id = t.recording_id"
        " WHERE r.recording_key = $1 ORDER BY take_number", s["keys"][0])
    assert [(t["take_number"], t["status"]) for t in takes] == [(1, "discarded"),
                                                               (2, "accepted")]
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "ended"
    row = await call_row(pool, leg)
    assert (row["flow"], row["outcome"], row["dialed"]) == ("recorder", "completed", rec.number)
    assert not list(agi.spool.glob(f"take-{sid}-*.wav")), "Asterisk's copies are deleted"


async def hang_up_mid_take(agi: AgiEngine, caller: Caller, rec: Any,
                           pool: asyncpg.Pool, api: TestClient) -> None:
    s = await start_session(rec, [None], caller_id="5558880002")
    sid = await session_id(pool, s["session_key"])
    leg = await caller.dial(rec.number, caller_id="5558880002", context="ivr-agi",
                            variables=agi.variables())
    await new_take(agi, sid, set())  # caller id: no PIN
    await leg.say(FOX)
    await leg.hangup()
    row = await call_row(pool, leg)
    assert row["outcome"] == "caller hung up"
    r = (await recordings_of(rec, s["list_key"]))[s["keys"][0]]
    assert r["recording_state"] == "recorded" and r["kept_on_hangup"] is True, r
    assert abs(await seconds_of(api, r["wav_url"]) - FOX_S) < 0.5, r


async def hang_up_during_a_command(agi: AgiEngine, caller: Caller, rec: Any,
                                   pool: asyncpg.Pool) -> None:
    """The caller hangs up while WAIT FOR DIGIT (the PIN) runs: the flow ends as on ARI."""
    s = await start_session(rec, [None])
    leg = await caller.dial(rec.number, caller_id="5558880003", context="ivr-agi",
                            variables=agi.variables())
    await leg.press("1")
    await asyncio.sleep(0.5)
    await leg.hangup()
    row = await call_row(pool, leg)
    assert (row["flow"], row["outcome"]) == ("recorder", "caller hung up")
    status = await rec.vr.ok("GetSessionStatus", "json", recording_session_key=s["session_key"])
    assert status["session_state"] == "created"


async def test_sessions_over_fastagi(agi_engine: AgiEngine, caller: Caller, make_recorder: Any,
                                     pool: asyncpg.Pool, api: TestClient) -> None:
    """Independent calls, at once: a PIN session with two takes, review and re-record; a
    hang-up mid-take that keeps what was recorded; a hang-up during an AGI command."""
    recs = [await make_recorder() for _ in range(3)]
    await asyncio.gather(
        pin_two_takes_review_rerecord(agi_engine, caller, recs[0], pool, api),
        hang_up_mid_take(agi_engine, caller, recs[1], pool, api),
        hang_up_during_a_command(agi_engine, caller, recs[2], pool),
    )


async def test_line_check_and_unknown_number(agi_engine: AgiEngine, caller: Caller,
                                             pool: asyncpg.Pool) -> None:
    """/linecheck records the caller and plays the take back; a number no recorder has is
    not in service."""
    check = await caller.dial("9999", context="ivr-agi", variables=agi_engine.variables())
    unknown = await caller.dial("4440001", context="ivr-agi", variables=agi_engine.variables())
    name = f"linecheck-{check.id};2"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not (agi_engine.spool / f"{name}.wav").exists():
        assert loop.time() < deadline, "the line check did not record"
        await asyncio.sleep(0.02)
    await check.say(SHORT)
    await check.press("#")
    assert await check.wait_hangup(15), "played back, goodbye, hung up"
    assert await unknown.wait_hangup(15)
    row = await call_row(pool, unknown)
    assert (row["flow"], row["outcome"]) == ("not-in-service", "completed")
    row = await call_row(pool, check)
    assert (row["flow"], row["outcome"]) == ("linecheck", "completed")
    assert not (agi_engine.spool / f"{name}.wav").exists(), "the line check's take is deleted"
