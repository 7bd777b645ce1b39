"""Call-control errors: the core hierarchy, each with the HTTP status and the numeric `result`
code the EnableX voice API answers with (its own 4-digit codes where it defines one, else the
HTTP status, as its examples do). `rest.py` renders them in the API's own error shape."""

from __future__ import annotations

from ivr.core.errors import Conflict, InvalidParameter, IvrError, NotFound, Unauthorized


class VoiceError(IvrError):
    """Base of every error the /voice/v1 face answers with itself."""

    result = 500


class BadRequest(VoiceError, InvalidParameter):
    error_id = "invalid_parameter"
    http_status = 400
    result = 400

    def __init__(self, param: str, message: str) -> None:
        InvalidParameter.__init__(self, param, message)


class MediaRequestFailed(BadRequest):
    """400 "Media Request Failed": what a play names does not exist (said in `details`)."""

    error_id = "media_request_failed"

    def __init__(self, param: str, details: str) -> None:
        super().__init__(param, "Media Request Failed")
        self.details = details


class NotAuthenticated(VoiceError, Unauthorized):
    error_id = "unauthorized"
    result = 401


class ApplicationNotFound(VoiceError, NotFound):
    error_id = "application_not_found"
    result = 6110


class NumberNotFound(VoiceError, NotFound):
    """`from` is not a number provisioned to the application."""

    error_id = "phone_number_not_found"
    result = 6118


class CallNotFound(VoiceError, NotFound):
    error_id = "call_not_found"
    result = 404


class RecordingNotFound(VoiceError, NotFound):
    error_id = "recording_not_found"
    result = 404


class CallStateMismatch(VoiceError, Conflict):
    """409: the call is not in a state that takes the request (not bridged, not connected)."""

    error_id = "call_state_mismatch"
    result = 409


class HeldElsewhere(CallStateMismatch):
    """Another engine of the pool runs the call: the request goes to it, at `url` (answered
    409 "handled by another server" where it cannot be passed on)."""

    def __init__(self, url: str, **extra: str) -> None:
        super().__init__("Call is handled by another server", **extra)
        self.url = url


class RecordingNameTaken(VoiceError, Conflict):
    error_id = "recording_name_taken"
    result = 409


class PlayInBridge(VoiceError):
    error_id = "call_bridged"
    http_status = 405
    result = 6112


class VoiceNotSupported(VoiceError):
    error_id = "voice_not_supported"
    http_status = 406
    result = 6117


class RequestPending(VoiceError):
    """408: a play is already running on the call, or it is already recording."""

    error_id = "request_pending"
    http_status = 408

    def __init__(self, message: str, result: int) -> None:
        super().__init__(message)
        self.result = result


class TtsFailed(VoiceError):
    error_id = "tts_failed"
    http_status = 503
    result = 6107


class RecordingFailed(VoiceError):
    error_id = "recording_failed"
    http_status = 500
    result = 6119


class CallFailed(VoiceError):
    """Asterisk refused a request for a live call (the channel vanished mid-request, ...)."""

    error_id = "call_failed"
    http_status = 500
    result = 500


class TrunkDown(CallFailed):
    """The carrier trunk a call leaves by is down (its OPTIONS go unanswered) or missing from
    Asterisk: the call is not placed (the `disconnected` event's cause is "trunk down")."""

    error_id = "trunk_down"
    http_status = 503
    result = 503
