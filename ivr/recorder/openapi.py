"""The OpenAPI 3 document for /v1, written out by hand (a test holds it to the routes the app
really serves, both ways)."""

from __future__ import annotations

from typing import Any

from ivr import __version__
from ivr.media.quality import VERDICTS


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "409": {"$ref": "#/components/responses/Conflict"},
}
_IDEMPOTENCY = {"$ref": "#/components/parameters/IdempotencyKey"}
_ASSET_PASSWORD = {"$ref": "#/components/parameters/AssetPassword"}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _q(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "required": False, "schema": {"type": "string"},
             "description": "matches with '%' as wildcard"} for n in names]


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] | None = None,
        body: str | None = None, post: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, **_ERRORS}}
    parameters = list(params or [])
    if post:
        parameters.append(_IDEMPOTENCY)
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": _ref(body)}}}
    return op


_REC, _LST, _RK = _p("recorder_key"), _p("list_key"), _p("recording_key")
_NO_CONTENT = {"204": {"description": "deleted"}}

PATHS: dict[str, dict[str, Any]] = {
    "/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                 "responses": {"200": _json({"type": "object"})}}},
    "/v1/developers": {"post": {
        "summary": "Create a developer account (when IVR_OPEN_SIGNUP is on)", "security": [],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": _ref("NewDeveloper")}}},
        "responses": {"201": _json(_ref("Developer"), "created"), **_ERRORS}}},
    "/v1/developer": {"get": _op("The authenticated developer", {"200": _json(_ref("Developer"))})},
    "/v1/tokens": {"post": _op("Create a bearer token (returned once)",
                               {"201": _json(_ref("Token"), "created")}, post=True)},
    "/v1/recorders": {
        "get": _op("The developer's voice recorders",
                   {"200": _json({"type": "object", "properties": {
                       "voice_recorders": {"type": "array", "items": _ref("VoiceRecorder")}}})}),
        "post": _op("Create a voice recorder (a phone number is assigned)",
                    {"201": _json(_ref("VoiceRecorder"), "created")}, body="VoiceRecorderInput",
                    post=True),
    },
    "/v1/recorders/{recorder_key}": {
        "get": _op("A voice recorder", {"200": _json(_ref("VoiceRecorder"))}, params=[_REC]),
        "patch": _op("Change a voice recorder's options", {"200": _json(_ref("VoiceRecorder"))},
                     params=[_REC], body="VoiceRecorderInput"),
        "delete": _op("Delete a voice recorder and everything in it", _NO_CONTENT,
                      params=[_REC]),
    },
    "/v1/recorders/{recorder_key}/lists": {
        "get": _op("Search recording lists (every given field must match; at most 100)",
                   {"200": _json({"type": "object", "properties": {"recording_lists": {
                       "type": "array", "items": _ref("RecordingList")}}})},
                   params=[_REC, _ASSET_PASSWORD, *_q("meta_data_1", "meta_data_2",
                                                      "meta_data_3", "caller_id",
                                                      "access_code")]),
        "post": _op("Create a recording list", {"201": _json(_ref("RecordingList"), "created")},
                    params=[_REC], body="RecordingListInput", post=True),
    },
    "/v1/recorders/{recorder_key}/lists/{list_key}": {
        "get": _op("A recording list", {"200": _json(_ref("RecordingList"))},
                   params=[_REC, _LST, _ASSET_PASSWORD]),
        "patch": _op("Change a recording list", {"200": _json(_ref("RecordingList"))},
                     params=[_REC, _LST, _ASSET_PASSWORD], body="RecordingListInput"),
        "delete": _op("Delete a recording list and its recordings", _NO_CONTENT,
                      params=[_REC, _LST, _ASSET_PASSWORD]),
    },
    "/v1/recorders/{recorder_key}/lists/{list_key}/recordings": {
        "get": _op("Search recordings (every given field must match; at most 100)",
                   {"200": _json({"type": "object", "properties": {"recordings": {
                       "type": "array", "items": _ref("Recording")}}})},
                   params=[_REC, _LST, _ASSET_PASSWORD,
                           *_q("meta_data_1", "meta_data_2", "meta_data_3", "caller_id",
                               "access_code", "touchtone_input")]),
        "post": _op("Create a recording placeholder", {"201": _json(_ref("Recording"), "created")},
                    params=[_REC, _LST, _ASSET_PASSWORD], body="RecordingInput", post=True),
    },
    "/v1/recorders/{recorder_key}/lists/{list_key}/recordings/{recording_key}": {
        "get": _op("A recording", {"200": _json(_ref("Recording"))},
                   params=[_REC, _LST, _RK, _ASSET_PASSWORD]),
        "patch": _op("Change a recording (sequence moves it)", {"200": _json(_ref("Recording"))},
                     params=[_REC, _LST, _RK, _ASSET_PASSWORD], body="RecordingInput"),
        "delete": _op("Delete a recording", _NO_CONTENT,
                      params=[_REC, _LST, _RK, _ASSET_PASSWORD, *[
                          {"name": "keep_consecutive", "in": "query",
                           "schema": {"type": "boolean", "default": True}}]]),
    },
    "/v1/recorders/{recorder_key}/lists/{list_key}/sessions": {
        "post": _op("Start a recording session: number(s) to call and the PIN (shown once)",
                    {"201": _json(_ref("Session"), "created")},
                    params=[_REC, _LST, _ASSET_PASSWORD], body="SessionInput", post=True),
    },
    "/v1/sessions/{session_key}": {
        "get": _op("A recording session's status", {"200": _json(_ref("Session"))},
                   params=[_p("session_key")]),
    },
    "/v1/sessions/{session_key}/expire": {
        "post": _op("Expire a session and unlock its recordings",
                    {"200": _json(_ref("Session"))}, params=[_p("session_key")], post=True),
    },
    "/v1/recorders/{recorder_key}/deliveries": {
        "get": _op("The recorder's callbacks and uploads, newest first",
                   {"200": _json({"type": "object", "properties": {
                       "deliveries": {"type": "array", "items": _ref("Delivery")}}})},
                   params=[_REC,
                           {"name": "state", "in": "query", "required": False,
                            "schema": {"enum": ["pending", "delivered", "failed"]}},
                           {"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}]),
    },
    "/v1/recorders/{recorder_key}/deliveries/{event_id}/retry": {
        "post": _op("Deliver a failed callback or upload again (a fresh retry window)",
                    {"202": _json({"type": "object"}, "queued")},
                    params=[_REC, _p("event_id")], post=True),
    },
}

_S = {"type": "string"}
_SN = {"type": "string", "nullable": True}
_B = {"type": "boolean"}
_I = {"type": "integer"}
_N = {"type": "number"}
_T = {"type": "string", "format": "date-time"}
_PASSWORD = {"type": "string", "nullable": True,
             "description": "'???' (or '?????') asks for a random password, returned once"}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"], "properties": {
        "error": _S, "message": _S, "param": _S, "details": _S}},
    "NewDeveloper": {"type": "object", "required": ["username", "password"], "properties": {
        "username": _S, "password": {"type": "string", "minLength": 8}, "email": _S,
        "name": _S}},
    "Developer": {"type": "object", "properties": {
        "username": _S, "email": _S, "name": _S, "date_created": _T, "last_updated": _T}},
    "Token": {"type": "object", "properties": {"token": _S, "token_type": _S}},
    "PhoneNumber": {"type": "object", "properties": {
        "phone_number_key": _S, "phone_number": _S, "display_number": _S, "country": _S}},
    "VoiceRecorderInput": {"type": "object", "properties": {
        "voice_recorder_key": _S, "name": _S,
        "audio_format": {"enum": ["wav", "mp3", "both"]},
        "storage": {"enum": ["local", "upload"]}, "upload_url": _SN,
        "retention_days": {"type": "integer", "nullable": True}, "password_required": _B,
        "recorder_password": _PASSWORD, "prompt_set": _S,
        "initiation": {"enum": ["api", "call"]},
        "identification": {"enum": ["none", "caller_id", "access_code", "both"]},
        "lookup_mode": {"enum": ["lookup", "lookup_else_create", "create"]},
        "touchtone_prompt": _B, "touchtone_length": {"type": "integer", "nullable": True},
        "pin_length": {"type": "integer", "minimum": 4, "maximum": 10, "default": 6},
        "pin_ttl_seconds": {"type": "integer", "minimum": 60, "default": 900},
        "max_take_seconds": {"type": "integer", "minimum": 5, "maximum": 3600, "default": 300},
        "silence_seconds": {"type": "integer", "minimum": 0, "maximum": 60, "default": 10},
        "min_take_seconds": {"type": "integer", "minimum": 0, "maximum": 60, "default": 1},
        "quality_check": {"type": "boolean", "default": True},
        "quality_keep_anyway": {"type": "boolean", "default": True},
        "quality_min_speech_seconds": {"type": "number", "minimum": 0, "maximum": 60,
                                       "default": 0.3},
        "quality_min_loudness_lufs": {"type": "number", "minimum": -70, "maximum": 0,
                                      "default": -40},
        "quality_max_clipped_ratio": {"type": "number", "minimum": 0, "maximum": 1,
                                      "default": 0.01},
        "quality_min_snr_db": {"type": "number", "minimum": 0, "maximum": 60, "default": 12},
        "trim_silence": {"type": "boolean", "default": True,
                         "description": "kept takes lose the silence at both ends"},
        "normalize_lufs": {"type": "number", "nullable": True, "minimum": -40, "maximum": -6,
                           "default": -16, "description": "kept takes brought to this "
                           "loudness without clipping; null leaves them as recorded"},
        "callback_url": _SN, "callback_format": {"enum": ["xml", "json"]},
        "callback_secret": {"type": "string", "description": "16+ characters, or '???' for a "
                            "random one (returned once)"},
        "upload_method": {"enum": ["put", "post"]},
        "upload_auth_header": {"type": "string", "nullable": True,
                               "description": "'Name: value', sent with every upload"},
        "link_ttl_seconds": {"type": "integer", "nullable": True, "minimum": 60}}},
    "VoiceRecorder": {"type": "object", "properties": {
        "voice_recorder_key": _S, "name": _S, "audio_format": _S, "storage": _S,
        "upload_url": _S, "retention_days": _I, "password_required": _B, "prompt_set": _S,
        "initiation": _S, "identification": _S, "lookup_mode": _S, "touchtone_prompt": _B,
        "touchtone_length": _I, "pin_length": _I, "pin_ttl_seconds": _I,
        "max_take_seconds": _I, "silence_seconds": _I, "min_take_seconds": _I,
        "quality_check": _B, "quality_keep_anyway": _B, "quality_min_speech_seconds": _N,
        "quality_min_loudness_lufs": _N, "quality_max_clipped_ratio": _N,
        "quality_min_snr_db": _N, "trim_silence": _B, "normalize_lufs": _N,
        "phone_number_list": {"type": "array", "items": _ref("PhoneNumber")},
        "date_created": _T, "last_updated": _T, "recorder_password": _S,
        "callback_url": _S, "callback_format": _S, "callback_secret": _S,
        "upload_method": _S, "upload_authenticated": _B, "link_ttl_seconds": _I}},
    "RecordingListInput": {"type": "object", "properties": {
        "recording_list_key": _S, "name": _SN, "meta_data_1": _SN, "meta_data_2": _SN,
        "meta_data_3": _SN, "caller_id": _SN, "access_code": _SN,
        "access_password": _PASSWORD, "update_password": _PASSWORD,
        "delete_password": _PASSWORD, "max_recordings": {"type": "integer", "nullable": True},
        "initial_recordings": {"type": "integer", "default": 0}}},
    "RecordingList": {"type": "object", "properties": {
        "recording_list_key": _S, "name": _S, "meta_data_1": _S, "meta_data_2": _S,
        "meta_data_3": _S, "caller_id": _S, "access_code": _S, "access_protected": _B,
        "update_protected": _B, "delete_protected": _B, "recording_count": _I,
        "max_recordings": _I, "date_created": _T, "last_updated": _T, "last_accessed": _T,
        "access_password": _S, "update_password": _S, "delete_password": _S}},
    "RecordingInput": {"type": "object", "properties": {
        "recording_key": _S, "name": _SN, "sequence": {"type": "integer", "minimum": 1},
        "keep_consecutive": {"type": "boolean", "default": True}, "meta_data_1": _SN,
        "meta_data_2": _SN, "meta_data_3": _SN, "caller_id": _SN, "touchtone_input": _SN,
        "access_password": _PASSWORD, "update_password": _PASSWORD,
        "delete_password": _PASSWORD}},
    "Recording": {"type": "object", "properties": {
        "recording_key": _S,
        "recording_state": {"enum": ["unrecorded", "recording", "recorded", "rerecord"]},
        "name": _S, "sequence": _I, "meta_data_1": _S, "meta_data_2": _S, "meta_data_3": _S,
        "caller_id": _S, "touchtone_input": _S, "is_in_session": _B, "recording_length": _I,
        "length": _I, "play_key": _S, "has_wav_file": _B,
        "wav_url": {"type": "string", "format": "uri"}, "has_mp3_file": _B,
        "mp3_url": {"type": "string", "format": "uri"}, "access_protected": _B,
        "update_protected": _B, "delete_protected": _B, "date_created": _T,
        "last_updated": _T, "last_accessed": _T,
        "kept_on_hangup": {"type": "boolean", "description": "the audio is a take the caller "
                           "did not confirm: kept as they hung up mid-take, or recovered after "
                           "the engine died; present once the recording has audio"},
        "upload_state": {"enum": ["pending", "uploaded", "failed"]},
        "audio_deleted_at": _T, "quality_verdict": {"enum": list(VERDICTS)},
        "quality": _ref("TakeQuality")}},
    "TakeQuality": {"type": "object", "description": "the accepted take's figures as "
                    "measured when it was recorded; one that could not be measured is left out",
                    "properties": {
        "verdict": {"enum": list(VERDICTS)}, "duration_seconds": _N, "speech_seconds": _N,
        "leading_silence_seconds": _N, "trailing_silence_seconds": _N, "loudness_lufs": _N,
        "sample_peak_dbfs": _N, "true_peak_dbfs": _N, "clipped_ratio": _N, "snr_db": _N}},
    "SessionInput": {"type": "object", "required": ["recording_keys"], "properties": {
        "recording_keys": {"oneOf": [{"type": "array", "items": _S}, _S]},
        "caller_id": _S, "overwrite": {"type": "boolean", "default": False},
        "callback_url": {"type": "string", "description": "events of this session go here "
                         "instead of the recorder's callback_url"}}},
    "Delivery": {"type": "object", "properties": {
        "event_id": _S, "kind": {"enum": ["callback", "upload"]}, "event_type": _S, "url": _S,
        "state": {"enum": ["pending", "delivered", "failed"]}, "attempts": _I,
        "last_status": _I, "last_error": _SN, "bytes_sent": _I, "created_at": _T,
        "next_attempt_at": _T, "settled_at": _T}},
    "Session": {"type": "object", "properties": {
        "recording_session_key": _S,
        "session_state": {"enum": ["created", "called", "recording", "ended", "expired"]},
        "voice_recorder_key": _S, "recording_list_key": _S, "expires_at": _T,
        "ivr_pin": {"type": "string", "description": "only in the answer that starts it"},
        "phone_numbers": {"type": "array", "items": _ref("PhoneNumber")},
        "session_recordings": {"type": "array", "items": _ref("Recording")},
        "excluded_recordings": {"type": "array", "items": _ref("Recording")},
        "current_recording": {"allOf": [_ref("Recording")], "nullable": True},
        "failure_code": {"type": "string", "description": "only when its call failed on "
                         "our side: a stable code (e.g. database_error, telephony_error)"},
        "failure_reason": {"type": "string", "description": "only with failure_code"}}},
}


def _error_response(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "ivr VoiceRecorder API", "version": __version__,
             "description": "REST/JSON face of the MyVox-compatible voice recorder. Audio is "
                            "served at the wav_url / mp3_url each recording carries "
                            "(/{play_key}/recording.wav|mp3, HTTP Range supported)."},
    "servers": [{"url": "/"}],
    "security": [{"basic": []}, {"bearer": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                            "bearer": {"type": "http", "scheme": "bearer"}},
        "parameters": {
            "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string", "maxLength": 255},
                               "description": "replays the first answer to this key; the same "
                                              "key with another request answers 422"},
            "AssetPassword": {"name": "X-Asset-Password", "in": "header", "required": False,
                              "schema": {"type": "string"},
                              "description": "a protected list's or recording's password"},
        },
        "responses": {
            "BadRequest": _error_response("a parameter is missing or malformed (see param)"),
            "Unauthorized": _error_response("no or wrong credentials"),
            "Forbidden": _error_response("not yours, or a password protects it"),
            "NotFound": _error_response("no such object"),
            "Conflict": _error_response("a key is in use or a limit is reached"),
        },
        "schemas": SCHEMAS,
    },
}
