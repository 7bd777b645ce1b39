"""The REST/JSON face (`/v1`), over the same service as /vr. Authentication: HTTP Basic with
the developer's username and password, or `Authorization: Bearer <token>` (POST /v1/tokens or
the MyVox LoginDeveloper command hand one out). A protected list's or recording's password goes
in the `X-Asset-Password` header. Errors: the core's `{"error", "message", "param"?}` with the
HTTP status."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from ivr.core.errors import InvalidParameter, Unauthorized
from ivr.core.web import POOL, json_response, read_json
from ivr.recorder import documents, inputs, store
from ivr.recorder.context import RECORDER, audio_links
from ivr.recorder.errors import IdempotencyInProgress, IdempotencyMismatch
from ivr.recorder.models import Developer, SessionView
from ivr.recorder.openapi import DOCUMENT
from ivr.recorder.params import Params
from ivr.recorder.service import RecorderService

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def entity(node: documents.Node) -> dict[str, Any]:
    """The MyVox element tree as plain JSON, times in ISO 8601."""
    out: dict[str, Any] = {}
    for item in node:
        if isinstance(item, documents.Many):
            out[item.name] = [entity(child) for child in item.items]
            continue
        name, value = item
        if isinstance(value, list):
            # A container holding one repeated element becomes the array itself.
            inner = value[0] if len(value) == 1 and isinstance(value[0], documents.Many) else None
            out[name] = [entity(c) for c in inner.items] if inner else entity(value)
        elif isinstance(value, datetime):
            out[name] = value.isoformat()
        else:
            out[name] = value
    return out


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    data = await read_json(request, InvalidParameter)
    if not isinstance(data, dict):
        raise InvalidParameter("body", "the request body must be a JSON object")
    return data


async def authenticate(request: web.Request) -> Developer:
    header = request.headers.get("Authorization", "")
    service = request.app[RECORDER]
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return await service.authenticate_token(value.strip())
    if scheme.lower() == "basic" and value:
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, sep, password = "", "", ""
        if sep:
            return await service.authenticate(username, password)
    raise Unauthorized("send HTTP Basic credentials (username:password) or a Bearer token")


def asset_password(request: web.Request) -> str | None:
    return request.headers.get("X-Asset-Password")


def authed(fn: Callable[[web.Request, Developer, RecorderService], Awaitable[web.Response]],
           ) -> Handler:
    """Authenticate, then (for POST) honour Idempotency-Key: the first answer to a key is
    stored and replayed; the same key with a different request is refused."""

    async def handler(request: web.Request) -> web.StreamResponse:
        developer = await authenticate(request)
        service = request.app[RECORDER]
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None:
            return await fn(request, developer, service)
        if not 1 <= len(key) <= 255:
            raise InvalidParameter("Idempotency-Key", "Idempotency-Key must be 1-255 characters")
        digest = hashlib.sha256(b"\0".join([
            request.method.encode(), request.path.encode(), request.query_string.encode(),
            await request.read()])).digest()
        pool = request.app[POOL]
        async with pool.acquire() as conn:
            earlier = await store.claim_idempotency_key(conn, developer.id, key, digest)
        if earlier is not None:
            if bytes(earlier["request_hash"]) != digest:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used with a different request; use a new key")
            if earlier["response_status"] is None:
                raise IdempotencyInProgress("a request with this Idempotency-Key is in progress")
            return web.Response(body=bytes(earlier["response_body"]),
                                status=earlier["response_status"],
                                content_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
        try:
            response = await fn(request, developer, service)
        except BaseException:
            # A request that failed did nothing, so the key is free to be retried.
            async with pool.acquire() as conn:
                await store.release_idempotency_key(conn, developer.id, key)
            raise
        async with pool.acquire() as conn:
            await store.save_idempotent_response(conn, developer.id, key, response.status,
                                                 bytes(response.body or b""))  # type: ignore[arg-type]
        return response

    return handler


# --- developers -------------------------------------------------------------------------------
async def create_developer(request: web.Request) -> web.Response:
    p = Params(await _body(request))
    d = await request.app[RECORDER].create_developer(
        str(p.text("username", required=True, max_len=64)),
        str(p.text("password", required=True, max_len=200)),
        email=str(p.text("email", max_len=200) or ""), name=str(p.text("name", max_len=200) or ""))
    return json_response(entity(documents.developer_node(d)), 201)


async def get_developer(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    return json_response(entity(documents.developer_node(d)))


async def create_token(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    return json_response({"token": await s.create_token(d, "POST /v1/tokens"),
                          "token_type": "Bearer"}, 201)


# --- recorders --------------------------------------------------------------------------------
async def list_recorders(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    return json_response({"voice_recorders": [entity(documents.recorder_node(v))
                                              for v in await s.list_recorders(d)]})


async def create_recorder(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    p = Params(await _body(request))
    key = p.key("voice_recorder_key")
    password = p.text("recorder_password", max_len=200)
    v, generated = await s.create_recorder(d, key if isinstance(key, str) else None,
                                           inputs.recorder_values(p),
                                           password if isinstance(password, str) else None)
    return json_response(entity(documents.recorder_node(v, generated)), 201)


async def get_recorder(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    v = await s.get_recorder(d, request.match_info["recorder_key"])
    return json_response(entity(documents.recorder_node(v)))


async def patch_recorder(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    p = Params(await _body(request))
    v, generated = await s.set_recorder(d, request.match_info["recorder_key"],
                                        inputs.recorder_values(p),
                                        p.text("recorder_password", max_len=200))
    return json_response(entity(documents.recorder_node(v, generated)))


async def delete_recorder(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    await s.delete_recorder(d, request.match_info["recorder_key"])
    return web.Response(status=204)


# --- lists ------------------------------------------------------------------------------------
async def search_lists(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    found = inputs.filters(Params(request.query), inputs.LIST_SEARCH_FIELDS)
    page = await s.search_lists(d, request.match_info["recorder_key"], found,
                                asset_password(request))
    return json_response(
        {"recording_lists": [entity(documents.list_node(rl)) for rl in page.items]})


async def create_list(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    p = Params(await _body(request))
    key = p.key("recording_list_key")
    rl, generated = await s.create_list(d, request.match_info["recorder_key"],
                                        key if isinstance(key, str) else None,
                                        inputs.list_values(p), inputs.initial_recordings(p))
    return json_response(entity(documents.list_node(rl, generated)), 201)


async def get_list(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    rl = await s.get_list(d, m["recorder_key"], m["list_key"], asset_password(request))
    return json_response(entity(documents.list_node(rl)))


async def patch_list(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    p = Params(await _body(request))
    rl, generated = await s.set_list(d, m["recorder_key"], m["list_key"], inputs.list_values(p),
                                     asset_password(request))
    return json_response(entity(documents.list_node(rl, generated)))


async def delete_list(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    await s.delete_list(d, m["recorder_key"], m["list_key"], asset_password(request))
    return web.Response(status=204)


# --- recordings -------------------------------------------------------------------------------
def _recording(request: web.Request, r: Any, generated: Any = None) -> dict[str, Any]:
    return entity(documents.recording_node(r, audio_links(request), generated, quality=True))


async def search_recordings(request: web.Request, d: Developer,
                            s: RecorderService) -> web.Response:
    m = request.match_info
    found = inputs.filters(Params(request.query), inputs.RECORDING_SEARCH_FIELDS)
    page = await s.search_recordings(d, m["recorder_key"], m["list_key"], found,
                                     asset_password(request))
    return json_response({"recordings": [_recording(request, r) for r in page.items]})


async def create_recording(request: web.Request, d: Developer,
                           s: RecorderService) -> web.Response:
    m = request.match_info
    p = Params(await _body(request))
    key = p.key("recording_key")
    r, generated = await s.create_recording(
        d, m["recorder_key"], m["list_key"], key if isinstance(key, str) else None,
        inputs.recording_values(p, creating=True), inputs.sequence(p),
        p.boolean("keep_consecutive", True), asset_password(request))
    return json_response(_recording(request, r, generated), 201)


async def get_recording(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    r = await s.get_recording(d, m["recorder_key"], m["list_key"], m["recording_key"],
                              asset_password(request))
    return json_response(_recording(request, r))


async def patch_recording(request: web.Request, d: Developer,
                          s: RecorderService) -> web.Response:
    m = request.match_info
    p = Params(await _body(request))
    r, generated = await s.set_recording(
        d, m["recorder_key"], m["list_key"], m["recording_key"],
        inputs.recording_values(p, creating=False), inputs.sequence(p),
        p.boolean("keep_consecutive", True), asset_password(request))
    return json_response(_recording(request, r, generated))


async def delete_recording(request: web.Request, d: Developer,
                           s: RecorderService) -> web.Response:
    m = request.match_info
    keep = Params(request.query).boolean("keep_consecutive", True)
    await s.delete_recording(d, m["recorder_key"], m["list_key"], m["recording_key"], keep,
                             asset_password(request))
    return web.Response(status=204)


# --- sessions ---------------------------------------------------------------------------------
def _session(request: web.Request, view: SessionView) -> dict[str, Any]:
    s = view.session
    body: dict[str, Any] = {
        "recording_session_key": s.session_key, "session_state": s.state,
        "voice_recorder_key": s.recorder_key, "recording_list_key": s.list_key,
        "expires_at": s.expires_at.isoformat(),
        "phone_numbers": [entity(documents.number_node(n)) for n in view.phone_numbers],
        "session_recordings": [_recording(request, r) for r in view.recordings],
        "current_recording": (None if view.current_recording is None
                              else _recording(request, view.current_recording)),
    }
    if s.failure_code is not None:
        body["failure_code"], body["failure_reason"] = s.failure_code, s.failure_reason
    if view.pin is not None:
        body["ivr_pin"] = view.pin
        body["excluded_recordings"] = [_recording(request, r) for r in view.excluded]
    return body


async def start_session(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    p = Params(await _body(request))
    view = await s.start_session(d, m["recorder_key"], m["list_key"], inputs.recording_keys(p),
                                 inputs.caller_id(p), p.boolean("overwrite", False),
                                 asset_password(request), inputs.callback_url(p))
    return json_response(_session(request, view), 201)


async def get_session(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    return json_response(_session(request, await s.session_status(
        d, request.match_info["session_key"])))


async def expire_session(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    return json_response(_session(request, await s.expire_session(
        d, request.match_info["session_key"])))


async def list_deliveries(request: web.Request, d: Developer,
                          s: RecorderService) -> web.Response:
    p = Params(request.query)
    state = p.choice("state", ("pending", "delivered", "failed"))
    limit = p.integer("limit", 1, 1000)
    rows = await s.deliveries(d, request.match_info["recorder_key"],
                              state if isinstance(state, str) else None,
                              limit if isinstance(limit, int) else 100)
    return json_response({"deliveries": [
        {k: (v.isoformat() if isinstance(v, datetime) else str(v) if k == "event_id" else v)
         for k, v in row.items()} for row in rows]})


async def retry_delivery(request: web.Request, d: Developer, s: RecorderService) -> web.Response:
    m = request.match_info
    await s.retry_delivery(d, m["recorder_key"], m["event_id"])
    return json_response({"event_id": m["event_id"], "state": "pending"}, 202)


async def openapi(request: web.Request) -> web.Response:
    return json_response(DOCUMENT)


def add_routes(app: web.Application) -> None:
    r = app.router
    rec = "/v1/recorders/{recorder_key}"
    lst = rec + "/lists/{list_key}"
    r.add_get("/v1/openapi.json", openapi)
    r.add_post("/v1/developers", create_developer)
    r.add_get("/v1/developer", authed(get_developer))
    r.add_post("/v1/tokens", authed(create_token))
    r.add_get("/v1/recorders", authed(list_recorders))
    r.add_post("/v1/recorders", authed(create_recorder))
    r.add_get(rec, authed(get_recorder))
    r.add_patch(rec, authed(patch_recorder))
    r.add_delete(rec, authed(delete_recorder))
    r.add_get(rec + "/lists", authed(search_lists))
    r.add_post(rec + "/lists", authed(create_list))
    r.add_get(lst, authed(get_list))
    r.add_patch(lst, authed(patch_list))
    r.add_delete(lst, authed(delete_list))
    r.add_get(lst + "/recordings", authed(search_recordings))
    r.add_post(lst + "/recordings", authed(create_recording))
    r.add_get(lst + "/recordings/{recording_key}", authed(get_recording))
    r.add_patch(lst + "/recordings/{recording_key}", authed(patch_recording))
    r.add_delete(lst + "/recordings/{recording_key}", authed(delete_recording))
    r.add_post(lst + "/sessions", authed(start_session))
    r.add_get("/v1/sessions/{session_key}", authed(get_session))
    r.add_post("/v1/sessions/{session_key}/expire", authed(expire_session))
    r.add_get(rec + "/deliveries", authed(list_deliveries))
    r.add_post(rec + "/deliveries/{event_id}/retry", authed(retry_delivery))
