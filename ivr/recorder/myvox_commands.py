"""The MyVox commands (`action=...`): each reads its parameters, calls the recorder service and
answers a message and the reply's elements (ivr/recorder/myvox.py sends them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ivr.core.errors import MissingParameter
from ivr.delivery.links import AudioLinks
from ivr.recorder import inputs
from ivr.recorder.documents import (
    Many,
    Node,
    developer_node,
    list_node,
    number_node,
    prompt_node,
    recorder_node,
    recording_node,
    session_head,
)
from ivr.recorder.models import Developer
from ivr.recorder.params import ABSENT, Params
from ivr.recorder.service import RecorderService


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
    token = await c.service.create_token(c.dev, "LoginDeveloper")
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
