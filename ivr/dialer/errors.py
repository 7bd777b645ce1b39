"""The dialer's errors (from the one hierarchy)."""

from __future__ import annotations

from ivr.core.errors import InvalidParameter, Unauthorized


class NotAuthenticated(Unauthorized):
    error_id = "not_authenticated"


class InvalidJob(InvalidParameter):
    """A job the dialer refuses; nothing was written."""

    def __init__(self, message: str, param: str = "job") -> None:
        super().__init__(param, message)
