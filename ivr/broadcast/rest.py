"""Seed 003's REST face: create a voice broadcast job, query a job and a message, and control a
job. Every answer carries `result_info` {status_code, description} with the seed's codes; a
request without valid credentials gets 401 (status_code -50).

Authorization: `Basic base64(account_id:secret)` (an account from `ivr dialer account create`)."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from ivr.broadcast.audio import fetch_audio
from ivr.broadcast.errors import MESSAGES, BroadcastError, err
from ivr.broadcast.postbacks import call_data
from ivr.broadcast.validate import VOICES, Request, check
from ivr.core.errors import IvrError, Throttled, Unavailable
from ivr.core.urls import guarded_connector
from ivr.core.web import json_response, read_json, upload_body
from ivr.dialer import store
from ivr.dialer.accounts import Accounts
from ivr.dialer.errors import InvalidJob
from ivr.dialer.models import Account, Content, JobSpec
from ivr.dialer.service import Dialer
from ivr.settings import Settings
from ivr.telephony.ari_tls import ari_ssl
from ivr.telephony.rest import basic_auth
from ivr.telephony.toll import TollRefused

log = logging.getLogger(__name__)

QUEUED = "Job has been queued, Please check the progress via the HTTP Postbacks"
MESSAGE_ID_RE = re.compile(r"^[0-9]{20}$")
TRUNK_CHECK_TTL = 60.0


@dataclass
class Broadcast:
    settings: Settings
    accounts: Accounts
    dialer: Dialer
    _session: aiohttp.ClientSession | None = None
    _trunk_ok_until: float = 0.0

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # It fetches the audio_file_url a client gave: every connection's address is
            # checked, redirects included (core/urls.py).
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": "ivr-broadcast"},
                connector=guarded_connector(self.settings.security.allow_private_urls))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_trunk(self) -> None:
        """-112 when Asterisk answers that the trunk calls go out on does not exist; when
        Asterisk cannot be asked right now the job is queued all the same (it waits)."""
        if time.monotonic() < self._trunk_ok_until:
            return
        s = self.settings
        url = f"{s.ari_url}/ari/endpoints/PJSIP/{s.dialer_trunk}"
        try:
            async with self.session().get(
                    url, headers=basic_auth(s.ari_user, s.ari_password), ssl=ari_ssl(s),
                    timeout=aiohttp.ClientTimeout(total=3)) as resp:
                if resp.status == 404:
                    raise err(-112)
                if resp.status == 200:
                    self._trunk_ok_until = time.monotonic() + TRUNK_CHECK_TTL
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("broadcast: cannot check trunk %s with Asterisk: %s", s.dialer_trunk,
                        type(exc).__name__)


BROADCAST = web.AppKey("broadcast", Broadcast)
# What every answer to this request echoes (api_job_id, client_job_id, message_id).
ECHO = web.RequestKey("broadcast_echo", dict)
Handler = Callable[[web.Request, Account], Awaitable[web.Response]]


def result_info(code: int, description: str) -> dict[str, Any]:
    return {"status_code": code, "description": description}


def answer(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Authenticate, run, and render any failure in the seed's shape."""

    async def wrapped(request: web.Request) -> web.Response:
        echo: dict[str, Any] = {}
        request[ECHO] = echo
        try:
            account = await authenticate(request)
            return await handler(request, account)
        except BroadcastError as exc:
            body = {**echo, **exc.echo, "result_info": result_info(exc.code, exc.message)}
            return json_response(body, exc.http_status)
        except Unavailable:
            return json_response({**echo, "result_info": result_info(
                -1, "Service Unavailable")}, 503)
        except web.HTTPException:
            raise
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("broadcast: %s %s: %s", request.method, request.path, exc)
            return json_response({**echo, "result_info": result_info(
                -1, "Service Unavailable")}, 503)
        except Exception as exc:
            if isinstance(exc, IvrError) and exc.http_status == 401:
                return json_response({"result_info": result_info(-50, "Not authorized")}, 401)
            log.exception("broadcast: %s %s failed", request.method, request.path)
            return json_response({**echo, "result_info": result_info(-1, "Server Error")}, 500)

    return wrapped


async def authenticate(request: web.Request) -> Account:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise BroadcastError(-50, "Not authorized", 401)
    try:
        account_id, sep, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BroadcastError(-50, "Not authorized", 401) from None
    if not sep:
        raise BroadcastError(-50, "Not authorized", 401)
    try:
        return await request.app[BROADCAST].accounts.authenticate(account_id, secret)
    except Throttled as exc:
        raise BroadcastError(-50, f"Not authorized: {exc.message}", 429) from None
    except IvrError:
        raise BroadcastError(-50, "Not authorized", 401) from None


# --- create ---------------------------------------------------------------------------------
@answer
async def create_job(request: web.Request, account: Account) -> web.Response:
    b = request.app[BROADCAST]
    echo = request[ECHO]
    echo["api_job_id"] = str(uuid.uuid4())  # as the seed: every answer names a job id
    # Authenticated: a job's destinations may take more than a form's small limit.
    # The seed's description, whatever is wrong (not JSON, too large, control characters).
    body = await read_json(upload_body(request), lambda _, why: err(-80))
    if isinstance(body, dict):
        given = body.get("client_job_id", body.get("job_id"))  # job_id: the seed's alias
        if isinstance(given, str | int):
            echo["client_job_id"] = str(given)
    req = check(body, account)
    await _admit(b, account, req)
    content = await _content(b, req)
    spec = JobSpec(
        kind="broadcast", content=content, destinations=req.destinations,
        sender_id=req.sender_id, callback_url=req.callback_url,
        enable_menu_response=req.enable_menu_response, amd=req.amd,
        max_attempts=req.max_retries + 1, retry_delay=float(req.retry_interval),
        ring_timeout=req.ring_timeout, client_job_id=req.client_job_id,
        meta={"tts_voice": req.voice, "tts_lang": req.language,
              "audio_file_url": req.audio_file_url})
    try:
        created = await b.dialer.create_job(account, spec)
    except InvalidJob as exc:
        raise err(-101, exc.message) from None
    except TollRefused as exc:  # the account's toll-fraud limits (telephony/toll.py)
        raise BroadcastError(-101, MESSAGES[-101].format(exc.message), 403) from None
    log.info("broadcast job %s: %d destination(s) for account %s", created.job_id,
             len(created.calls), account.account_id)
    results: dict[str, dict[str, str]] = {}
    for c in created.calls:
        entry = {"message_id": c.message_id}
        if c.custom_id is not None:
            entry["custom_id"] = c.custom_id
        results[c.number] = entry
    return json_response({"api_job_id": str(created.job_id),
                          "client_job_id": req.client_job_id, "results": results,
                          "result_info": result_info(0, QUEUED)})


async def _admit(b: Broadcast, account: Account, req: Request) -> None:
    """What the job may not do here: every number on the do-not-call list (-101), a queue
    already past its limit (-105), a trunk Asterisk does not know (-112)."""
    numbers = [d.number for d in req.destinations]
    async with b.dialer.pool.acquire() as conn:
        blocked = await conn.fetchval(
            "SELECT count(*) FROM dialer_dnc WHERE account_pk = $1 AND number = ANY($2::text[])",
            account.pk, numbers)
        if blocked == len(numbers):
            raise err(-101, "every destination is on the do-not-call list")
        queued = await conn.fetchval("SELECT count(*) FROM dialer_calls WHERE state = 'queued'")
    if queued + len(numbers) > b.settings.dialer_max_queued:
        raise err(-105)
    await b.check_trunk()


async def _content(b: Broadcast, req: Request) -> Content:
    if req.audio_file_url is not None:
        digest = await fetch_audio(b.session(), req.audio_file_url, b.settings.data_dir)
        return Content(audio=digest)
    assert req.tts_text is not None
    return Content.tts(req.tts_text, VOICES[req.voice], req.language)


# --- queries and control --------------------------------------------------------------------
def _job_id(request: web.Request) -> uuid.UUID:
    value = request.match_info["api_job_id"]
    request[ECHO]["api_job_id"] = value
    if len(value) != 36:
        raise err(-126)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise err(-125) from None


@answer
async def job_status(request: web.Request, account: Account) -> web.Response:
    job_id = _job_id(request)
    status = await request.app[BROADCAST].dialer.job(account, job_id)
    if status is None:
        raise err(-125)
    job = status.job
    return json_response({
        "api_job_id": str(job.id), "client_job_id": job.client_job_id, "state": job.state,
        "total": status.total, "counts": status.counts, "outcomes": status.outcomes,
        "progress": round(status.progress, 4),
        "created_at": int(job.created_at.timestamp()),
        "finished_at": int(job.finished_at.timestamp()) if job.finished_at else None,
        "result_info": result_info(0, "OK")})


@answer
async def job_control(request: web.Request, account: Account) -> web.Response:
    job_id = _job_id(request)
    dialer = request.app[BROADCAST].dialer
    action = request.match_info["action"]
    status = await dialer.job(account, job_id)
    if status is None:
        raise err(-125)
    extra: dict[str, Any] = {}
    if action == "pause":
        done = await dialer.pause(account, job_id)
    elif action == "resume":
        done = await dialer.resume(account, job_id)
    else:
        extra["cancelled_calls"] = await dialer.cancel(account, job_id)
        done = status.job.state in ("active", "paused")
    if not done:
        raise err(-101, f"a {status.job.state} job cannot be {action}d")
    fresh = await dialer.job(account, job_id)
    assert fresh is not None
    return json_response({"api_job_id": str(job_id), "client_job_id": fresh.job.client_job_id,
                          "state": fresh.job.state, **extra,
                          "result_info": result_info(0, "OK")})


def _message_id(request: web.Request) -> str:
    value = request.match_info["message_id"]
    request[ECHO]["message_id"] = value
    if not MESSAGE_ID_RE.match(value):
        raise err(-121)
    return value


@answer
async def message_status(request: web.Request, account: Account) -> web.Response:
    message_id = _message_id(request)
    b = request.app[BROADCAST]
    call = await b.dialer.call(account, message_id)
    if call is None:
        raise err(-120)
    async with b.dialer.pool.acquire() as conn:
        job = await store.job(conn, call.job_id, account.pk)
    assert job is not None
    data = {**call_data(job, call), "state": call.state, "outcome": call.outcome}
    return json_response({"api_job_id": str(job.id), "client_job_id": job.client_job_id,
                          "data": [data], "result_info": result_info(0, "OK")})


@answer
async def delete_message(request: web.Request, account: Account) -> web.Response:
    """Delete a call that has not been placed yet (a call in progress or done stays)."""
    message_id = _message_id(request)
    dialer = request.app[BROADCAST].dialer
    call = await dialer.call(account, message_id)
    if call is None:
        raise err(-120)
    deleted = await dialer.delete_pending(account, message_ids=[message_id])
    if not deleted:
        raise err(-101, f"the call is {call.state}, not pending")
    return json_response({"message_id": message_id, "state": "deleted",
                          "result_info": result_info(0, "OK")})


PREFIX = "/voice-broadcast/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/jobs", create_job)
    app.router.add_get(f"{PREFIX}/jobs/{{api_job_id}}", job_status)
    app.router.add_post(f"{PREFIX}/jobs/{{api_job_id}}/{{action:pause|resume|cancel}}",
                        job_control)
    app.router.add_get(f"{PREFIX}/messages/{{message_id}}", message_status)
    app.router.add_delete(f"{PREFIX}/messages/{{message_id}}", delete_message)
