"""One error hierarchy. Each error carries a stable id and an HTTP status; the MyVox face maps
ids to its numeric codes, the REST face answers with status + id + message."""

from __future__ import annotations

from typing import Any


class IvrError(Exception):
    error_id = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error_id, "message": self.message}
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return body


class ConfigError(IvrError):
    """A setting is missing or malformed; the message names the variable."""

    error_id = "config_error"


class InvalidParameter(IvrError):
    error_id = "invalid_parameter"
    http_status = 400

    def __init__(self, param: str, message: str, **extra: Any) -> None:
        super().__init__(message, param=param, **extra)
        self.param = param


class MissingParameter(InvalidParameter):
    error_id = "missing_parameter"

    def __init__(self, param: str) -> None:
        super().__init__(param, f"parameter '{param}' is required")


class Unauthorized(IvrError):
    error_id = "unauthorized"
    http_status = 401


class Throttled(Unauthorized):
    """Refused without looking at the password: too many failures for this account or from
    this address (ivr/core/throttle.py). `retry_after`: seconds until the lock ends."""

    error_id = "too_many_attempts"
    http_status = 429


class Forbidden(IvrError):
    error_id = "forbidden"
    http_status = 403


class NotFound(IvrError):
    error_id = "not_found"
    http_status = 404


class Conflict(IvrError):
    error_id = "conflict"
    http_status = 409


class Unavailable(IvrError):
    """A dependency (database, Asterisk) cannot be reached right now."""

    error_id = "unavailable"
    http_status = 503


class ProvisionError(IvrError):
    """Setting up a real part (Asterisk root, database cluster) failed."""

    error_id = "provision_error"


class TelephonyError(IvrError):
    """An ARI request failed for a reason other than the caller hanging up."""

    error_id = "telephony_error"
    http_status = 502

    def __init__(self, message: str, *, status: int = 0, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.status = status


class CallHungUp(IvrError):
    """Raised from any call step once the caller is gone."""

    error_id = "call_hung_up"


class CallLost(CallHungUp):
    """The call's channel vanished while the engine could not see it (its link to Asterisk was
    down, or Asterisk restarted): not known to be the caller's doing, so the session says so."""

    error_id = "call_lost"


# A failure's reason is kept short: it is shown in lists and sent in events.
_REASON_LIMIT = 300


def failure_of(exc: BaseException) -> tuple[str, str]:
    """What a call or session whose flow failed records: a stable code (an IvrError's id;
    `database_error` for the database; `internal_error` otherwise) and a short reason. Our
    errors' messages never carry PIN digits or secrets; others' are cut to the class and
    message."""
    if isinstance(exc, IvrError):
        code, reason = exc.error_id, exc.message
    elif type(exc).__module__.split(".")[0] == "asyncpg" or isinstance(
            exc, ConnectionRefusedError):
        code, reason = "database_error", f"{type(exc).__name__}: {exc}"
    else:
        code, reason = "internal_error", f"{type(exc).__name__}: {exc}"
    return code, reason[:_REASON_LIMIT]

