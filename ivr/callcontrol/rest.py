"""The voice API over HTTP: `/voice/v1/call/...` in the EnableX shapes, and the VoipNow
`PUT /uapi/phoneCalls/{user}/{extension}/{phoneCallId}` StartRecording action.

Authentication is per application: HTTP Basic with the app id and app key, or the same pair
as a bearer token, `Bearer <app id>.<app key>` (what VoipNow's UAPI sends). Errors answer in the
API's own shape — `{"result", "msg", "state": "failed", "status": "failed", "timestamp"}` (the
seed writes `state` in some examples and `status` in others: both are sent) plus the call's
`voice_id`, `from`, `to` when the request named a call — never the core's generic one."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ivr.callcontrol import models
from ivr.callcontrol.errors import BadRequest, HeldElsewhere, NotAuthenticated, VoiceError
from ivr.callcontrol.live import LiveCall
from ivr.callcontrol.models import BRIDGE_RING_TIMEOUT, Application, timestamp
from ivr.callcontrol.service import CallControl
from ivr.core.errors import IvrError
from ivr.core.web import json_response, read_json

log = logging.getLogger(__name__)

CALLCONTROL = web.AppKey("callcontrol", CallControl)
_CALL_VIEW = web.RequestKey("callcontrol.call_view", dict)
# Set on a request one engine of a pool passes on to the engine that runs the call.
FORWARDED = "X-Ivr-Forwarded"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(exc: IvrError, view: dict[str, Any] | None) -> dict[str, Any]:
    result = exc.result if isinstance(exc, VoiceError) else exc.http_status
    body: dict[str, Any] = dict(view or {})
    body.update({"state": "failed", "status": "failed", "result": result, "msg": exc.message})
    param = exc.extra.get("param")
    if param:
        body["param"] = param
    if exc.details:
        body["details"] = exc.details
    for key in ("voice_id", "from", "to"):
        if key in exc.extra:
            body[key] = exc.extra[key]
    body["timestamp"] = timestamp()
    return body


def voice_api(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except HeldElsewhere as held:  # another engine of the pool runs the call: ask it
            try:
                return await _forward(request, held.url)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("%s %s: engine at %s: %s", request.method, request.path, held.url,
                            exc)
                return json_response(error_body(held, request.get(_CALL_VIEW)), 409)
        except IvrError as exc:
            if exc.http_status >= 500:
                log.warning("%s %s: %s", request.method, request.path, exc.message)
            return json_response(error_body(exc, request.get(_CALL_VIEW)), exc.http_status)

    return wrapped


async def _forward(request: web.Request, base: str) -> web.Response:
    """The same request to the engine that runs the call, its answer as it gives it. Marked,
    so that engine answers itself and never passes it on again."""
    headers = {k: v for k, v in request.headers.items()
               if k.lower() in ("authorization", "authentication", "content-type")}
    headers[FORWARDED] = "1"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http, \
            http.request(request.method, base.rstrip("/") + request.path_qs, headers=headers,
                         data=await request.read()) as resp:
        return web.Response(status=resp.status, body=await resp.read(),
                            content_type=resp.content_type)


def control_of(request: web.Request) -> CallControl:
    return request.app[CALLCONTROL]


def credentials(request: web.Request) -> tuple[str, str]:
    # VoipNow's examples write the header `Authentication:`; it counts when Authorization is
    # absent.
    header = request.headers.get("Authorization") or request.headers.get("Authentication") or ""
    scheme, _, value = header.strip().partition(" ")
    app_id = app_key = ""
    if scheme.lower() == "basic" and value:
        try:
            app_id, _, app_key = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
    elif scheme.lower() == "bearer":
        # `.` joins them: app ids are hex and app keys URL-safe base64, neither has one, and
        # it is a bearer-token character where `:` is not.
        app_id, _, app_key = value.strip().partition(".")
    if app_id and app_key:
        return app_id, app_key
    raise NotAuthenticated("send the app id and app key: HTTP Basic, or Bearer <app id>.<app key>")


async def authenticate(request: web.Request) -> Application:
    app_id, app_key = credentials(request)
    return await control_of(request).authenticate(app_id, app_key)


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    data = await read_json(request, BadRequest)
    if not isinstance(data, dict):
        raise BadRequest("body", "the request body must be a JSON object")
    return data


async def _live(request: web.Request, app: Application) -> LiveCall:
    live = await control_of(request).live_call(app, request.match_info["voice_id"],
                                               may_forward=FORWARDED not in request.headers)
    request[_CALL_VIEW] = live.base()
    return live


# --- calls --------------------------------------------------------------------------------
@voice_api
async def create_call(request: web.Request) -> web.Response:
    app = await authenticate(request)
    outbound = models.parse_outbound(await json_body(request))
    live = await control_of(request).originate(app, outbound)
    body: dict[str, Any] = {"voice_id": str(live.voice_id), "state": "initiated",
                            "msg": "call initiated", "from": live.from_number,
                            "to": live.to_number, "channel_id": live.call.id}
    if outbound.owner_ref is not None:
        body["owner_ref"] = outbound.owner_ref
    body["timestamp"] = timestamp()
    return json_response(body)


@voice_api
async def get_call(request: web.Request) -> web.Response:
    app = await authenticate(request)
    view = await control_of(request).call_view(app, request.match_info["voice_id"])
    return json_response({**view, "timestamp": timestamp()})


@voice_api
async def hangup_call(request: web.Request) -> web.Response:
    app = await authenticate(request)
    live = await _live(request, app)
    await live.hangup()
    return json_response({**live.base(), "state": "success", "channel_id": live.call.id,
                          "timestamp": timestamp()})


@voice_api
async def accept_call(request: web.Request) -> web.Response:
    app = await authenticate(request)
    live = await _live(request, app)
    await live.accept()
    return json_response({"voice_id": str(live.voice_id), "status": "success",
                          "timestamp": timestamp()})


@voice_api
async def play(request: web.Request) -> web.Response:
    app = await authenticate(request)
    live = await _live(request, app)
    req = models.parse_play(await json_body(request))
    live.check_can_play()  # before synthesising anything
    await control_of(request).check_asr(req)
    media = await control_of(request).resolve_media(req.media)
    play_id = live.play(req, media)
    return json_response({**live.base(), "play_id": play_id, "playstate": "initiated",
                          "timestamp": timestamp()})


async def _bridge_request(request: web.Request, to_key: str
                          ) -> tuple[LiveCall, models.ConnectRequest]:
    app = await authenticate(request)
    live = await _live(request, app)
    req = models.parse_connect(await json_body(request), to_key)
    await control_of(request).check_from(app, req.from_number)
    await control_of(request).admit_call(app, [req.to])  # a second leg out costs as a call
    return live, req


@voice_api
async def connect(request: web.Request) -> web.Response:
    live, req = await _bridge_request(request, "to")
    bridge_id = await live.connect(req.to, req.from_number, BRIDGE_RING_TIMEOUT)
    return json_response({"voice_id": str(live.voice_id), "bridge_id": bridge_id,
                          "state": "initiated", "from": req.from_number, "to": req.to.value,
                          "timestamp": timestamp()})


@voice_api
async def transfer(request: web.Request) -> web.Response:
    live, req = await _bridge_request(request, "transfer_to")
    channel_id = await live.transfer(req.to, req.from_number, BRIDGE_RING_TIMEOUT)
    return json_response({"voice_id": str(live.voice_id), "from": req.from_number,
                          "to": req.to.value, "status": "initiated", "channel_id": channel_id,
                          "timestamp": timestamp()})


@voice_api
async def forward(request: web.Request) -> web.Response:
    live, req = await _bridge_request(request, "to")
    await live.forward(req.to, req.from_number, BRIDGE_RING_TIMEOUT)
    return json_response({"voice_id": str(live.voice_id), "from": req.from_number,
                          "to": req.to.value, "status": "success", "timestamp": timestamp()})


@voice_api
async def hold(request: web.Request) -> web.Response:
    app = await authenticate(request)
    live = await _live(request, app)
    on = models.parse_hold(await json_body(request))
    await live.hold(on)
    return json_response({**live.base(), "hold": on, "status": "success",
                          "timestamp": timestamp()})


@voice_api
async def recording(request: web.Request) -> web.Response:
    app = await authenticate(request)
    live = await _live(request, app)
    command = models.parse_recording(await json_body(request))
    if command.start:
        recording_id = await live.start_recording(command.recording_name, command.format)
    else:
        recording_id = await live.stop_recording()
    return json_response({"status": "success", **live.base(), "recording_id": str(recording_id),
                          "msg": "", "timestamp": timestamp()})


@voice_api
async def recording_file(request: web.Request) -> web.Response:
    app = await authenticate(request)
    data, fmt = await control_of(request).recording_file(app, request.match_info["recording_id"])
    # wav49 is GSM in a WAV container
    ext, mime = {"wav": ("wav", "audio/wav"), "wav49": ("WAV", "audio/wav"),
                 "mp3": ("mp3", "audio/mpeg")}[fmt]
    return web.Response(body=data, content_type=mime, headers={
        "Content-Disposition": f'attachment; filename="{request.match_info["recording_id"]}.{ext}"',
    })


def add_routes(app: web.Application) -> None:
    base = "/voice/v1/call"
    call = base + "/{voice_id}"
    routes = [
        ("POST", base, create_call),
        ("GET", call, get_call),
        ("DELETE", call, hangup_call),
        ("POST", call + "/accept", accept_call),
        ("PUT", call + "/play", play),
        ("PUT", call + "/connect", connect),
        ("PUT", call + "/transfer", transfer),
        ("PUT", call + "/forward", forward),
        ("POST", call + "/hold", hold),
        ("PUT", call + "/hold", hold),
        ("PUT", call + "/recording", recording),
        ("GET", "/voice/v1/recording/{recording_id}", recording_file),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
        # The seed's routes are written `.../call/$voiceId/`: with the slash too, answered
        # in place (a redirect would turn a client's DELETE or PUT into a GET).
        app.router.add_route(method, path + "/", handler)
