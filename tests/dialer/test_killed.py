"""Killing `ivr dialer run` (SIGKILL) mid-job and starting it again completes the job: no
destination is called twice and none is missed (counted where the calls arrive); the calls in
progress at the kill are recorded as interrupted, not dialled again. The job postback, written
by the restarted process as it settles the last call, is posted once all the same (by this
process's delivery outbox: it needs nothing of the process that wrote it)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys

import asyncpg

from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from ivr.settings import REPO_ROOT, Settings
from tests.conftest import free_port, start_serve
from tests.dialer.conftest import Account, Far, People, Postbacks, eventually, job_done

CALLS = 40


async def start_dialer(settings: Settings, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "IVR_DATABASE_URL": settings.database_url,
           "IVR_HTTP_PORT": str(port), "IVR_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "IVR_DATA_DIR": str(settings.data_dir), "IVR_DIALER_CPS": "10",
           "IVR_DIALER_CHANNELS": "10", "IVR_DIALER_LEASE": "2",
           "IVR_DIALER_APP": f"ivr-dkill-{port}"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "dialer", "run", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def test_killed_worker_neither_calls_twice_nor_misses_anyone(
    people: People, far: Far, account: Account, dialer: Dialer, settings: Settings,
    pool: asyncpg.Pool, postbacks: Postbacks,
) -> None:
    numbers = [people.answers(hold=1.5) for _ in range(CALLS)]
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from the kill test"),
        destinations=[Destination(n) for n in numbers], callback_url=postbacks.url))
    port = free_port()
    first = await start_dialer(settings, port)
    try:
        # Killed as the 15th call arrives: ~10 calls are in progress, 25 queued. (A kill in
        # the milliseconds between a claim's commit and the channel's creation would leave
        # one call recorded interrupted without ringing: docs/broadcast.md, "The dialer".)
        await far.wait_count(15, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    at_kill = len(far.arrivals)
    in_flight = await pool.fetchval(
        "SELECT count(*) FROM dialer_calls WHERE job_id = $1 AND state = 'dialing'",
        created.job_id)
    assert in_flight > 0
    second = await start_dialer(settings, port)
    try:
        await eventually(lambda: job_done(pool, created.job_id), timeout=60, every=0.25)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    assert at_kill < CALLS
    arrived = [a.number for a in far.arrivals]
    assert sorted(arrived) == sorted(numbers)  # each exactly once: none twice, none missed
    rows = await pool.fetch("SELECT state, outcome FROM dialer_calls WHERE job_id = $1",
                            created.job_id)
    assert {r["state"] for r in rows} == {"done"}
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("interrupted") == in_flight
    assert outcomes.count("answered") == CALLS - in_flight
    whole = await postbacks.wait_job(str(created.job_id))
    assert sorted(d["to"] for d in whole["data"]) == sorted(numbers)
    assert [d["error_description"] for d in whole["data"]].count("INTERRUPTED") == in_flight
    await asyncio.sleep(1.0)  # a second one would have come by now
    assert len(postbacks.jobs(str(created.job_id))) == 1


async def test_ivr_serve_runs_the_dialer(people: People, far: Far, account: Account,
                                         dialer: Dialer, settings: Settings,
                                         pool: asyncpg.Pool) -> None:
    numbers = [people.answers(hold=0.3), people.answers(hold=0.3)]
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from ivr serve"),
        destinations=[Destination(n) for n in numbers]))
    port = free_port()
    served = dataclasses.replace(settings, http_port=port, public_url=f"http://127.0.0.1:{port}")
    proc = await start_serve(served, IVR_ARI_APP=f"ivr-dserve-{port}", IVR_DIALER_CPS="10")
    try:
        await eventually(lambda: job_done(pool, created.job_id), timeout=30, every=0.25)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert sorted(a.number for a in far.arrivals) == sorted(numbers)
    outcomes = await pool.fetch("SELECT outcome FROM dialer_calls WHERE job_id = $1",
                                created.job_id)
    assert [r["outcome"] for r in outcomes] == ["answered", "answered"]
