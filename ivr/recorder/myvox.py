"""The MyVox 1.11 face: `/vr?action=...` over GET or POST form, answered in XML (default) or
the JSON mirror of the same tree, always with HTTP 200 (MyVox clients read `status`). The
commands are in myvox_commands.py, the reply tree in documents.py."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDict

from ivr.core.errors import InvalidParameter, IvrError, MissingParameter, Unauthorized
from ivr.core.text import bad_character, describe
from ivr.core.web import SETTINGS
from ivr.recorder.context import RECORDER, audio_links, base_url
from ivr.recorder.documents import (
    ROOT,
    ROOTS,
    Many,
    Node,
    document,
    recording_node,
)
from ivr.recorder.errors import RecordingsLocked
from ivr.recorder.models import Developer
from ivr.recorder.myvox_commands import ACTIONS, Action, Ctx
from ivr.recorder.params import ABSENT, Params

log = logging.getLogger(__name__)

# MyVox clients vary in case ("Action", "getrecording"); match names case-insensitively.
_BY_LOWER = {name.lower(): name for name in ACTIONS}

# The seed's error table.
ERROR_MESSAGES = {
    1000: "Unknown system error", 1001: "Authentication failed",
    1002: "Unrecognized API command", 1003: "Parameter error",
    1100: "Unknown developer error", 1101: "Create developer error",
    1102: "Get developer error", 1103: "Set developer error", 1104: "Delete developer error",
    1105: "Username is not available", 1106: "Changed password error",
    1107: "Email password error", 1108: "Login error",
    1200: "Unknown voice recorder error", 1201: "Create voice recorder error",
    1202: "Get voice recorder error", 1203: "Set voice recorder error",
    1204: "Delete voice recorder error", 1205: "Play prompt error", 1206: "Set prompt error",
    1207: "Upload prompt error", 1208: "Unauthorized voice recorder error",
    1300: "Unknown recording list error", 1301: "Create recording list error",
    1302: "Get recording list error", 1303: "Set recording list error",
    1304: "Delete recording list error", 1305: "Recording list key error",
    1400: "Unknown recording error", 1401: "Create recording error",
    1402: "Get recording error", 1403: "Set recording error", 1404: "Delete recording error",
    1405: "Play recording error", 1406: "Recording key error",
    1500: "Unknown recording session error", 1501: "Start recording session error",
    1502: "Get session status error", 1503: "Expire recording session error",
}


def render(status: str, message: str, body: Node, reply: str,
           root: str = ROOT) -> web.Response:
    data, content_type = document(status, message, body, reply, root)
    if reply == "json":
        return web.Response(body=data, content_type=content_type)
    return web.Response(body=data, content_type=content_type, charset="utf-8")


def error_code(exc: IvrError, action: Action | None, action_name: str) -> int:
    code = getattr(exc, "myvox_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, InvalidParameter):
        return 1003
    if isinstance(exc, Unauthorized):
        return 1108 if action_name == "LoginDeveloper" else 1001
    return 1000 if action is None else action.code


MAX_FIELDS = 200  # parameters in one request (query and body together)
MAX_FIELD_BYTES = 64 * 1024  # one text field of a multipart body


def _add(merged: MultiDict[Any], name: str, value: Any) -> None:
    if len(merged) >= MAX_FIELDS:
        raise InvalidParameter("body", f"a request carries at most {MAX_FIELDS} parameters")
    for text in (name, value) if isinstance(value, str) else (name,):
        bad = bad_character(text)
        if bad is not None:
            raise InvalidParameter(name[:64], f"parameter '{name[:64]}' contains the control "
                                   f"character {describe(bad)}")
    merged.add(name.lower(), value)


async def _read_params(request: web.Request) -> MultiDict[Any]:
    """Query and body parameters. Form and urlencoded bodies are capped at IVR_MAX_BODY (the
    app's client_max_size); a multipart body is read part by part, and its file (a prompt,
    up to IVR_MAX_UPLOAD) only once the developer named before it is authenticated, so an
    anonymous client cannot make the server hold a large body."""
    # Every parameter name is lower case; the seed's tables also write `Action`, `Reply` and
    # `Password`, and clients copy them.
    merged: MultiDict[Any] = MultiDict()
    for name, text in request.query.items():
        _add(merged, name, text)
    if request.method != "POST" or not request.body_exists:
        return merged
    try:
        if request.content_type.startswith("multipart/"):
            await _read_multipart(request, merged)
        else:
            for name, field in (await request.post()).items():
                _add(merged, name, field)
    except web.HTTPRequestEntityTooLarge as exc:
        # Over IVR_MAX_BODY bytes, or over aiohttp's 1000 form fields.
        raise InvalidParameter("body", f"the request body is refused: {exc.text} (a prompt "
                               "goes in a multipart body)") from None
    except ValueError as exc:  # a malformed multipart body or form
        raise InvalidParameter("body", f"the request body cannot be read: {exc}") from None
    return merged


async def _read_multipart(request: web.Request, merged: MultiDict[Any]) -> None:
    limits = request.app[SETTINGS].security
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise InvalidParameter("body", "a multipart body of named fields is expected")
        if part.filename is None:
            data = await _read_part(part, MAX_FIELD_BYTES)
            _add(merged, part.name, data.decode(part.get_charset("utf-8"), "replace"))
            continue
        username, password = merged.get("username"), merged.get("password")
        if not (isinstance(username, str) and isinstance(password, str)):
            raise Unauthorized("authentication failed: send the username and password fields "
                               "before the file")
        await request.app[RECORDER].authenticate(username[:64], password[:200])
        _add(merged, part.name, await _read_part(part, limits.max_upload))


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(65536):
        size += len(chunk)
        if size > limit:
            raise InvalidParameter(part.name or "body",
                                   f"field '{part.name}' is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _choice(raw: MultiDict[Any], name: str, options: dict[str, str], default: str) -> str:
    value = str(raw.get(name, "") or default).lower()
    if value not in options:
        raise InvalidParameter(name, f"parameter '{name}' must be {' or '.join(options.values())}")
    return options[value]


_REPLIES = {"xml": "xml", "json": "json"}


async def handle(request: web.Request) -> web.Response:
    reply, root = "xml", ROOT
    action: Action | None = None
    action_name = ""
    try:
        raw = await _read_params(request)
        reply = _choice(raw, "reply", _REPLIES, "xml")
        root = _choice(raw, "reply_root", ROOTS, ROOT)
        passwords = [v for v in raw.getall("password", []) if isinstance(v, str)]
        # The common `password` is the developer's; a command's own password (for a protected
        # list or recording) comes as `asset_password` or as a second `password` value, or
        # under its object's and role's names (Ctx.passwords).
        flat: dict[str, Any] = {k: raw.get(k) for k in raw}
        flat["password"] = passwords[0] if passwords else ABSENT
        asset = raw.get("asset_password") or (passwords[1] if len(passwords) > 1 else None)
        params = Params({k: v for k, v in flat.items() if v is not ABSENT})
        action_name = str(raw.get("action", "") or "")
        if not action_name:
            raise MissingParameter("action")
        canonical = _BY_LOWER.get(action_name.lower())
        if canonical is None:
            return _failure(reply, root, 1002, f"unknown action '{action_name}'")
        action_name, action = canonical, ACTIONS[canonical]
        ctx = Ctx(params, request.app[RECORDER], base_url(request),
                  asset if isinstance(asset, str) else None, audio_links(request))
        if action.authenticated:
            ctx.developer = await _authenticate(ctx)
        message, body = await action.run(ctx)
        return render("success", message, body, reply, root)
    except IvrError as exc:
        extra: Node = []
        if isinstance(exc, RecordingsLocked):
            # Which recordings, as a successful start shows those it leaves out.
            links = audio_links(request)
            extra.append(("excluded_recordings",
                          [Many("recording", [recording_node(r, links) for r in exc.excluded])]))
        return _failure(reply, root, error_code(exc, action, action_name), exc.message, extra)
    except Exception:
        log.exception("MyVox action %s failed", action_name or "?")
        return _failure(reply, root, 1000, "an unexpected error occurred; it has been logged")


async def _authenticate(ctx: Ctx) -> Developer:
    p = ctx.params
    if not (p.given("username") and p.given("password")):
        # Not a parameter error (1003): the seed's 1001 is "a protected command without being
        # logged in". Session commands sent as the seed's samples show (the key alone) land
        # here too: see docs/api.md for why the key does not authorise them.
        alone = " (a recording session key alone does not)" if p.given(
            "recording_session_key") else ""
        raise Unauthorized("authentication failed: this command needs the developer's "
                           f"username and password{alone}")
    username = p.text("username", required=True, max_len=64)
    password = p.text("password", required=True, max_len=200)
    return await ctx.service.authenticate(str(username), str(password))


def _failure(reply: str, root: str, code: int, details: str,
             extra: Node | None = None) -> web.Response:
    message = ERROR_MESSAGES[code]
    return render("failed", message, [("error_code", code), ("error_message", message),
                                      ("error_details", details), *(extra or [])], reply, root)
