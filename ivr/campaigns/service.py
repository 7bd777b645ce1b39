"""The campaign operations behind the XML face: menus of a dialer account, and one method per
action. Every write of a command happens in one transaction (calls and their campaign rows
together), so a refused command leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from ivr.campaigns import errors as e
from ivr.campaigns import render
from ivr.campaigns.content import PromptAudio
from ivr.campaigns.errors import CampaignError
from ivr.campaigns.models import (
    MENUID_RE,
    Command,
    DeleteCalls,
    DeleteFile,
    GetFile,
    Pause,
    Prompt,
    Query,
    Resume,
    SaveFile,
    SendCalls,
    TestConfig,
)
from ivr.campaigns.sounds import SoundStore
from ivr.core.errors import InvalidParameter
from ivr.core.throttle import Throttle
from ivr.dialer.accounts import Accounts
from ivr.dialer.models import AMD_MODES, Account, Content, Destination, JobSpec
from ivr.dialer.service import Dialer

log = logging.getLogger(__name__)

KIND = "campaign"
URL_RE = re.compile(r"^https?://[^\s/]+\S*$")
QUERY_LIMIT = 10_000
SCHEDULE_AHEAD = timedelta(days=366)  # the furthest a call may be scheduled (dateandtime)


@dataclass(frozen=True, slots=True)
class Menu:
    pk: int
    account_pk: int
    menuid: str
    name: str
    events_url: str | None
    summary_url: str | None
    sender_id: str | None
    keypress: bool
    amd: str
    max_attempts: int
    retry_delay: float
    ring_timeout: int


_MENU_COLUMNS = ("id, account_pk, menuid, name, events_url, summary_url, sender_id, keypress,"
                 " amd, max_attempts, retry_delay, ring_timeout")


def _menu(row: asyncpg.Record) -> Menu:
    return Menu(pk=row["id"], account_pk=row["account_pk"], menuid=row["menuid"],
                name=row["name"], events_url=row["events_url"], summary_url=row["summary_url"],
                sender_id=row["sender_id"], keypress=row["keypress"], amd=row["amd"],
                max_attempts=row["max_attempts"], retry_delay=row["retry_delay"],
                ring_timeout=row["ring_timeout"])


class Campaigns:
    def __init__(self, pool: asyncpg.Pool, dialer: Dialer, data_dir: Path,
                 public_url: str, throttle: Throttle | None = None) -> None:
        self.pool = pool
        self.dialer = dialer
        self.accounts = Accounts(pool, throttle)  # who posts a document
        self.sounds = SoundStore(data_dir)
        self.audio = PromptAudio(data_dir, public_url, self.sounds)

    # --- menus (CLI / Python; the XML API names them, it does not make them) -------------
    async def create_menu(
        self, account: Account, menuid: str, *, name: str = "", events_url: str | None = None,
        summary_url: str | None = None, sender_id: str | None = None, keypress: bool = False,
        amd: str = "off", max_attempts: int = 1, retry_delay: float = 60.0,
        ring_timeout: int = 30,
    ) -> Menu:
        if not MENUID_RE.fullmatch(menuid):
            raise InvalidParameter("menuid", "menuid must be 1-40 letters, digits, '_', '.', "
                                   "':' or '-'")
        for param, url in (("events_url", events_url), ("summary_url", summary_url)):
            if url is not None and not URL_RE.match(url):
                raise InvalidParameter(param, f"{param} must be an http or https URL")
        if sender_id is not None and not re.fullmatch(r"[0-9]{7,15}", sender_id):
            raise InvalidParameter("sender_id", "sender_id must have 7-15 digits")
        if amd not in AMD_MODES:
            raise InvalidParameter("amd", f"amd must be one of {', '.join(AMD_MODES)}")
        if not 1 <= max_attempts <= 10 or not 1 <= ring_timeout <= 300 or retry_delay < 0:
            raise InvalidParameter("max_attempts", "attempts 1-10, ring timeout 1-300 s, "
                                   "retry delay >= 0")
        try:
            row = await self.pool.fetchrow(
                f"INSERT INTO campaign_menus (account_pk, menuid, name, events_url, summary_url,"
                f" sender_id, keypress, amd, max_attempts, retry_delay, ring_timeout)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                f" RETURNING {_MENU_COLUMNS}",
                account.pk, menuid, name, events_url, summary_url, sender_id, keypress, amd,
                max_attempts, float(retry_delay), ring_timeout)
        except asyncpg.UniqueViolationError:
            raise InvalidParameter("menuid", f"the account already has menu {menuid!r}") from None
        return _menu(row)

    async def menu(self, account: Account, menuid: str) -> Menu:
        row = await self.pool.fetchrow(
            f"SELECT {_MENU_COLUMNS} FROM campaign_menus WHERE account_pk = $1 AND menuid = $2",
            account.pk, menuid)
        if row is None:
            raise CampaignError(e.UNKNOWN_MENUID, f"Invalid menuid, no campaign available for "
                                f"menuid {menuid!r}")
        return _menu(row)

    # --- the XML actions -----------------------------------------------------------------
    async def handle(self, account: Account, command: Command) -> bytes:
        """The response document for `command`."""
        if isinstance(command, SendCalls):
            return await self.send(account, command)
        if isinstance(command, Pause):
            return await self.pause(account, command.menuid)
        if isinstance(command, Resume):
            return await self.resume(account, command.menuid)
        if isinstance(command, DeleteCalls):
            return await self.delete(account, command)
        if isinstance(command, Query):
            return await self.query(account, command)
        if isinstance(command, SaveFile):
            return await self.save_file(account, command)
        if isinstance(command, DeleteFile):
            return await self.delete_file(account, command)
        if isinstance(command, GetFile):
            return await self.get_file(account, command)
        assert isinstance(command, TestConfig)
        return render.ok_xml(6)

    async def send(self, account: Account, command: SendCalls) -> bytes:
        menu = await self.menu(account, command.menuid)
        latest = datetime.now(UTC) + SCHEDULE_AHEAD
        for d in command.destinations:
            if d.not_before is not None and d.not_before > latest:
                raise CampaignError(e.DATETIME, f"dateandtime of {d.number} is more than a "
                                    f"year ahead ({d.not_before:%Y-%m-%d %H:%M} UTC)")
        names = {p.filename for d in command.destinations for p in d.prompts if p.filename}
        tokens = await self.sounds.tokens(self.pool, account.pk, names)
        contents: dict[tuple[Prompt, ...], Content] = {}
        temporary: list[Path] = []
        try:
            for d in command.destinations:
                if d.prompts not in contents:
                    content, tmp = await self.audio.content(d.prompts, tokens)
                    contents[d.prompts] = content
                    if tmp is not None:
                        temporary.append(tmp)
            return await self._create(account, menu, command, contents)
        finally:
            for path in temporary:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(path.unlink)

    async def _create(self, account: Account, menu: Menu, command: SendCalls,
                      contents: dict[tuple[Prompt, ...], Content]) -> bytes:
        # The dialer shows one caller id per job: one job per caller id in the post.
        groups: dict[str | None, list[int]] = {}
        for i, d in enumerate(command.destinations):
            groups.setdefault(d.callerid or menu.sender_id, []).append(i)
        callids: dict[int, str] = {}
        rows: list[tuple[str, int, uuid.UUID, str, list[int]]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for sender, indexes in groups.items():
                first = contents[command.destinations[indexes[0]].prompts]
                spec = JobSpec(
                    kind=KIND, content=first, sender_id=sender, callback_url=None,
                    enable_menu_response=menu.keypress, amd=menu.amd,
                    max_attempts=menu.max_attempts, retry_delay=menu.retry_delay,
                    ring_timeout=menu.ring_timeout,
                    meta={"menu_pk": menu.pk, "menuid": menu.menuid},
                    destinations=[self._destination(i, command, contents, first)
                                  for i in indexes])
                try:
                    created = await self.dialer.create_job(account, spec, conn=conn)
                except InvalidParameter as exc:
                    raise CampaignError(e.PARSE, f"the calls were refused: {exc.message}") \
                        from None
                except FileNotFoundError:
                    raise CampaignError(e.SOUND_NOT_FOUND, "a sound file was deleted while "
                                        "the calls were being sent; send again") from None
                for call in created.calls:
                    assert call.custom_id is not None
                    i = int(call.custom_id)
                    d = command.destinations[i]
                    callids[i] = d.callid or call.message_id
                    rows.append((call.message_id, menu.pk, created.job_id, callids[i],
                                 [p.promptid for p in d.prompts]))
            await conn.copy_records_to_table(
                "campaign_calls", records=rows,
                columns=["message_id", "menu_pk", "job_id", "callid", "promptids"])
        log.info("campaign %s of account %s: %d calls queued", menu.menuid, account.account_id,
                 len(rows))
        return render.sent_xml(menu.menuid, [(d.number, callids[i])
                                             for i, d in enumerate(command.destinations)])

    @staticmethod
    def _destination(i: int, command: SendCalls, contents: dict[tuple[Prompt, ...], Content],
                     first: Content) -> Destination:
        d = command.destinations[i]
        content = contents[d.prompts]
        return Destination(d.number, custom_id=str(i),
                           content=None if content == first else content,
                           not_before=d.not_before)

    async def _jobs(self, menu: Menu, state: str) -> list[uuid.UUID]:
        rows = await self.pool.fetch(
            "SELECT DISTINCT j.id FROM campaign_calls c JOIN dialer_jobs j ON j.id = c.job_id"
            " WHERE c.menu_pk = $1 AND j.state = $2", menu.pk, state)
        return [r["id"] for r in rows]

    async def _pending(self, menu: Menu) -> int:
        return int(await self.pool.fetchval(
            "SELECT count(*) FROM campaign_calls c JOIN dialer_calls d USING (message_id)"
            " WHERE c.menu_pk = $1 AND d.state = 'queued'", menu.pk))

    async def pause(self, account: Account, menuid: str) -> bytes:
        """Action 7: the menu's queued calls wait (calls already ringing finish)."""
        menu = await self.menu(account, menuid)
        for job_id in await self._jobs(menu, "active"):
            await self.dialer.pause(account, job_id)
        return render.ok_xml(7, menu.menuid, paused=await self._pending(menu))

    async def resume(self, account: Account, menuid: str) -> bytes:
        """Action 8 (VoiceShot's "un-pause paused calls")."""
        menu = await self.menu(account, menuid)
        for job_id in await self._jobs(menu, "paused"):
            await self.dialer.resume(account, job_id)
        return render.ok_xml(8, menu.menuid, pending=await self._pending(menu))

    async def delete(self, account: Account, command: DeleteCalls) -> bytes:
        """Action 2: delete the calls of these callids that have not been dialled yet."""
        menu = await self.menu(account, command.menuid)
        rows = await self.pool.fetch(
            "SELECT message_id, callid FROM campaign_calls WHERE menu_pk = $1"
            " AND callid = ANY($2::text[])", menu.pk, list(command.callids))
        deleted = set(await self.dialer.delete_pending(
            account, message_ids=[r["message_id"] for r in rows])) if rows else set()
        counts = {callid: [0, 0] for callid in command.callids}
        for r in rows:
            counts[r["callid"]][0 if r["message_id"] in deleted else 1] += 1
        return render.deleted_xml(menu.menuid, {k: (v[0], v[1]) for k, v in counts.items()})

    async def query(self, account: Account, command: Query) -> bytes:
        menu = await self.menu(account, command.menuid)
        return render.query_xml(menu.menuid, await self.results(menu, command.callids))

    async def results(self, menu: Menu, callids: Sequence[str] = ()) -> list[render.CallResult]:
        rows = await self.pool.fetch(
            "SELECT c.callid, c.promptids, d.number, d.state, d.outcome, d.cause_name,"
            " d.amd, d.keypress, d.duration, d.attempts, d.started_at, d.answer_at,"
            " d.next_attempt_at, c.created_at, j.state AS job_state"
            " FROM campaign_calls c JOIN dialer_calls d USING (message_id)"
            " JOIN dialer_jobs j ON j.id = c.job_id"
            " WHERE c.menu_pk = $1 AND (cardinality($2::text[]) = 0 OR c.callid = ANY($2))"
            " ORDER BY c.created_at, d.id LIMIT $3", menu.pk, list(callids), QUERY_LIMIT)
        return [result_of(menu.menuid, r) for r in rows]

    async def save_file(self, account: Account, command: SaveFile) -> bytes:
        token, info = await self.sounds.convert(command.data)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                old = await self.sounds.record(conn, account.pk, command.filename, token, info)
        except BaseException:
            await asyncio.to_thread(self.sounds.discard, token)
            raise
        if old is not None:
            await asyncio.to_thread(self.sounds.discard, old)
        return render.file_xml(command.filename, "save", seconds=round(info.seconds, 3))

    async def get_file(self, account: Account, command: GetFile) -> bytes:
        """The saved sound as stored (the 8 kHz mono copy calls play), base64 in a <file>
        shaped like the upload's."""
        for _ in range(3):  # a save of the same name at once replaces (removes) the file
            row = await self.pool.fetchrow(
                "SELECT token, seconds FROM campaign_sounds WHERE account_pk = $1"
                " AND filename = $2", account.pk, command.filename)
            if row is None:
                break
            with contextlib.suppress(FileNotFoundError):
                data = await asyncio.to_thread(self.sounds.path(row["token"]).read_bytes)
                return render.file_xml(command.filename, "get", content=data,
                                       seconds=row["seconds"])
        raise CampaignError(e.SOUND_NOT_FOUND, f"no sound file named {command.filename!r}")

    async def delete_file(self, account: Account, command: DeleteFile) -> bytes:
        async with self.pool.acquire() as conn, conn.transaction():
            token = await self.sounds.forget(conn, account.pk, command.filename)
        await asyncio.to_thread(self.sounds.discard, token)
        return render.file_xml(command.filename, "delete")


# --- what a call's rows say, in VoiceShot's words ----------------------------------------
_OUTCOMES = {
    "busy": ("Busy", "Busy"),
    "no_answer": ("No Answer", "No Answer"),
    "failed": ("Failed", "Call failed"),
    "machine_skipped": ("Machine", "Answering machine, message not left"),
    "dnc": ("Do Not Call", "Number is on the do-not-call list"),
    "interrupted": ("Failed", "Interrupted by a service restart; not redialled"),
}


def status_of(row: Any) -> tuple[str, str]:
    """(status, comment) of a dialer call row (state, outcome, amd, cause_name, attempts,
    and the job's state)."""
    state = row["state"]
    if state == "queued":
        if row["job_state"] == "paused":
            return "Paused", "Paused (action 8 resumes)"
        if row["attempts"]:
            return "Pending", "Waiting to retry"
        return "Pending", ("Scheduled" if _scheduled(row) else "Waiting to be dialled")
    if state == "dialing":
        return "Dialing", "Call in progress"
    if state == "deleted":
        return "Deleted", "Deleted before dialling"
    if state == "cancelled":
        return "Cancelled", "Cancelled before dialling"
    outcome = row["outcome"] or "failed"
    if outcome == "answered":
        return "Successful", ("Machine Answer" if row["amd"] == "MACHINE" else "Human Answer")
    status, comment = _OUTCOMES.get(outcome, ("Failed", outcome))
    if outcome == "failed" and row["cause_name"]:
        comment = f"{comment} ({row['cause_name']})"
    return status, comment


def _scheduled(row: Any) -> bool:
    """A call not yet dialled whose dateandtime is still ahead."""
    due = row.get("next_attempt_at")
    return (row["state"] == "queued" and not row["attempts"] and due is not None
            and due > datetime.now(UTC))


def result_of(menuid: str, row: Any) -> render.CallResult:
    status, comment = status_of(row)
    promptids = list(row["promptids"])
    keypress = {promptids[-1]: row["keypress"]} if row["keypress"] and promptids else {}
    return render.CallResult(
        menuid=menuid, callid=row["callid"], number=row["number"], status=status,
        comment=comment, dateandtime=(row["next_attempt_at"] if _scheduled(row)
                                      else row["started_at"] or row["created_at"]),
        duration=int(row["duration"] or 0), prompts=promptids, keypress=keypress)
