"""Typed ARI REST calls over one aiohttp session.

Every request goes through a declared `Op` (method, path template, allowed query parameters),
so the whole surface this layer uses is one table that a test checks against Asterisk's own
Swagger files, and a misspelt parameter fails here rather than being ignored by Asterisk.
That table and its typed wrappers are kept in one module (just over ~400 lines) so the
contract test reads one place."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter

from ivr.core.errors import TelephonyError
from ivr.telephony.ari_tls import tls_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Op:
    method: str
    path: str  # relative to /ari, with {placeholders} as in the Swagger files
    params: frozenset[str] = frozenset()
    body: str | None = None  # the Swagger name of the JSON body it takes, if any


def _op(method: str, path: str, *params: str, body: str | None = None) -> Op:
    return Op(method, path, frozenset(params), body)


OPS: dict[str, Op] = {
    "asterisk_info": _op("GET", "/asterisk/info", "only"),
    "get_global_var": _op("GET", "/asterisk/variable", "variable"),
    "set_global_var": _op("POST", "/asterisk/variable", "variable", "value"),
    "set_event_filter": _op("PUT", "/applications/{applicationName}/eventFilter",
                            body="filter"),
    "claim_channel": _op("POST", "/events/claim", "channelId", "application"),
    "subscribe": _op("POST", "/applications/{applicationName}/subscription", "eventSource"),
    "list_channels": _op("GET", "/channels"),
    "list_endpoints_by_tech": _op("GET", "/endpoints/{tech}"),
    "get_channel": _op("GET", "/channels/{channelId}"),
    "originate": _op(
        "POST", "/channels/{channelId}", "endpoint", "extension", "context", "priority", "label",
        "app", "appArgs", "callerId", "timeout", "otherChannelId", "originator", "formats",
        body="variables",
    ),
    "create_channel": _op(
        "POST", "/channels/create", "endpoint", "app", "appArgs", "channelId", "otherChannelId",
        "originator", "formats", body="variables",
    ),
    "dial": _op("POST", "/channels/{channelId}/dial", "caller", "timeout"),
    "hangup": _op("DELETE", "/channels/{channelId}", "reason_code", "reason"),
    "answer": _op("POST", "/channels/{channelId}/answer"),
    "ring": _op("POST", "/channels/{channelId}/ring"),
    "continue_in_dialplan": _op(
        "POST", "/channels/{channelId}/continue", "context", "extension", "priority", "label"
    ),
    "redirect": _op("POST", "/channels/{channelId}/redirect", "endpoint"),
    "send_dtmf": _op(
        "POST", "/channels/{channelId}/dtmf", "dtmf", "before", "between", "duration", "after"
    ),
    "mute": _op("POST", "/channels/{channelId}/mute", "direction"),
    "unmute": _op("DELETE", "/channels/{channelId}/mute", "direction"),
    "hold": _op("POST", "/channels/{channelId}/hold"),
    "unhold": _op("DELETE", "/channels/{channelId}/hold"),
    "start_moh": _op("POST", "/channels/{channelId}/moh", "mohClass"),
    "stop_moh": _op("DELETE", "/channels/{channelId}/moh"),
    "play": _op(
        "POST", "/channels/{channelId}/play/{playbackId}", "media", "lang", "offsetms", "skipms"
    ),
    "record": _op(
        "POST", "/channels/{channelId}/record", "name", "format", "maxDurationSeconds",
        "maxSilenceSeconds", "ifExists", "beep", "terminateOn",
    ),
    "get_variable": _op("GET", "/channels/{channelId}/variable", "variable"),
    "set_variable": _op("POST", "/channels/{channelId}/variable", "variable", "value"),
    "snoop": _op(
        "POST", "/channels/{channelId}/snoop/{snoopId}", "spy", "whisper", "app", "appArgs"
    ),
    "list_bridges": _op("GET", "/bridges"),
    "create_bridge": _op("POST", "/bridges/{bridgeId}", "type", "name"),
    "destroy_bridge": _op("DELETE", "/bridges/{bridgeId}"),
    "add_channel": _op(
        "POST", "/bridges/{bridgeId}/addChannel", "channel", "role", "absorbDTMF", "mute",
        "inhibitConnectedLineUpdates",
    ),
    "remove_channel": _op("POST", "/bridges/{bridgeId}/removeChannel", "channel"),
    "bridge_play": _op("POST", "/bridges/{bridgeId}/play/{playbackId}", "media", "lang"),
    "bridge_record": _op(
        "POST", "/bridges/{bridgeId}/record", "name", "format", "maxDurationSeconds",
        "maxSilenceSeconds", "ifExists", "beep", "terminateOn",
    ),
    "bridge_start_moh": _op("POST", "/bridges/{bridgeId}/moh", "mohClass"),
    "bridge_stop_moh": _op("DELETE", "/bridges/{bridgeId}/moh"),
    "get_playback": _op("GET", "/playbacks/{playbackId}"),
    "stop_playback": _op("DELETE", "/playbacks/{playbackId}"),
    "control_playback": _op("POST", "/playbacks/{playbackId}/control", "operation"),
    "get_live_recording": _op("GET", "/recordings/live/{recordingName}"),
    "stop_live_recording": _op("POST", "/recordings/live/{recordingName}/stop"),
    "cancel_live_recording": _op("DELETE", "/recordings/live/{recordingName}"),
    "list_stored_recordings": _op("GET", "/recordings/stored"),
    "get_stored_recording": _op("GET", "/recordings/stored/{recordingName}"),
    "get_stored_recording_file": _op("GET", "/recordings/stored/{recordingName}/file"),
    "delete_stored_recording": _op("DELETE", "/recordings/stored/{recordingName}"),
    "list_sounds": _op("GET", "/sounds", "lang", "format"),
    # Objects pushed into Asterisk's memory (sorcery.conf maps them), e.g. the console phone's
    # WebRTC credentials (telephony/webrtc.py).
    "put_config_object": _op("PUT", "/asterisk/config/dynamic/{configClass}/{objectType}/{id}",
                             body="fields"),
    "delete_config_object": _op("DELETE",
                                "/asterisk/config/dynamic/{configClass}/{objectType}/{id}"),
}

# Requests sent, by operation (/metrics): what calls cost Asterisk, and which requests grew when
# they cost more (the bench reports them per call).
ARI_REQUESTS = Counter("ivr_ari_requests", "ARI requests sent by this process, by operation",
                       ["operation"])
_SENT = {name: ARI_REQUESTS.labels(name) for name in OPS}


class AriHttpError(TelephonyError):
    """Asterisk answered an ARI request with an error status."""

    @property
    def channel_gone(self) -> bool:
        # 404: no such channel; 409/412: the channel left Stasis or is no longer in a state
        # that takes the request (it is hanging up).
        return self.status in (404, 409, 412)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header for ARI (built here: aiohttp's BasicAuth is deprecated)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AriClient:
    """ARI REST requests. Built once per process (app.py) with the session it shares with the
    event stream."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/ari"

    async def request(
        self,
        name: str,
        path_args: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        body: Any = None,
        *,
        raw: bool = False,
    ) -> Any:
        op = OPS[name]
        _SENT[name].inc()
        pairs = list(params.items() if isinstance(params, Mapping) else params or ())
        query = [(k, _query_value(v)) for k, v in pairs if v is not None]
        unknown = {k for k, _ in query} - op.params
        if unknown:
            raise TelephonyError(f"ARI {name}: unknown parameter(s) {sorted(unknown)}")
        path = op.path.format(**path_args) if path_args else op.path
        url = self._base + path
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            try:
                resp = await self._session.request(
                    op.method, url, params=query, data=data, headers=headers
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectorError):
                # A pooled keep-alive connection that died while idle (Asterisk restarted, the
                # network blinked) fails before the request is read: sending again is safe.
                resp = await self._session.request(
                    op.method, url, params=query, data=data, headers=headers
                )
            async with resp:
                payload = await resp.read()
                if resp.status >= 400:
                    detail = payload.decode(errors="replace")[:300]
                    try:
                        detail = orjson.loads(payload).get("message", detail)
                    except (orjson.JSONDecodeError, AttributeError):
                        pass
                    raise AriHttpError(
                        f"ARI {op.method} {path}: {resp.status} {detail}", status=resp.status
                    )
        except aiohttp.ClientError as exc:
            raise TelephonyError(f"ARI {op.method} {path}: {tls_failure(exc) or exc}") from exc
        if raw:
            return payload
        return orjson.loads(payload) if payload else None

    # --- asterisk -----------------------------------------------------------------------
    async def asterisk_info(self) -> dict[str, Any]:
        return await self.request("asterisk_info")

    async def get_global_var(self, variable: str) -> str:
        """A dialplan global variable ('' when unset)."""
        result = await self.request("get_global_var", None, {"variable": variable})
        return str(result.get("value", ""))

    async def set_global_var(self, variable: str, value: str) -> None:
        await self.request("set_global_var", None, {"variable": variable, "value": value})

    # --- applications -------------------------------------------------------------------
    async def set_event_filter(self, app: str, *, disallowed: Iterable[str]) -> None:
        """Asterisk stops sending `app` events of these types (it neither builds nor sends
        them: less work on both sides of the socket)."""
        await self.request("set_event_filter", {"applicationName": app}, None,
                           {"disallowed": [{"type": t} for t in disallowed]})

    # --- channels -----------------------------------------------------------------------
    async def claim_channel(self, channel_id: str, app: str) -> None:
        """Take a call StasisBroadcast offered (CallBroadcast): the first claim wins, later
        ones get 409, a channel no longer offered 404."""
        await self.request("claim_channel", None, {"channelId": channel_id, "application": app})

    async def subscribe(self, app: str, channel_id: str) -> None:
        """`app` receives the events of a channel it did not start with (one an engine that
        died left in its own app)."""
        await self.request("subscribe", {"applicationName": app},
                           {"eventSource": f"channel:{channel_id}"})

    async def list_channels(self) -> list[dict[str, Any]]:
        return await self.request("list_channels")

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        return await self.request("get_channel", {"channelId": channel_id})

    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        other_channel_id: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "endpoint": endpoint, "app": app, "appArgs": app_args, "context": context,
            "extension": extension, "priority": priority, "callerId": caller_id,
            "timeout": timeout, "otherChannelId": other_channel_id,
        }
        body = {"variables": dict(variables)} if variables else None
        return await self.request("originate", {"channelId": channel_id}, params, body)

    async def create_channel(
        self, channel_id: str, endpoint: str, *, app: str, app_args: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A channel in `app` that is not dialled yet (`dial` places the call), so every
        progress event of the call (Dial, ChannelStateChange) reaches the app."""
        body = {"variables": dict(variables)} if variables else None
        return await self.request(
            "create_channel", None,
            {"endpoint": endpoint, "app": app, "appArgs": app_args, "channelId": channel_id},
            body,
        )

    async def dial(self, channel_id: str, *, caller: str | None = None,
                   timeout: int | None = None) -> None:
        await self.request("dial", {"channelId": channel_id},
                           {"caller": caller, "timeout": timeout})

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        await self.request("hangup", {"channelId": channel_id}, {"reason": reason})

    async def answer(self, channel_id: str) -> None:
        await self.request("answer", {"channelId": channel_id})

    async def ring(self, channel_id: str) -> None:
        await self.request("ring", {"channelId": channel_id})

    async def continue_in_dialplan(
        self, channel_id: str, context: str | None = None, extension: str | None = None,
        priority: int | None = None,
    ) -> None:
        await self.request(
            "continue_in_dialplan", {"channelId": channel_id},
            {"context": context, "extension": extension, "priority": priority},
        )

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("redirect", {"channelId": channel_id}, {"endpoint": endpoint})

    async def send_dtmf(
        self, channel_id: str, dtmf: str, *, between_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        await self.request(
            "send_dtmf", {"channelId": channel_id},
            {"dtmf": dtmf, "between": between_ms, "duration": duration_ms},
        )

    async def hold(self, channel_id: str) -> None:
        await self.request("hold", {"channelId": channel_id})

    async def unhold(self, channel_id: str) -> None:
        await self.request("unhold", {"channelId": channel_id})

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("start_moh", {"channelId": channel_id}, {"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("stop_moh", {"channelId": channel_id})

    async def play(
        self, channel_id: str, playback_id: str, media: Iterable[str], lang: str | None = None
    ) -> dict[str, Any]:
        # One comma-separated `media` value: given repeated, Asterisk plays only the last one.
        media = list(media)
        if any("," in m for m in media):
            raise TelephonyError(f"ARI play: a media URI may not contain ',': {media}")
        params = [("media", ",".join(media))]
        if lang:
            params.append(("lang", lang))
        return await self.request(
            "play", {"channelId": channel_id, "playbackId": playback_id}, params
        )

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration: int = 0,
        max_silence: int = 0,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> dict[str, Any]:
        return await self.request(
            "record", {"channelId": channel_id},
            {"name": name, "format": fmt, "maxDurationSeconds": max_duration,
             "maxSilenceSeconds": max_silence, "ifExists": if_exists, "beep": beep,
             "terminateOn": terminate_on},
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        result = await self.request(
            "get_variable", {"channelId": channel_id}, {"variable": variable}
        )
        return str(result.get("value", ""))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "set_variable", {"channelId": channel_id}, {"variable": variable, "value": value}
        )

    async def snoop(
        self, channel_id: str, snoop_id: str, *, app: str, spy: str = "in", whisper: str = "none",
        app_args: str | None = None,
    ) -> dict[str, Any]:
        return await self.request(
            "snoop", {"channelId": channel_id, "snoopId": snoop_id},
            {"spy": spy, "whisper": whisper, "app": app, "appArgs": app_args},
        )

    # --- bridges ------------------------------------------------------------------------
    async def create_bridge(
        self, bridge_id: str, bridge_type: str = "mixing", name: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "create_bridge", {"bridgeId": bridge_id}, {"type": bridge_type, "name": name}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("destroy_bridge", {"bridgeId": bridge_id})

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("add_channel", {"bridgeId": bridge_id}, {"channel": channel_id})

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("remove_channel", {"bridgeId": bridge_id}, {"channel": channel_id})

    async def bridge_record(
        self, bridge_id: str, name: str, *, fmt: str = "wav", max_duration: int = 0,
        if_exists: str = "fail", beep: bool = False,
    ) -> dict[str, Any]:
        """Record the bridge's mix: every channel in it, not one leg."""
        return await self.request(
            "bridge_record", {"bridgeId": bridge_id},
            {"name": name, "format": fmt, "maxDurationSeconds": max_duration,
             "ifExists": if_exists, "beep": beep, "terminateOn": "none"},
        )

    # --- playbacks ----------------------------------------------------------------------
    async def get_playback(self, playback_id: str) -> dict[str, Any]:
        return await self.request("get_playback", {"playbackId": playback_id})

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("stop_playback", {"playbackId": playback_id})

    # --- recordings ---------------------------------------------------------------------
    async def get_live_recording(self, name: str) -> dict[str, Any]:
        return await self.request("get_live_recording", {"recordingName": name})

    async def stop_live_recording(self, name: str) -> None:
        await self.request("stop_live_recording", {"recordingName": name})

    async def cancel_live_recording(self, name: str) -> None:
        await self.request("cancel_live_recording", {"recordingName": name})

    async def list_stored_recordings(self) -> list[dict[str, Any]]:
        return await self.request("list_stored_recordings")

    async def get_stored_recording(self, name: str) -> dict[str, Any]:
        return await self.request("get_stored_recording", {"recordingName": name})

    async def stored_recording_file(self, name: str) -> bytes:
        return await self.request(
            "get_stored_recording_file", {"recordingName": name}, raw=True
        )

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("delete_stored_recording", {"recordingName": name})

    # --- sounds -------------------------------------------------------------------------
    async def list_sounds(self) -> list[dict[str, Any]]:
        return await self.request("list_sounds")
