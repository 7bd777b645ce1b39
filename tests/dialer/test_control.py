"""Pause / resume / cancel / delete pending through the API, retries of busy and unanswered
calls, calling hours and the do-not-call list, each against the real Asterisk."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from ivr.dialer.accounts import Accounts
from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from tests.dialer.conftest import (
    Account,
    Far,
    People,
    Postbacks,
    StartWorker,
    eventually,
    job_done,
)
from tests.telephony_harness import Engine

JOBS = "/voice-broadcast/v1/jobs"
TTS = {"tts_text": "Hello, this is the control test"}


async def call(http: aiohttp.ClientSession, method: str, path: str, account: Account,
               body: Any = None) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, json=body, headers=account.headers) as resp:
        return resp.status, await resp.json()


async def states(pool: asyncpg.Pool, job_id: str) -> dict[str, str]:
    rows = await pool.fetch("SELECT number, state FROM dialer_calls WHERE job_id = $1",
                            uuid.UUID(job_id))
    return {r["number"]: r["state"] for r in rows}


async def test_pause_and_resume(engine: Engine, people: People, far: Far, account: Account,
                                start_worker: StartWorker, pool: asyncpg.Pool) -> None:
    numbers = [people.answers(hold=0.3) for _ in range(6)]
    await start_worker(dialer_cps=2)
    async with aiohttp.ClientSession(engine.url) as http:
        status, made = await call(http, "POST", JOBS, account, {
            "destinations": [{"number": n} for n in numbers], "voice_content": TTS})
        assert status == 200
        job = f"{JOBS}/{made['api_job_id']}"
        await far.wait_count(2, timeout=10)
        status, paused = await call(http, "POST", f"{job}/pause", account)
        assert status == 200 and paused["state"] == "paused"
        at_pause = len(far.arrivals)
        await asyncio.sleep(1.5)  # two more slots at 2 calls/s: none may be used
        assert len(far.arrivals) <= at_pause + 1  # a call claimed just before the pause
        held = len(far.arrivals)
        await asyncio.sleep(1.0)
        assert len(far.arrivals) == held
        status, view = await call(http, "GET", job, account)
        assert view["state"] == "paused" and view["counts"]["queued"] >= 2
        assert 0 < view["progress"] < 1
        status, resumed = await call(http, "POST", f"{job}/resume", account)
        assert status == 200 and resumed["state"] == "active"
        await eventually(lambda: job_done(pool, made["api_job_id"]), timeout=20)
    assert sorted(a.number for a in far.arrivals) == sorted(numbers)


async def test_cancel(engine: Engine, people: People, far: Far, account: Account,
                      start_worker: StartWorker, pool: asyncpg.Pool) -> None:
    numbers = [people.answers(hold=0.3) for _ in range(5)]
    await start_worker(dialer_cps=1)
    async with aiohttp.ClientSession(engine.url) as http:
        status, made = await call(http, "POST", JOBS, account, {
            "destinations": [{"number": n} for n in numbers], "voice_content": TTS})
        await far.wait_count(1, timeout=10)
        status, cancelled = await call(http, "POST", f"{JOBS}/{made['api_job_id']}/cancel",
                                       account)
        assert status == 200 and cancelled["state"] == "cancelled"
        assert cancelled["cancelled_calls"] >= 3
        await eventually(lambda: job_done(pool, made["api_job_id"]), timeout=10)
        status, again = await call(http, "POST", f"{JOBS}/{made['api_job_id']}/resume", account)
        assert status == 403 and again["result_info"]["status_code"] == -101
    await asyncio.sleep(1.2)  # the next slot: nothing is dialled any more
    final = await states(pool, made["api_job_id"])
    assert list(final.values()).count("cancelled") == cancelled["cancelled_calls"]
    assert len(far.arrivals) == 5 - cancelled["cancelled_calls"]
    assert all(final[a.number] == "done" for a in far.arrivals)


async def test_delete_pending_call(engine: Engine, people: People, far: Far, account: Account,
                                   dialer: Dialer, start_worker: StartWorker,
                                   pool: asyncpg.Pool) -> None:
    numbers = [people.answers(hold=0.3) for _ in range(3)]
    async with aiohttp.ClientSession(engine.url) as http:
        status, made = await call(http, "POST", JOBS, account, {
            "destinations": [{"number": n} for n in numbers], "voice_content": TTS})
        job_id = uuid.UUID(made["api_job_id"])
        assert await dialer.pause(account.made.account, job_id)
        doomed = made["results"][numbers[1]]["message_id"]
        status, deleted = await call(http, "DELETE", f"/voice-broadcast/v1/messages/{doomed}",
                                     account)
        assert status == 200 and deleted["state"] == "deleted"
        assert await dialer.resume(account.made.account, job_id)
        await start_worker(dialer_cps=10)
        await eventually(lambda: job_done(pool, job_id), timeout=15)
        kept = made["results"][numbers[0]]["message_id"]
        status, refused = await call(http, "DELETE", f"/voice-broadcast/v1/messages/{kept}",
                                     account)
        assert status == 403 and refused["result_info"]["status_code"] == -101
        status, view = await call(http, "GET", f"/voice-broadcast/v1/messages/{doomed}",
                                  account)
        assert view["data"][0]["state"] == "deleted"
    assert sorted(a.number for a in far.arrivals) == sorted([numbers[0], numbers[2]])


async def test_busy_and_unanswered_calls_are_retried(
    people: People, far: Far, account: Account, dialer: Dialer, start_worker: StartWorker,
    pool: asyncpg.Pool, postbacks: Postbacks,
) -> None:
    busy, later, silent = people.busy(), people.busy_then_answers(), people.no_answer()
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from the retry test"),
        destinations=[Destination(busy), Destination(later), Destination(silent)],
        max_attempts=2, retry_delay=0.3, ring_timeout=2, callback_url=postbacks.url))
    await start_worker(dialer_cps=10)
    await eventually(lambda: job_done(pool, created.job_id), timeout=30)
    rows = {r["number"]: r for r in await pool.fetch(
        "SELECT number, outcome, attempts FROM dialer_calls WHERE job_id = $1", created.job_id)}
    assert (rows[busy]["outcome"], rows[busy]["attempts"]) == ("busy", 2)
    assert (rows[later]["outcome"], rows[later]["attempts"]) == ("answered", 2)
    assert (rows[silent]["outcome"], rows[silent]["attempts"]) == ("no_answer", 2)
    for number in (busy, later, silent):
        assert len(far.to(number)) == 2
    got = await postbacks.wait_for([c.message_id for c in created.calls])
    assert sorted(p["status"] for p in got.values()) == ["DELIVRD", "UNDELIV", "UNDELIV"]
    assert all(p["attempts"] == 2 for p in got.values())  # one postback per call, the last


async def test_calls_wait_for_calling_hours(people: People, far: Far, account: Account,
                                            dialer: Dialer, start_worker: StartWorker,
                                            pool: asyncpg.Pool) -> None:
    zone = "Asia/Tokyo"
    local = dt.datetime.now(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    closed = ((minute + 60) % 1440, (minute + 120) % 1440)  # opens in an hour
    accounts = Accounts(pool)
    await accounts.set_hours(account.made.account, closed, timezone=zone)
    number = people.answers(hold=0.3)
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from the hours test"),
        destinations=[Destination(number)]))
    await start_worker(dialer_cps=10)
    await asyncio.sleep(1.0)
    assert far.arrivals == []
    assert await pool.fetchval("SELECT state FROM dialer_calls WHERE job_id = $1",
                               created.job_id) == "queued"
    await accounts.set_hours(account.made.account, ((minute - 5) % 1440, (minute + 60) % 1440))
    await eventually(lambda: job_done(pool, created.job_id), timeout=10)
    assert [a.number for a in far.arrivals] == [number]


async def test_do_not_call_list(people: People, far: Far, account: Account, dialer: Dialer,
                                start_worker: StartWorker, pool: asyncpg.Pool,
                                postbacks: Postbacks) -> None:
    blocked, fine = people.answers(hold=0.3), people.answers(hold=0.3)
    await Accounts(pool).add_dnc(account.made.account, [blocked])
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from the list test"),
        destinations=[Destination(blocked, "b"), Destination(fine, "f")],
        callback_url=postbacks.url))
    await start_worker(dialer_cps=10)
    got = await postbacks.wait_for([c.message_id for c in created.calls])
    by_id = {p["client_message_id"]: p for p in got.values()}
    assert (by_id["b"]["status"], by_id["b"]["error_code"], by_id["b"]["error_description"]) \
        == ("UNDELIV", 4900, "DO_NOT_CALL")
    assert by_id["f"]["status"] == "DELIVRD"
    assert [a.number for a in far.arrivals] == [fine]


async def test_calls_end_properly_when_the_event_socket_drops(
    engine: Engine, people: People, far: Far, account: Account, dialer: Dialer,
    start_worker: StartWorker, pool: asyncpg.Pool,
) -> None:
    """The socket to Asterisk is cut while calls play, and the called people hang up at that
    moment: those events are lost. After the reconnect the dialer asks Asterisk (the channels
    are gone) and every call gets its outcome instead of waiting for ever."""
    numbers = [people.answers(hold=10) for _ in range(3)]
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello, this message plays while the socket drops"),
        destinations=[Destination(n) for n in numbers]))
    worker = await start_worker(dialer_cps=10)
    await far.wait_count(3, timeout=10)

    async def all_answered() -> bool:
        legs = list(worker.tel.legs.values())
        return len(legs) == 3 and all(leg.answered.done() for leg in legs)

    await eventually(all_answered, timeout=5, every=0.02)
    before = engine.tel.events.connections
    assert engine.proxy.drop_events() >= 1
    # Reconnecting takes at least 0.125 s (backoff): these hang-ups' events are lost.
    await asyncio.gather(*(engine.tel.ari.hangup(a.channel_id) for a in far.arrivals))
    await eventually(lambda: _reconnected(engine, before), timeout=5)
    await eventually(lambda: job_done(pool, created.job_id), timeout=20)
    rows = await pool.fetch("SELECT outcome, duration FROM dialer_calls WHERE job_id = $1",
                            created.job_id)
    assert [r["outcome"] for r in rows] == ["answered"] * 3
    assert sorted(a.number for a in far.arrivals) == sorted(numbers)


async def _reconnected(engine: Engine, before: int) -> bool:
    return engine.tel.events.connections > before and engine.tel.events.connected
