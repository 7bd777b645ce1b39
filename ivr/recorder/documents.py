"""The recorder's reply documents: the element tree a MyVox reply, a /v1 entity and an event
body are built from (`recording_node`, `session_head`, ...), and its XML and JSON forms. Kept
apart from the HTTP faces so that events (written by the service) and replies share one tree
without the service importing a face."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson

from ivr.core.text import xml_safe
from ivr.delivery.links import AudioLinks
from ivr.recorder.models import (
    Developer,
    Generated,
    PhoneNumber,
    Recorder,
    Recording,
    RecordingList,
    SessionView,
)

ROOT = "MyVoxapi"
# The seed's common section answers `<openMyVox><status>..` (nested elements only), its command
# samples `<MyVoxapi status="..">`: the latter by default, the former on `reply_root=openMyVox`.
COMMON_ROOT = "openMyVox"
ROOTS = {name.lower(): name for name in (ROOT, COMMON_ROOT)}


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
            lines.append(f"{indent}<{name}>{escape(xml_safe(_text(value)))}</{name}>")
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
        text = f'<{root} message={quoteattr(xml_safe(message))} status="{status}" />'
    else:
        text = "\n".join([f'<{root} message={quoteattr(xml_safe(message))} status="{status}">',
                          *_xml(body, "  "), f"</{root}>"])
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode(), "text/xml"


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
             ("trim_silence", v.trim_silence),
             ("phone_number_list", [Many("phone_number_info",
                                         [number_node(n) for n in v.phone_numbers])]),
             ("date_created", v.created_at), ("last_updated", v.updated_at)]
    _opt(node, "normalize_lufs", v.normalize_lufs)
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


def prompt_node(base_url: str, name: str, play_key: str) -> Node:
    return [("prompt_name", name), ("play_key", play_key),
            ("prompt_url", f"{base_url}/prompts/{play_key}/{name}.wav")]
