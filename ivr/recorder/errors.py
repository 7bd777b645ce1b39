"""Recorder errors: the core hierarchy plus the MyVox code each one answers with on /vr.
An error without its own code takes the code of the command that raised it (1301 for
CreateRecordingList, ...), with the message as error_details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ivr.core.errors import Conflict, Forbidden, IvrError, NotFound, Unavailable

if TYPE_CHECKING:
    from ivr.recorder.models import Recording


class ListKeyInUse(Conflict):
    error_id = "recording_list_key_in_use"
    myvox_code = 1305


class RecordingKeyInUse(Conflict):
    error_id = "recording_key_in_use"
    myvox_code = 1406


class UsernameTaken(Conflict):
    error_id = "username_taken"
    myvox_code = 1105


class RecorderQuota(Forbidden):
    """The developer has as many voice recorders as the operator allows (IVR_MAX_RECORDERS)."""

    error_id = "voice_recorder_quota"
    myvox_code = 1201


class SignupsTooFast(IvrError):
    """Too many accounts made from one address in the last hour (IVR_SIGNUP_PER_HOUR)."""

    error_id = "too_many_signups"
    http_status = 429
    myvox_code = 1101


class RecorderNotYours(Forbidden):
    error_id = "voice_recorder_not_yours"
    myvox_code = 1208


class AssetPasswordRequired(Forbidden):
    """A list or recording is protected and the password given (if any) does not match."""

    error_id = "asset_password_required"


class SignupClosed(Forbidden):
    error_id = "signup_closed"


class LimitReached(Conflict):
    error_id = "limit_reached"


class SessionInUse(Conflict):
    error_id = "session_in_use"


class RecordingsLocked(SessionInUse):
    """Every recording a session asked for is voiced in another live session: the /vr reply
    lists them, as a successful start lists those it left out."""

    def __init__(self, message: str, excluded: Sequence[Recording]) -> None:
        super().__init__(message)
        self.excluded = tuple(excluded)


class NoPhoneNumber(Conflict):
    error_id = "no_phone_number"


class NumberInUse(Conflict):
    """`ivr number remove` of a number recorders or live sessions still use, without --force."""

    error_id = "phone_number_in_use"


class NoAudio(NotFound):
    error_id = "no_audio"


class MailNotConfigured(Unavailable):
    error_id = "mail_not_configured"


class IdempotencyMismatch(IvrError):
    error_id = "idempotency_key_reused"
    http_status = 422


class IdempotencyInProgress(Conflict):
    error_id = "idempotency_key_in_progress"
