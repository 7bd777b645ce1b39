"""The MyVox 1.11 face: `/vr?action=...` over GET or POST form, answered in XML (default) or
the JSON mirror of the same tree, always with HTTP 200 (MyVox clients read `status`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from aiohttp import web
from multidict import MultiDict

from ivr.core.errors import InvalidParameter, IvrError, MissingParameter, Unauthorized
from ivr.delivery.links import AudioLinks
from ivr.recorder import inputs
from ivr.recorder.context import audio_links, base_url, service_for
from ivr.recorder.errors import RecordingsLocked
from ivr.recorder.models import (
    Developer,
    Generated,
    PhoneNumber,
    Recorder,
    Recording,
    RecordingList,
    SessionView,
)
from ivr.recorder.params import ABSENT, Params

if TYPE_CHECKING:  # the service renders its events with this module's nodes
    from ivr.recorder.service import RecorderService

log = logging.getLogger(__name__)

ROOT = "MyVoxapi"
# The seed's common section answers `<openMyVox><status>..` (nested elements only), its command
# samples `<MyVoxapi status="..">`: the latter by default, the former on `reply_root=openMyVox`.
COMMON_ROOT = "openMyVox"
ROOTS = {name.lower(): name for name in (ROOT, COMMON_ROOT)}

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


# --- the reply tree ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Many:
    """Elements repeated under one name: XML repeats the element, JSON holds an array."""

    name: str
    items: list[list[tuple[str, Any]]]


Node = list[Any]  # of (name, value) pairs and Many


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _xml(node: Node, indent: str) -> list[str]:
    lines: list[str] = []
    for item in node:
        if isinstance(item, Many):
            for child in item.items:
                lines.append(f"{indent}<{item.name}>")
                lines += _xml(child, indent + "  ")
                lines.append(f"{indent}</{item.name}>")
            continue
        name, value = item
        if isinstance(value, list):
            lines.append(f"{indent}<{name}>")
            lines += _xml(value, indent + "  ")
            lines.append(f"{indent}</{name}>")
        else:
            lines.append(f"{indent}<{name}>{escape(_text(value))}</{name}>")
    return lines


def _json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in node:
        if isinstance(item, Many):
            out[item.name] = [_json(child) for child in item.items]
            continue
        name, value = item
        if isinstance(value, list):
            out[name] = _json(value)
        elif isinstance(value, datetime):
            out[name] = format_time(value)
        else:
            out[name] = value
    return out


def document(status: str, message: str, body: Node, reply: str,
             root: str = ROOT) -> tuple[bytes, str]:
    """The reply document as bytes and its content type (API replies and event bodies)."""
    if reply == "json":
        tree = {"status": status, "message": message, **_json(body)}
        return orjson.dumps({root: tree}), "application/json"
    if root == COMMON_ROOT:
        text = "\n".join([f"<{root}>", *_xml([("status", status), ("message", message), *body],
                                             "  "), f"</{root}>"])
    elif not body:
        text = f'<{root} message={quoteattr(message)} status="{status}" />'
    else:
        text = "\n".join([f'<{root} message={quoteattr(message)} status="{status}">',
                          *_xml(body, "  "), f"</{root}>"])
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode(), "text/xml"


def render(status: str, message: str, body: Node, reply: str,
           root: str = ROOT) -> web.Response:
    data, content_type = document(status, message, body, reply, root)
    if reply == "json":
        return web.Response(body=data, content_type=content_type)
    return web.Response(body=data, content_type=content_type, charset="utf-8")


# --- elements ---------------------------------------------------------------------------------
def _opt(node: Node, name: str, value: Any) -> None:
    if value is not None:
        node.append((name, value))


def _passwords(node: Node, generated: Generated | None) -> None:
    if generated is not None:
        for name, value in generated.passwords.items():
            node.append((name, value))


def quality_node(quality: dict[str, Any]) -> Node:
    """A take's figures and verdict (ivr/media/quality.py); figures it could not measure are
    left out."""
    return [(name, value) for name, value in quality.items() if value is not None]


def recording_node(r: Recording, links: AudioLinks, generated: Generated | None = None, *,
                   quality: bool = False) -> Node:
    """With `quality` (/v1 and events) the accepted take's figures as a `quality` element;
    MyVox replies carry only its `quality_verdict`, a flat value as upload_state is."""
    node: Node = [("recording_key", r.recording_key), ("recording_state", r.state)]
    _opt(node, "name", r.name)
    node.append(("sequence", r.sequence))
    for name in ("meta_data_1", "meta_data_2", "meta_data_3", "caller_id", "touchtone_input"):
        _opt(node, name, getattr(r, name))
    node += [("is_in_session", r.is_in_session), ("recording_length", r.recording_length),
             # The seed's tables call it `recording_length` and `length`; both are sent.
             ("length", r.recording_length), ("play_key", r.play_key),
             ("has_wav_file", r.has_wav_file)]
    if r.has_wav_file:
        node.append(("wav_url", links.url(r.play_key, "wav", r.link_ttl_seconds)))
    node.append(("has_mp3_file", r.has_mp3_file))
    if r.has_mp3_file:
        node.append(("mp3_url", links.url(r.play_key, "mp3", r.link_ttl_seconds)))
    if r.accepted_take is not None:
        # One more flat element, as upload_state is: true for a take nobody confirmed.
        node.append(("kept_on_hangup", r.kept_on_hangup))
    _opt(node, "upload_state", r.upload_state)
    _opt(node, "audio_deleted_at", r.audio_deleted_at)
    if r.quality is not None:
        node.append(("quality_verdict", r.quality.get("verdict")))
        if quality:
            node.append(("quality", quality_node(r.quality)))
    node += [("access_protected", r.access_protected), ("update_protected", r.update_protected),
             ("delete_protected", r.delete_protected), ("date_created", r.created_at),
             ("last_updated", r.updated_at), ("last_accessed", r.accessed_at)]
    _passwords(node, generated)
    return node


def list_node(rl: RecordingList, generated: Generated | None = None) -> Node:
    node: Node = [("recording_list_key", rl.list_key)]
    for name in ("name", "meta_data_1", "meta_data_2", "meta_data_3", "caller_id",
                 "access_code"):
        _opt(node, name, getattr(rl, name))
    node += [("access_protected", rl.access_protected),
             ("update_protected", rl.update_protected),
             ("delete_protected", rl.delete_protected), ("recording_count", rl.recording_count)]
    _opt(node, "max_recordings", rl.max_recordings)
    node += [("date_created", rl.created_at), ("last_updated", rl.updated_at),
             ("last_accessed", rl.accessed_at)]
    _passwords(node, generated)
    return node


def number_node(n: PhoneNumber) -> Node:
    return [("phone_number_key", n.phone_number_key), ("phone_number", n.number),
            ("display_number", n.display_number), ("country", n.country)]


def recorder_node(v: Recorder, generated: Generated | None = None) -> Node:
    node: Node = [("voice_recorder_key", v.recorder_key), ("name", v.name),
                  ("audio_format", v.audio_format), ("storage", v.storage)]
    _opt(node, "upload_url", v.upload_url)
    node += [("upload_method", v.upload_method),
             ("upload_authenticated", v.upload_authenticated)]
    _opt(node, "retention_days", v.retention_days)
    _opt(node, "callback_url", v.callback_url)
    node.append(("callback_format", v.callback_format))
    _opt(node, "link_ttl_seconds", v.link_ttl_seconds)
    node += [("password_required", v.password_required), ("prompt_set", v.prompt_set),
             ("initiation", v.initiation), ("identification", v.identification),
             ("lookup_mode", v.lookup_mode), ("touchtone_prompt", v.touchtone_prompt)]
    _opt(node, "touchtone_length", v.touchtone_length)
    node += [("pin_length", v.pin_length), ("pin_ttl_seconds", v.pin_ttl_seconds),
             ("max_take_seconds", v.max_take_seconds), ("silence_seconds", v.silence_seconds),
             ("min_take_seconds", v.min_take_seconds),
             ("quality_check", v.quality_check), ("quality_keep_anyway", v.quality_keep_anyway),
             ("quality_min_speech_seconds", v.quality_min_speech_seconds),
             ("quality_min_loudness_lufs", v.quality_min_loudness_lufs),
             ("quality_max_clipped_ratio", v.quality_max_clipped_ratio),
             ("quality_min_snr_db", v.quality_min_snr_db),
             ("phone_number_list", [Many("phone_number_info",
                                         [number_node(n) for n in v.phone_numbers])]),
             ("date_created", v.created_at), ("last_updated", v.updated_at)]
    for secret in ("recorder_password", "callback_secret"):
        if generated is not None and secret in generated.passwords:
            node.append((secret, generated.passwords[secret]))
    return node


def developer_node(d: Developer) -> Node:
    return [("username", d.username), ("email", d.email), ("name", d.name),
            ("date_created", d.created_at), ("last_updated", d.updated_at)]


def session_head(view: SessionView) -> Node:
    s = view.session
    node: Node = [("session_state", s.state), ("voice_recorder_key", s.recorder_key),
                  ("recording_list_key", s.list_key), ("recording_session_key", s.session_key)]
    if s.failure_code is not None:  # its call failed on our side (not in the seed)
        node += [("failure_code", s.failure_code), ("failure_reason", s.failure_reason)]
    return node


# --- commands ---------------------------------------------------------------------------------
@dataclass
class Ctx:
    params: Params
    service: RecorderService
    base_url: str
    asset_password: str | None
    links: AudioLinks
    developer: Developer | None = None

    @property
    def dev(self) -> Developer:
        assert self.developer is not None
        return self.developer

    def key(self, name: str) -> str:
        return str(self.params.key(name, required=True))

    def optional_key(self, name: str) -> str | None:
        value = self.params.key(name)
        return value if isinstance(value, str) else None

    def passwords(self, *, role_names: bool = True) -> inputs.AssetPasswords:
        """The protected object's passwords; role_names=False on the commands that take
        `access_password` .. as the object's new passwords."""
        return inputs.asset_passwords(self.params, self.asset_password, role_names=role_names)


Reply = tuple[str, Node]
Command = Callable[[Ctx], Awaitable[Reply]]


async def create_recording(c: Ctx) -> Reply:
    p = c.params
    rk, lk = c.key("voice_recorder_key"), c.key("recording_list_key")
    recording, generated = await c.service.create_recording(
        c.dev, rk, lk, c.optional_key("recording_key"), inputs.recording_values(p, creating=True),
        inputs.sequence(p), p.boolean("keep_consecutive", True), c.passwords())
    return (f"New recording {recording.recording_key} created",
            [("voice_recorder_key", rk), ("recording_list_key", lk),
             ("recording", recording_node(recording, c.links, generated))])


async def create_recording_list(c: Ctx) -> Reply:
    rk = c.key("voice_recorder_key")
    rl, generated = await c.service.create_list(
        c.dev, rk, c.optional_key("recording_list_key"), inputs.list_values(c.params),
        inputs.initial_recordings(c.params))
    return (f"New recording list {rl.list_key} created",
            [("voice_recorder_key", rk), ("recording_list", list_node(rl, generated))])


async def delete_recording(c: Ctx) -> Reply:
    rk, lk, key = (c.key("voice_recorder_key"), c.key("recording_list_key"),
                   c.key("recording_key"))
    await c.service.delete_recording(c.dev, rk, lk, key,
                                     c.params.boolean("keep_consecutive", True), c.passwords())
    return f"Recording {key} deleted", []


async def delete_recording_list(c: Ctx) -> Reply:
    rk, lk = c.key("voice_recorder_key"), c.key("recording_list_key")
    await c.service.delete_list(c.dev, rk, lk, c.passwords())
    return f"Recording list {lk} deleted", []


async def expire_recording_session(c: Ctx) -> Reply:
    view = await c.service.expire_session(c.dev, c.key("recording_session_key"))
    return ("The recording session has been expired and session recordings unlocked",
            session_head(view))


async def get_recording(c: Ctx) -> Reply:
    rk, lk = c.key("voice_recorder_key"), c.key("recording_list_key")
    key = c.optional_key("recording_key")
    head: Node = [("voice_recorder_key", rk), ("recording_list_key", lk)]
    if key is not None:
        r = await c.service.get_recording(c.dev, rk, lk, key, c.passwords())
        return f"Recording {key} returned", [*head, ("recording", recording_node(r, c.links))]
    found = inputs.filters(c.params, inputs.RECORDING_SEARCH_FIELDS)
    if not found:
        raise MissingParameter("recording_key")
    page = await c.service.search_recordings(c.dev, rk, lk, found, c.passwords())
    return (f"{len(page.items)} recordings returned",
            [*head, ("recording_count", len(page.items)),
             Many("recording", [recording_node(r, c.links) for r in page.items])])


async def get_recording_list(c: Ctx) -> Reply:
    rk = c.key("voice_recorder_key")
    key = c.optional_key("recording_list_key")
    if key is not None:
        rl = await c.service.get_list(c.dev, rk, key, c.passwords())
        return (f"Recording list {key} returned",
                [("voice_recorder_key", rk), ("recording_list", list_node(rl))])
    found = inputs.filters(c.params, inputs.LIST_SEARCH_FIELDS)
    if not found:
        raise MissingParameter("recording_list_key")
    page = await c.service.search_lists(c.dev, rk, found, c.passwords())
    return (f"{len(page.items)} recording lists returned",
            [("voice_recorder_key", rk), ("recording_list_count", len(page.items)),
             Many("recording_list", [list_node(rl) for rl in page.items])])


async def get_session_status(c: Ctx) -> Reply:
    view = await c.service.session_status(c.dev, c.key("recording_session_key"))
    node = session_head(view)
    if view.current_recording is not None:
        node.append(("current_recording", recording_node(view.current_recording, c.links)))
    node.append(("session_recordings",
                 [Many("recording", [recording_node(r, c.links) for r in view.recordings])]))
    return "Recording session status has been retrieved", node


async def set_recording(c: Ctx) -> Reply:
    p = c.params
    rk, lk, key = (c.key("voice_recorder_key"), c.key("recording_list_key"),
                   c.key("recording_key"))
    r, generated = await c.service.set_recording(
        c.dev, rk, lk, key, inputs.recording_values(p, creating=False), inputs.sequence(p),
        p.boolean("keep_consecutive", True), c.passwords(role_names=False))
    return (f"Recording {key} updated",
            [("voice_recorder_key", rk), ("recording_list_key", lk),
             ("recording", recording_node(r, c.links, generated))])


async def set_recording_list(c: Ctx) -> Reply:
    rk, lk = c.key("voice_recorder_key"), c.key("recording_list_key")
    rl, generated = await c.service.set_list(c.dev, rk, lk, inputs.list_values(c.params),
                                             c.passwords(role_names=False))
    return (f"Recording list {lk} updated",
            [("voice_recorder_key", rk), ("recording_list", list_node(rl, generated))])


async def start_recording_session(c: Ctx) -> Reply:
    p = c.params
    rk, lk = c.key("voice_recorder_key"), c.key("recording_list_key")
    view = await c.service.start_session(
        c.dev, rk, lk, inputs.recording_keys(p), inputs.caller_id(p),
        p.boolean("overwrite", False), c.passwords(), inputs.callback_url(p))
    node: Node = [
        ("recording_session_key", view.session.session_key), ("ivr_pin", view.pin),
        ("phone_number_list", [Many("phone_number_info",
                                    [number_node(n) for n in view.phone_numbers])]),
        ("session_recordings",
         [Many("recording", [recording_node(r, c.links) for r in view.recordings])]),
    ]
    if view.excluded:
        node.append(("excluded_recordings",
                     [Many("recording", [recording_node(r, c.links) for r in view.excluded])]))
    return "A new recording session has been started", node


async def play_recording(c: Ctx) -> Reply:
    rk, lk, key = (c.key("voice_recorder_key"), c.key("recording_list_key"),
                   c.key("recording_key"))
    r = await c.service.play_recording(c.dev, rk, lk, key, c.passwords())
    return (f"Recording {key} is ready to play",
            [("voice_recorder_key", rk), ("recording_list_key", lk),
             ("recording", recording_node(r, c.links))])


# accounts
async def create_developer(c: Ctx) -> Reply:
    p = c.params
    d = await c.service.create_developer(
        str(p.text("username", required=True, max_len=64)),
        str(p.text("password", required=True, max_len=200)),
        email=str(p.text("email", max_len=200) or ""), name=str(p.text("name", max_len=200) or ""))
    return f"New developer {d.username} created", [("developer", developer_node(d))]


async def get_developer(c: Ctx) -> Reply:
    return f"Developer {c.dev.username} returned", [("developer", developer_node(c.dev))]


async def set_developer(c: Ctx) -> Reply:
    changes = {k: v for k in ("email", "name")
               if (v := c.params.text(k, max_len=200)) is not ABSENT}
    d = await c.service.set_developer(c.dev, changes)
    return f"Developer {d.username} updated", [("developer", developer_node(d))]


async def delete_developer(c: Ctx) -> Reply:
    await c.service.delete_developer(c.dev)
    return f"Developer {c.dev.username} deleted", []


async def change_password(c: Ctx) -> Reply:
    await c.service.change_password(
        c.dev, str(c.params.text("new_password", required=True, max_len=200)))
    return "Password changed", []


async def login_developer(c: Ctx) -> Reply:
    token = await c.service.create_token(c.dev)
    return (f"Developer {c.dev.username} logged in",
            [("developer", developer_node(c.dev)), ("api_token", token)])


async def email_password(c: Ctx) -> Reply:
    await c.service.email_password(str(c.params.text("username", required=True, max_len=64)))
    return "Password sent", []


def _recorder_password(p: Params) -> Any:
    return p.text("recorder_password", max_len=200)


async def create_voice_recorder(c: Ctx) -> Reply:
    password = _recorder_password(c.params)
    v, generated = await c.service.create_recorder(
        c.dev, c.optional_key("voice_recorder_key"), inputs.recorder_values(c.params),
        password if isinstance(password, str) else None)
    return (f"New voice recorder {v.recorder_key} created",
            [("voice_recorder", recorder_node(v, generated))])


async def get_voice_recorder(c: Ctx) -> Reply:
    v = await c.service.get_recorder(c.dev, c.key("voice_recorder_key"))
    return f"Voice recorder {v.recorder_key} returned", [("voice_recorder", recorder_node(v))]


async def set_voice_recorder(c: Ctx) -> Reply:
    v, generated = await c.service.set_recorder(
        c.dev, c.key("voice_recorder_key"), inputs.recorder_values(c.params),
        _recorder_password(c.params))
    return (f"Voice recorder {v.recorder_key} updated",
            [("voice_recorder", recorder_node(v, generated))])


async def delete_voice_recorder(c: Ctx) -> Reply:
    key = c.key("voice_recorder_key")
    await c.service.delete_recorder(c.dev, key)
    return f"Voice recorder {key} deleted", []


async def set_prompt(c: Ctx) -> Reply:
    values = inputs.recorder_values(Params({"prompt_set": c.params.raw("prompt_set")}))
    if not values.get("prompt_set"):
        raise MissingParameter("prompt_set")
    v = await c.service.set_prompt_set(c.dev, c.key("voice_recorder_key"), values["prompt_set"])
    return (f"Voice recorder {v.recorder_key} now uses prompt set {v.prompt_set}",
            [("voice_recorder", recorder_node(v))])


def prompt_node(base_url: str, name: str, play_key: str) -> Node:
    return [("prompt_name", name), ("play_key", play_key),
            ("prompt_url", f"{base_url}/prompts/{play_key}/{name}.wav")]


async def upload_prompt(c: Ctx) -> Reply:
    rk = c.key("voice_recorder_key")
    name = str(c.params.text("prompt_name", required=True, max_len=32))
    upload = c.params.raw("prompt_file")
    if not isinstance(upload, bytes) or not upload:
        raise MissingParameter("prompt_file")
    play_key = await c.service.upload_prompt(c.dev, rk, name, upload)
    return (f"Prompt {name} uploaded",
            [("voice_recorder_key", rk), ("prompt", prompt_node(c.base_url, name, play_key))])


async def play_prompt(c: Ctx) -> Reply:
    rk = c.key("voice_recorder_key")
    name = str(c.params.text("prompt_name", required=True, max_len=32))
    play_key = await c.service.prompt_play_key(c.dev, rk, name)
    return (f"Prompt {name} is ready to play",
            [("voice_recorder_key", rk), ("prompt", prompt_node(c.base_url, name, play_key))])


@dataclass(frozen=True, slots=True)
class Action:
    run: Command
    code: int  # the command's own error code (the seed's table)
    authenticated: bool = True


ACTIONS: dict[str, Action] = {
    "CreateRecording": Action(create_recording, 1401),
    "CreateRecordingList": Action(create_recording_list, 1301),
    "DeleteRecording": Action(delete_recording, 1404),
    "DeleteRecordingList": Action(delete_recording_list, 1304),
    "ExpireRecordingSession": Action(expire_recording_session, 1503),
    "GetRecording": Action(get_recording, 1402),
    "GetRecordingList": Action(get_recording_list, 1302),
    "GetSessionStatus": Action(get_session_status, 1502),
    "SetRecording": Action(set_recording, 1403),
    "SetRecordingList": Action(set_recording_list, 1303),
    "StartRecordingSession": Action(start_recording_session, 1501),
    "PlayRecording": Action(play_recording, 1405),
    "CreateDeveloper": Action(create_developer, 1101, authenticated=False),
    "GetDeveloper": Action(get_developer, 1102),
    "SetDeveloper": Action(set_developer, 1103),
    "DeleteDeveloper": Action(delete_developer, 1104),
    "ChangePassword": Action(change_password, 1106),
    "EmailPassword": Action(email_password, 1107, authenticated=False),
    "LoginDeveloper": Action(login_developer, 1108),
    "CreateVoiceRecorder": Action(create_voice_recorder, 1201),
    "GetVoiceRecorder": Action(get_voice_recorder, 1202),
    "SetVoiceRecorder": Action(set_voice_recorder, 1203),
    "DeleteVoiceRecorder": Action(delete_voice_recorder, 1204),
    "SetPrompt": Action(set_prompt, 1206),
    "UploadPrompt": Action(upload_prompt, 1207),
    "PlayPrompt": Action(play_prompt, 1205),
}
# MyVox clients vary in case ("Action", "getrecording"); match names case-insensitively.
_BY_LOWER = {name.lower(): name for name in ACTIONS}


def error_code(exc: IvrError, action: Action | None, action_name: str) -> int:
    code = getattr(exc, "myvox_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, InvalidParameter):
        return 1003
    if isinstance(exc, Unauthorized):
        return 1108 if action_name == "LoginDeveloper" else 1001
    return 1000 if action is None else action.code


async def _read_params(request: web.Request) -> MultiDict[Any]:
    # Every parameter name is lower case; the seed's tables also write `Action`, `Reply` and
    # `Password`, and clients copy them.
    merged: MultiDict[Any] = MultiDict()
    for name, text in request.query.items():
        merged.add(name.lower(), text)
    if request.method == "POST" and request.body_exists:
        form = await request.post()
        for name, field in form.items():
            value: Any = field.file.read() if isinstance(field, web.FileField) else field
            merged.add(name.lower(), value)
    return merged


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
        ctx = Ctx(params, service_for(request), base_url(request),
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
