"""Seed 003's postbacks, written to the delivery outbox in the transaction that records the
outcome (the dialer runs this hook there): one per call with its final outcome, and one per job
when its last call is settled (or it is cancelled), whose `data` holds every call of the job.

status is DELIVRD for an answered call, else UNDELIV; error_code is 4000 + the Q.850 cause
(the seed's USER_BUSY is 4017), with codes of our own for outcomes no cause describes."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

import orjson

from ivr.core.db import Conn
from ivr.delivery import outbox
from ivr.dialer import store
from ivr.dialer.models import CallRecord, Job
from ivr.settings import Settings

EVENT_TYPE = "broadcast.call"
JOB_EVENT_TYPE = "broadcast.job"
# The job postback's event id comes from the job's id: written at most once per job.
_JOB_EVENTS = uuid.UUID("5b0e7c1a-3f47-4d2e-9c61-0d8a4e2f7b13")
# Outcomes no hang-up cause describes: (error_code, error_description).
OWN_CODES = {
    "dnc": (4900, "DO_NOT_CALL"),
    "interrupted": (4901, "INTERRUPTED"),
    "machine_skipped": (4902, "ANSWERING_MACHINE"),
    "no_answer": (4019, "NO_ANSWER"),
}


def _epoch(value: datetime | None) -> int | bool:
    return False if value is None else int(value.timestamp())


def call_data(job: Job, call: CallRecord) -> dict[str, Any]:
    """One entry of the seed's `data` array."""
    meta = job.meta
    content = call.content or job.content
    created = job.created_at.timestamp()
    data: dict[str, Any] = {
        "type": "voice",
        "timestamp": int(created),
        "micro_timestamp": int(created * 1000),
        "from": job.sender_id or "",
        "job_type": "TTS" if content.text is not None else "AUDIO",
        "callback_url": job.callback_url,
    }
    if content.text is not None:
        data.update(tts_text=content.text, tts_voice=meta.get("tts_voice", "MAN"),
                    tts_lang=meta.get("tts_lang", content.language))
    else:
        data["audio_file_url"] = meta.get("audio_file_url")
    answered = call.outcome == "answered"
    actual = call.duration if answered else 0
    if call.state == "done":
        if answered:
            status, code, description = "DELIVRD", 0, ""
        elif call.outcome == "busy":
            status, code, description = "UNDELIV", 4017, "USER_BUSY"
        elif call.outcome in OWN_CODES:
            status, (code, description) = "UNDELIV", OWN_CODES[call.outcome]
        else:
            status, code = "UNDELIV", 4000 + (call.cause or 0)
            description = call.cause_name or "UNKNOWN"
    else:
        status, code, description = call.state.upper(), 0, ""
    data.update({
        "message_id": call.message_id,
        "client_message_id": call.custom_id,
        "to": call.number,
        "ring_date": _epoch(call.ring_at),
        "answer_date": _epoch(call.answer_at) if answered else False,
        "hang_date": _epoch(call.hang_at),
        "actual_duration": actual,
        # Nobody bills a self-hosted call: billed is the actual time in whole seconds.
        "billed_duration": math.ceil(actual),
        "status": status,
        "error_code": code,
        "error_description": description,
        "attempts": call.attempts,
    })
    if job.enable_menu_response:
        data["menu_response"] = call.keypress
    if job.amd != "off":
        data["amd_status"] = call.amd
    return data


def postback(job: Job, calls: list[CallRecord]) -> dict[str, Any]:
    return {"api_job_id": str(job.id), "client_job_id": job.client_job_id,
            "data": [call_data(job, call) for call in calls]}


class BroadcastPostbacks:
    live = False  # one postback per destination, with its final outcome

    def __init__(self, retry_for: float) -> None:
        self.retry_for = retry_for

    async def call_progress(self, conn: Conn, job: Job, call: CallRecord, event: str,
                            key: str | None) -> None:
        return None

    async def call_finished(self, conn: Conn, job: Job, call: CallRecord) -> None:
        if not job.callback_url:
            return
        await outbox.enqueue_callback(
            conn, event_id=uuid.uuid4(), event_type=EVENT_TYPE,
            stream=f"dialer-call:{call.message_id}", owner=f"dialer:{job.account.account_id}",
            url=job.callback_url, body=orjson.dumps(postback(job, [call])),
            content_type="application/json", secret=job.account.webhook_secret,
            retry_for=self.retry_for)

    async def call_retrying(self, conn: Conn, job: Job, call: CallRecord) -> None:
        return None  # one postback per destination, with its final outcome

    async def job_finished(self, conn: Conn, job: Job, counts: dict[str, int]) -> None:
        """Every call of the job, in the order given (cancelled and deleted ones too, with
        that state as their status), on a stream of its own."""
        if not job.callback_url:
            return
        calls = await store.calls_of_job(conn, job.id)
        await outbox.enqueue_callback(
            conn, event_id=uuid.uuid5(_JOB_EVENTS, str(job.id)), event_type=JOB_EVENT_TYPE,
            stream=f"dialer-job:{job.id}", owner=f"dialer:{job.account.account_id}",
            url=job.callback_url, body=orjson.dumps(postback(job, calls)),
            content_type="application/json", secret=job.account.webhook_secret,
            retry_for=self.retry_for, once=True)


def make_hook(settings: Settings) -> BroadcastPostbacks:
    return BroadcastPostbacks(settings.delivery_retry_for)
