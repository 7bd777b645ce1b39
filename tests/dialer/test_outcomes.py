"""A job through the seed-003 API to destinations that answer (and press a key), are busy and
do not answer: each outcome arrives as a signed postback shaped like the seed's, the job and
message queries agree, and the called side saw the sender id."""

from __future__ import annotations

import aiohttp
import asyncpg

from tests.dialer.conftest import Account, Far, People, Postbacks, StartWorker, eventually, job_done
from tests.telephony_harness import Engine

SENDER = "35699000000"


async def test_answered_busy_and_unanswered_calls_post_their_outcomes(
    engine: Engine, people: People, far: Far, account: Account, postbacks: Postbacks,
    start_worker: StartWorker, pool: asyncpg.Pool,
) -> None:
    answers, busy, silent = people.answers(hold=3.0, press="5"), people.busy(), people.no_answer()
    await start_worker(dialer_cps=10)
    body = {
        "client_job_id": "job-1234567",
        "destinations": [{"number": answers, "custom_id": "a"}, {"number": busy, "custom_id": "b"},
                         {"number": f"+{silent}"}],
        "voice_content": {"tts_text": "Hello, this is a test message", "voice": "WOMAN",
                          "language": "en-GB"},
        "sender_id": SENDER, "callback_url": postbacks.url, "enable_menu_response": True,
        "ring_timeout": 11,
    }
    async with aiohttp.ClientSession(engine.url) as http:
        async with http.post("/voice-broadcast/v1/jobs", json=body,
                             headers=account.headers) as resp:
            assert resp.status == 200, await resp.text()
            created = await resp.json()
        assert created["result_info"] == {
            "status_code": 0,
            "description": "Job has been queued, Please check the progress via the HTTP Postbacks"}
        assert created["client_job_id"] == "job-1234567"
        results = created["results"]
        assert set(results) == {answers, busy, silent}
        assert results[answers]["custom_id"] == "a" and "custom_id" not in results[silent]
        ids = {n: r["message_id"] for n, r in results.items()}
        assert all(len(m) == 20 and m.isdigit() for m in ids.values())

        got = await postbacks.wait_for(list(ids.values()), timeout=40)
        ok, b, na = got[ids[answers]], got[ids[busy]], got[ids[silent]]
        assert ok["status"] == "DELIVRD" and ok["error_code"] == 0
        assert ok["menu_response"] == "5"
        assert ok["client_message_id"] == "a" and ok["to"] == answers and ok["from"] == SENDER
        assert ok["job_type"] == "TTS" and ok["tts_voice"] == "WOMAN" and ok["tts_lang"] == "en-GB"
        assert ok["tts_text"] == "Hello, this is a test message"
        assert isinstance(ok["answer_date"], int) and ok["hang_date"] >= ok["answer_date"]
        assert ok["actual_duration"] >= 1 and ok["billed_duration"] == ok["actual_duration"]
        assert len(str(ok["micro_timestamp"])) == 13 and ok["type"] == "voice"
        assert (b["status"], b["error_code"], b["error_description"]) == (
            "UNDELIV", 4017, "USER_BUSY")
        assert b["answer_date"] is False and b["actual_duration"] == 0
        assert (na["status"], na["error_code"], na["error_description"]) == (
            "UNDELIV", 4019, "NO_ANSWER")
        assert na["answer_date"] is False and isinstance(na["ring_date"], int)
        assert postbacks.bad_signatures == 0
        assert [a.caller_id for a in far.to(answers)] == [SENDER]

        await eventually(lambda: job_done(pool, created["api_job_id"]))
        async with http.get(f"/voice-broadcast/v1/jobs/{created['api_job_id']}",
                            headers=account.headers) as resp:
            status = await resp.json()
        assert resp.status == 200
        assert status["state"] == "done" and status["progress"] == 1.0
        assert status["counts"] == {"done": 3}
        assert status["outcomes"] == {"answered": 1, "busy": 1, "no_answer": 1}
        async with http.get(f"/voice-broadcast/v1/messages/{ids[busy]}",
                            headers=account.headers) as resp:
            message = await resp.json()
        assert resp.status == 200
        assert message["data"][0]["error_description"] == "USER_BUSY"
        assert message["data"][0]["state"] == "done"
    for number in (answers, busy, silent):
        assert len(far.to(number)) == 1
