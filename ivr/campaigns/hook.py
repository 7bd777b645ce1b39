"""The dialer's outcome hook for campaign jobs. Call Events go out as they happen: the answer
and the key press while the call is up (each in a transaction of its own, beside the call),
the hang-up with the outcome; the Call Summary is written to the delivery outbox in the
transaction that records the outcome, so it exists exactly when the outcome does. The outcome's
transaction enqueues the answer and key press again under the same event ids, so they exist
even when the live write never happened (the process died). The outbox worker posts them as
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


# Answer and key press events are posted as they happen (call_progress) and enqueued again
# with the outcome (call_finished), in case the first write never happened: the same event id
# both times, so the outbox keeps one.
_EVENT_IDS = uuid.UUID("8f6b2f8e-5d0c-4f0e-9a3e-6a1d2c7b9e41")


def _event_id(call: CallRecord, event_type: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_IDS, f"{call.message_id}/{call.attempts}/{event_type}")


_ROW = ("SELECT m.menuid, m.events_url, m.summary_url, c.callid, c.promptids, c.created_at"
        " FROM campaign_calls c JOIN campaign_menus m ON m.id = c.menu_pk"
        " WHERE c.message_id = $1")


class CampaignHook:
    live = True

    def __init__(self, retry_for: float) -> None:
        self.retry_for = retry_for

    def _live_events(self, row: Any, job: Job, call: CallRecord, answered: bool,
                     key: str | None) -> list[tuple[str | None, str, bytes]]:
        posts: list[tuple[str | None, str, bytes]] = []
        if answered:
            posts.append((row["events_url"], EVENT_ANSWER, render.answer_event_xml(
                row["menuid"], row["callid"], call.number, job.sender_id or "")))
        if key and row["promptids"]:
            posts.append((row["events_url"], EVENT_KEYPRESS, render.keypress_event_xml(
                row["menuid"], row["callid"], row["promptids"][-1], key)))
        return posts

    async def call_progress(self, conn: Any, job: Job, call: CallRecord, event: str,
                            key: str | None) -> None:
        row = await conn.fetchrow(_ROW, call.message_id)
        if row is None or row["events_url"] is None:
            return
        await self._enqueue(conn, job, call, self._live_events(
            row, job, call, answered=event == "answered", key=key if event == "keypress" else None))

    async def call_finished(self, conn: Any, job: Job, call: CallRecord) -> None:
        row = await conn.fetchrow(_ROW, call.message_id)
        if row is None:
            log.warning("[%s] campaign call %s has no campaign row; no postbacks",
                        call.channel_id, call.message_id)
            return
        menuid, callid = row["menuid"], row["callid"]
        posts: list[tuple[str | None, str, bytes]] = []
        if call.outcome == "answered":
            posts += self._live_events(row, job, call, answered=True, key=call.keypress)
            posts.append((row["events_url"], EVENT_HANGUP, render.hangup_event_xml(
                menuid, callid, call.number, call.duration)))
        result = result_of(menuid, {
            "callid": callid, "promptids": row["promptids"], "number": call.number,
            "state": call.state, "outcome": call.outcome, "cause_name": call.cause_name,
            "amd": call.amd, "keypress": call.keypress, "duration": call.duration,
            "attempts": call.attempts, "started_at": call.started_at,
            "created_at": row["created_at"], "job_state": job.state})
        posts.append((row["summary_url"], EVENT_SUMMARY, render.summary_xml(result)))
        await self._enqueue(conn, job, call, posts)

    async def _enqueue(self, conn: Any, job: Job, call: CallRecord,
                       posts: list[tuple[str | None, str, bytes]]) -> None:
        for url, event_type, body in posts:
            if url is None:
                continue
            live = event_type in (EVENT_ANSWER, EVENT_KEYPRESS)
            await enqueue_callback(
                conn, event_id=_event_id(call, event_type) if live else uuid.uuid4(),
                event_type=event_type, stream=f"campaign:{call.message_id}",
                owner=f"dialer:{job.account.account_id}", url=url, body=body,
                content_type=render.CONTENT_TYPE, secret=job.account.webhook_secret,
                retry_for=self.retry_for, once=live)

    async def call_retrying(self, conn: Any, job: Job, call: CallRecord) -> None:
        return None

    async def job_finished(self, conn: Any, job: Job, counts: dict[str, int]) -> None:
        return None


def make_hook(settings: Settings) -> CampaignHook:
    return CampaignHook(settings.delivery_retry_for)
