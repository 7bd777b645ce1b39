"""The prompt catalog: prompt name -> the ARI media URI a call plays. A recorder's uploaded
prompt wins over the default set. `media()` sits between a key press and the next prompt, so
it does one stat at most: no database, no file reads.

URLs carry a version (`?v=`: the default WAV's hash, an upload's mtime and size), because
Asterisk's HTTP media cache keeps a URL's audio for as long as Cache-Control allows (a year, as
served here) and across restarts: a changed prompt must get a new URL.

`python -m ivr.media.prompts build` (`make prompts`) regenerates the default set's audio."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from types import MappingProxyType

from ivr.core.errors import ConfigError, InvalidParameter
from ivr.core.keys import is_key
from ivr.media.errors import UnknownPrompt
from ivr.media.manifest import MANIFEST, PromptEntry, load_manifest
from ivr.media.manifest import PROMPTS_DIR as PROMPTS_DIR  # where callers have found it
from ivr.media.signing import media_key, sign

LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z]{2,4})?")
# The prompts a recorder plays; UploadPrompt replaces one of them with the developer's audio.
PROMPT_NAMES = (
    "welcome", "enter_pin", "invalid_pin", "enter_access_code", "enter_touchtone",
    "record_after_tone", "review_menu", "recording_saved", "next_recording", "goodbye",
)


def prompt_path(data_dir: Path, recorder_key: str, prompt_name: str) -> Path:
    """Where a recorder's uploaded prompt lives."""
    return data_dir / "prompts" / recorder_key / f"{prompt_name}.wav"


def upload_token(key: bytes, recorder_key: str, name: str) -> str:
    """The capability in an uploaded prompt's URL: without the media key it cannot be made,
    so recorder keys alone do not expose a recorder's prompts."""
    return sign(key, f"uploaded-prompt/{recorder_key}/{name}")


class PromptCatalog:
    def __init__(self, prompts_dir: Path, data_dir: Path, public_url: str,
                 language: str = "en") -> None:
        if not LANGUAGE.fullmatch(language):
            raise ConfigError(f"bad prompt language {language!r}")
        self.language = language
        self.data_dir = data_dir
        base = public_url.rstrip("/")
        folder = prompts_dir / language
        self._entries = MappingProxyType(load_manifest(folder / MANIFEST))
        defaults: dict[str, str] = {}
        for entry in self._entries.values():
            if entry.source == "core":
                defaults[entry.name] = f"sound:{entry.core_sound}"
                continue
            wav = folder / f"{entry.name}.wav"
            try:
                version = hashlib.sha256(wav.read_bytes()).hexdigest()[:16]
            except FileNotFoundError:
                raise ConfigError(f"prompt {entry.name!r}: {wav} is missing "
                                  "(`make prompts` builds it)") from None
            defaults[entry.name] = (
                f"sound:{base}/media/prompts/{language}/{entry.name}.wav?v={version}")
        self._defaults = defaults
        self._key = media_key(data_dir)
        self._uploadable = frozenset(PROMPT_NAMES) & defaults.keys()
        self._upload_base = f"sound:{base}/media/uploads/"

    @property
    def entries(self) -> MappingProxyType[str, PromptEntry]:
        return self._entries

    def text(self, name: str) -> str:
        """What the default prompt says (for logs, transcripts and tests)."""
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownPrompt(name, self.language)
        return entry.text

    def media(self, name: str, recorder_key: str | None = None) -> str:
        """The ARI media URI for prompt `name`: the recorder's upload if it has one, else
        the default (`sound:<core sound>` or `sound:http://.../media/prompts/...`)."""
        default = self._defaults.get(name)
        if default is None:
            raise UnknownPrompt(name, self.language)
        if recorder_key is not None and name in self._uploadable:
            return self.uploaded_media(recorder_key, name) or default
        return default

    def default_media(self, name: str) -> str:
        default = self._defaults.get(name)
        if default is None:
            raise UnknownPrompt(name, self.language)
        return default

    def uploaded_media(self, recorder_key: str, name: str) -> str | None:
        """The URL of the recorder's uploaded `name` prompt, or None: one stat."""
        if not is_key(recorder_key):  # nothing else may reach a file path
            raise InvalidParameter("recorder_key", f"bad recorder key {recorder_key!r}")
        try:
            st = os.stat(prompt_path(self.data_dir, recorder_key, name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        token = upload_token(self._key, recorder_key, name)
        return (f"{self._upload_base}{recorder_key}/{token}/{name}.wav"
                f"?v={st.st_mtime_ns:x}-{st.st_size:x}")


if __name__ == "__main__":
    from ivr.media.build import main

    raise SystemExit(main())
