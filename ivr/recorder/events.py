"""The recorder's events and uploads, written into the delivery outbox on the connection of the
transaction that makes the change (so an event exists exactly when its change does).

An event is the recorder's reply document (XML by default, JSON with callback_format=json):
status "event", message = the event type, then event_id, event_type, event_time and the
resource as the API shows it. Events of a session share its stream (delivered in order);
events outside a session (retention) use the recorder's stream."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ivr.core.db import Conn
from ivr.delivery import outbox
from ivr.delivery.links import AudioLinks
from ivr.delivery.outbox import DEFAULT_RETRY_FOR
from ivr.delivery.worker import FILENAME_HEADER
from ivr.recorder import documents, store
from ivr.recorder.models import Recording, Session, SessionView, take_path

SESSION_CREATED = "session.created"
SESSION_CALLED = "session.called"
SESSION_ENDED = "session.ended"
SESSION_EXPIRED = "session.expired"
RECORDING_STARTED = "recording.started"
RECORDING_RECORDED = "recording.recorded"
RECORDING_DELETED = "recording.deleted"
RECORDING_AUDIO_DELETED = "recording.audio_deleted"

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def template_names(template: str) -> list[str]:
    """The placeholders an upload_url names."""
    return _PLACEHOLDER.findall(template)


def fill_template(template: str, values: dict[str, str]) -> str:
    # Only known names, each URL-quoted: a key cannot add a path segment or a query.
    return _PLACEHOLDER.sub(lambda m: quote(values.get(m.group(1), ""), safe=""), template)


class RecorderEvents:
    def __init__(self, links: AudioLinks, data_dir: Path,
                 retry_for: float = DEFAULT_RETRY_FOR) -> None:
        self.links = links
        self.data_dir = data_dir
        self.retry_for = retry_for

    @classmethod
    def for_settings(cls, data_dir: Path, public_url: str,
                     retry_for: float = DEFAULT_RETRY_FOR) -> RecorderEvents:
        return cls(AudioLinks.for_settings(data_dir, public_url), data_dir, retry_for)

    def _recording_node(self, recording: Recording) -> documents.Node:
        # Events carry the accepted take's quality figures (MyVox replies its verdict only).
        return documents.recording_node(recording, self.links, quality=True)

    async def session(self, conn: Conn, session_id: int, event_type: str) -> None:
        session = await store.session_by_id(conn, session_id)
        target = await store.event_target(conn, session.recorder_id, session.id)
        if target is None:
            return
        current = None
        if session.state == "recording" and session.current_recording_id is not None:
            current = await store.recording_by_id(conn, session.current_recording_id)
        recordings = await store.session_recordings(conn, session.id)
        node = documents.session_head(SessionView(session, None, (), tuple(recordings)))
        if current is not None:
            node.append(("current_recording", self._recording_node(current)))
        node.append(("session_recordings", [documents.Many(
            "recording", [self._recording_node(r) for r in recordings])]))
        await self._enqueue(conn, target, event_type, f"session:{session.session_key}", node,
                            session.recorder_id)

    async def sessions(self, conn: Conn, session_ids: list[int], event_type: str) -> None:
        for session_id in session_ids:
            await self.session(conn, session_id, event_type)

    async def recording(self, conn: Conn, recording: Recording | int, event_type: str, *,
                        recorder_id: int, session: Session | None) -> None:
        """`recording` by id is read only when the event goes somewhere."""
        target = await store.event_target(conn, recorder_id,
                                          None if session is None else session.id)
        if target is None:
            return
        if isinstance(recording, int):
            recording = await store.recording_by_id(conn, recording)
        node: documents.Node = [("voice_recorder_key", target["recorder_key"]),
                            ("recording_list_key", recording.list_key)]
        if session is not None:
            node.append(("recording_session_key", session.session_key))
        node.append(("recording", self._recording_node(recording)))
        stream = f"recorder:{recorder_id}" if session is None else f"session:{session.session_key}"
        await self._enqueue(conn, target, event_type, stream, node, recorder_id)

    async def _enqueue(self, conn: Conn, target: Any, event_type: str, stream: str,
                       node: documents.Node, recorder_id: int) -> None:
        event_id = uuid.uuid4()
        head: documents.Node = [("event_id", str(event_id)), ("event_type", event_type),
                            ("event_time", datetime.now(UTC))]
        body, content_type = documents.document("event", event_type, head + node,
                                            target["callback_format"])
        await outbox.enqueue_callback(
            conn, event_id=event_id, event_type=event_type, stream=stream,
            owner=f"recorder:{recorder_id}", url=target["url"], body=body,
            content_type=content_type, secret=target["callback_secret"],
            retry_for=self.retry_for)

    # --- uploads -----------------------------------------------------------------------------
    async def uploads(self, conn: Conn, recording_id: int, take_id: int, take_number: int,
                      formats: list[str]) -> None:
        """Queue the accepted take's files for a recorder with storage=upload."""
        target = await store.upload_target(conn, recording_id)
        if target is None or not formats:
            return
        headers: dict[str, str] = {}
        if target["upload_auth_header"]:
            name, _, value = target["upload_auth_header"].partition(": ")
            headers[name] = value
        for ext in formats:
            values = {"recorder_key": target["recorder_key"], "list_key": target["list_key"],
                      "recording_key": target["recording_key"], "play_key": target["play_key"],
                      "take": str(take_number), "ext": ext}
            await outbox.enqueue_upload(
                conn, event_type="recording.upload", stream=f"upload:{target['play_key']}",
                owner=f"recorder:{target['recorder_id']}", subject=f"take:{take_id}",
                url=fill_template(target["upload_url"], values),
                method=target["upload_method"],
                path=str(take_path(self.data_dir, target["play_key"], take_number, ext)),
                content_type=_AUDIO_TYPES[ext],
                headers={**headers, FILENAME_HEADER: f"{target['recording_key']}.{ext}",
                         "X-IVR-Recording-Key": target["recording_key"],
                         "X-IVR-Take": str(take_number)},
                retry_for=self.retry_for)
        await conn.execute("UPDATE takes SET upload_state = 'pending' WHERE id = $1", take_id)


async def upload_settled(conn: outbox.Conn, row: outbox.Row, state: str) -> None:
    """An upload row settled: its take is `uploaded` once every file of it is delivered,
    `failed` as soon as one failed. Runs in the transaction that settles the row."""
    if row.subject is None or not row.subject.startswith("take:"):
        return
    states = await outbox.subject_states(conn, row.subject)
    if "failed" in states:
        new = "failed"
    elif states and all(s == "delivered" for s in states):
        new = "uploaded"
    else:
        return
    await conn.execute(
        "UPDATE takes SET upload_state = $2, upload_bytes = (SELECT coalesce(sum(bytes_sent), 0)"
        " FROM outbox WHERE subject = $3) WHERE id = $1",
        int(row.subject.split(":", 1)[1]), new, row.subject)
