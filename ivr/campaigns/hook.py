"""The dialer's outcome hook for campaign jobs: when a call is over, its Call Events (answer,
key press, hang-up) and its Call Summary are written to the delivery outbox in the transaction
that records the outcome, so they exist exactly when it does. The outbox worker posts them as
XML (signed with the account's webhook secret, retried, in order per call).

Events go to the menu's events_url, the summary to its summary_url (either may be unset). A
busy or unanswered call that will be retried posts nothing yet: VoiceShot sends the summary
"after the last delivery attempt"."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from ivr.campaigns import render
from ivr.campaigns.service import result_of
from ivr.delivery.outbox import enqueue_callback
from ivr.dialer.models import CallRecord, Job
from ivr.settings import Settings

log = logging.getLogger(__name__)

EVENT_ANSWER = "campaign.answer"
EVENT_KEYPRESS = "campaign.keypress"
EVENT_HANGUP = "campaign.hangup"
EVENT_SUMMARY = "campaign.summary"


class CampaignHook:
    def __init__(self, retry_for: float) -> None:
        self.retry_for = retry_for

    async def call_finished(self, conn: Any, job: Job, call: CallRecord) -> None:
        row = await conn.fetchrow(
            "SELECT m.menuid, m.events_url, m.summary_url, c.callid, c.promptids, c.created_at"
            " FROM campaign_calls c JOIN campaign_menus m ON m.id = c.menu_pk"
            " WHERE c.message_id = $1", call.message_id)
        if row is None:
            log.warning("[%s] campaign call %s has no campaign row; no postbacks",
                        call.channel_id, call.message_id)
            return
        menuid, callid = row["menuid"], row["callid"]
        posts: list[tuple[str | None, str, bytes]] = []
        if call.outcome == "answered":
            posts.append((row["events_url"], EVENT_ANSWER, render.answer_event_xml(
                menuid, callid, call.number, job.sender_id or "")))
            if call.keypress and row["promptids"]:
                posts.append((row["events_url"], EVENT_KEYPRESS, render.keypress_event_xml(
                    menuid, callid, row["promptids"][-1], call.keypress)))
            posts.append((row["events_url"], EVENT_HANGUP, render.hangup_event_xml(
                menuid, callid, call.number, call.duration)))
        result = result_of(menuid, {
            "callid": callid, "promptids": row["promptids"], "number": call.number,
            "state": call.state, "outcome": call.outcome, "cause_name": call.cause_name,
            "amd": call.amd, "keypress": call.keypress, "duration": call.duration,
            "attempts": call.attempts, "started_at": call.started_at,
            "created_at": row["created_at"], "job_state": job.state})
        posts.append((row["summary_url"], EVENT_SUMMARY, render.summary_xml(result)))
        for url, event_type, body in posts:
            if url is None:
                continue
            await enqueue_callback(
                conn, event_id=uuid.uuid4(), event_type=event_type,
                stream=f"campaign:{call.message_id}", owner=f"dialer:{job.account.account_id}",
                url=url, body=body, content_type=render.CONTENT_TYPE,
                secret=job.account.webhook_secret, retry_for=self.retry_for)

    async def call_retrying(self, conn: Any, job: Job, call: CallRecord) -> None:
        return None

    async def job_finished(self, conn: Any, job: Job, counts: dict[str, int]) -> None:
        return None


def make_hook(settings: Settings) -> CampaignHook:
    return CampaignHook(settings.delivery_retry_for)
