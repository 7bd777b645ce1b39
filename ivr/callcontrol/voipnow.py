"""The VoipNow UAPI form of starting a recording:
`PUT /uapi/phoneCalls/{userId}/{extension}/{phoneCallId}` (or `/uapi/phoneCall/...`, as the
seed's example writes it) with
`{"action": "StartRecording", "format": "wav"|"wav49", "phoneCallViewId": "01"}`.
Authentication: the application's credentials, as HTTP Basic or `Bearer <app id>.<app key>`.

Here the phone call is a call-control call (`phoneCallId` = its voice_id), `extension` is the
application's number on the call (or `@self`), `userId` is `@me`, `@viewer`, `@owner` or the
app id, and the views are `01` (the call's own leg) and, once bridged, `02` (the other leg;
both record the same mix). The reply is the PhoneCall: `published` is when the call began,
`answered` when it was answered, and each view's `answered` when its leg was (the call's own
leg, for view 01), as ISO 8601 times. Errors answer `{"error": {"code", "message"}}` with the
codes the UAPI defines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ivr.callcontrol.errors import CallNotFound, CallStateMismatch, NotAuthenticated
from ivr.callcontrol.live import LiveCall
from ivr.callcontrol.rest import authenticate, control_of, json_body
from ivr.core.errors import IvrError
from ivr.core.web import json_response

_USERS = ("@me", "@viewer", "@owner")


class UapiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _phone_call(live: LiveCall, extension: str, self_url: str, published: datetime,
                answered: datetime, recording_started: datetime) -> dict[str, Any]:
    views = [{"id": "01", "extension": extension, "answered": _time(answered), "status": "5",
              "callerId": live.from_number, "source": [live.from_number],
              "destination": [live.to_number], "recording": _time(recording_started)}]
    return {"id": str(live.voice_id), "extension": extension, "ownerId": live.app.app_id,
            "ownerName": live.app.name, "answered": _time(answered),
            "published": _time(published), "phoneCallView": views,
            "link": {"self": self_url}}


async def start_recording(request: web.Request) -> web.Response:
    try:
        return await _start_recording(request)
    except UapiError as exc:
        return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)
    except NotAuthenticated as exc:
        return json_response({"error": {"code": "unauthorized", "message": exc.message}}, 401)
    except IvrError as exc:
        return json_response({"error": {"code": exc.error_id, "message": exc.message}},
                             exc.http_status)


async def _start_recording(request: web.Request) -> web.Response:
    app = await authenticate(request)
    body = await json_body(request)
    user = request.match_info["user"]
    extension = request.match_info["extension"]
    call_id = request.match_info["phone_call_id"]
    if body.get("action") != "StartRecording":
        raise UapiError(400, "pc_action_invalid", "action must be StartRecording")
    invalid_call = UapiError(400, "pc_phonecall_invalid",
                             "phoneCallId must reference an existing phone call")
    if not call_id.replace("-", "").isalnum() or (user not in _USERS and user != app.app_id):
        raise invalid_call
    try:
        live = await control_of(request).live_call(app, call_id)
    except (CallNotFound, CallStateMismatch):
        raise invalid_call from None
    own_number = live.to_number if live.direction == "inbound" else live.from_number
    if extension not in ("@self", own_number):
        raise invalid_call
    fmt = body.get("format", "wav")
    if fmt not in ("wav", "wav49"):
        raise UapiError(400, "pc_recformat_invalid",
                        "The recording format must be one of the following values: wav or wav49")
    view = body.get("phoneCallViewId")
    if view not in ("01", "02") or (view == "02" and not live.bridged):
        raise UapiError(400, "pc_phonecallview_invalid",
                        "phoneCallViewId must reference a view of the phone call")
    try:
        await live.start_recording(None, fmt)
    except CallStateMismatch as exc:
        raise UapiError(400, "pc_phonecall_invalid", exc.message) from None
    started = datetime.now(UTC)
    row = await control_of(request).store.call(live.voice_id, app.id)
    published = row["created_at"] if row else started
    # None while the call's answer is still being written (its events are written in order,
    # behind the request that answered it): that was a moment ago.
    answered = (row["answered_at"] if row else None) or started
    self_url = (f"{request.scheme}://{request.host}/uapi/phoneCalls/"
                f"{quote(user, safe='@')}/{quote(own_number)}/{live.voice_id}")
    return json_response(_phone_call(live, own_number, self_url, published, answered, started))


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")
