"""The job postback (seed 003: "the specific job alongside all its appertaining calls"): once
every call of a job has its outcome, one signed postback whose `data` holds all of them, sent
once; a cancelled job's too. The job is created with the seed's own field names (`job_id`,
`tts_voice`, `tts_lang`), which the postbacks echo."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg

from tests.dialer.conftest import Account, People, Postbacks, StartWorker, eventually, job_done
from tests.telephony_harness import Engine

JOBS = "/voice-broadcast/v1/jobs"


async def create(http: aiohttp.ClientSession, account: Account, body: dict[str, Any]
                 ) -> dict[str, Any]:
    async with http.post(JOBS, json=body, headers=account.headers) as resp:
        assert resp.status == 200, await resp.text()
        made: dict[str, Any] = await resp.json()
        return made


async def outbox_states(pool: asyncpg.Pool, job_id: str) -> list[str]:
    rows = await pool.fetch("SELECT state FROM outbox WHERE stream = $1",
                            f"dialer-job:{job_id}")
    return [r["state"] for r in rows]


async def test_one_job_postback_with_every_call_once_all_have_finished(
    engine: Engine, people: People, account: Account, postbacks: Postbacks,
    start_worker: StartWorker, pool: asyncpg.Pool,
) -> None:
    answers, busy = people.answers(hold=1.0), people.busy()
    await start_worker(dialer_cps=10)
    async with aiohttp.ClientSession(engine.url) as http:
        made = await create(http, account, {
            "job_id": "job-7654321",
            "destinations": [{"number": answers, "custom_id": "a"}, {"number": busy}],
            "voice_content": {"tts_text": "Hello, this is the job postback test",
                              "tts_voice": "WOMAN", "tts_lang": "en-GB"},
            "callback_url": postbacks.url})
    assert made["client_job_id"] == "job-7654321"
    api_job_id = made["api_job_id"]
    ids = {n: r["message_id"] for n, r in made["results"].items()}

    calls = await postbacks.wait_for(list(ids.values()), timeout=40)
    whole = await postbacks.wait_job(api_job_id, timeout=30)
    assert await job_done(pool, uuid.UUID(api_job_id))
    assert whole["api_job_id"] == api_job_id and whole["client_job_id"] == "job-7654321"
    # Every call, in the order given, each entry as its own postback had it.
    assert [d["message_id"] for d in whole["data"]] == [ids[answers], ids[busy]]
    assert whole["data"] == [calls[ids[answers]], calls[ids[busy]]]
    ok, b = whole["data"]
    assert (ok["status"], ok["client_message_id"], ok["to"]) == ("DELIVRD", "a", answers)
    assert (b["status"], b["error_description"]) == ("UNDELIV", "USER_BUSY")
    assert (ok["tts_voice"], ok["tts_lang"]) == ("WOMAN", "en-GB")
    assert postbacks.bad_signatures == 0

    await asyncio.sleep(1.0)  # a second one would have come by now
    assert len(postbacks.jobs(api_job_id)) == 1
    assert await outbox_states(pool, api_job_id) == ["delivered"]


async def test_a_cancelled_job_posts_its_calls_as_cancelled(
    engine: Engine, people: People, account: Account, postbacks: Postbacks,
    pool: asyncpg.Pool,
) -> None:
    numbers = [people.answers(), people.answers()]  # no worker runs: nobody is dialled
    async with aiohttp.ClientSession(engine.url) as http:
        made = await create(http, account, {
            "destinations": [{"number": n} for n in numbers],
            "voice_content": {"tts_text": "Hello, this is never heard"},
            "callback_url": postbacks.url})
        api_job_id = made["api_job_id"]
        async with http.post(f"{JOBS}/{api_job_id}/cancel", headers=account.headers) as resp:
            assert resp.status == 200, await resp.text()
    whole = await postbacks.wait_job(api_job_id)
    assert whole["client_job_id"] is None
    assert [(d["to"], d["status"]) for d in whole["data"]] == [
        (n, "CANCELLED") for n in numbers]
    await eventually(lambda: _delivered(pool, api_job_id))


async def _delivered(pool: asyncpg.Pool, api_job_id: str) -> bool:
    return await outbox_states(pool, api_job_id) == ["delivered"]
