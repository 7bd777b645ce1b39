"""Media errors, in the core hierarchy."""

from __future__ import annotations

from ivr.core.errors import IvrError, NotFound


class UnknownPrompt(NotFound):
    error_id = "unknown_prompt"

    def __init__(self, name: str, language: str) -> None:
        super().__init__(f"no prompt named {name!r} in the {language!r} prompt set",
                         prompt_name=name)


class MediaError(IvrError):
    """Synthesis or transcoding failed, or an audio file is unreadable."""

    error_id = "media_error"
