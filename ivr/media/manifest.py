"""A prompt set's manifest, `prompts/<language>/prompts.tsv`: one line per prompt,
`name <TAB> source <TAB> text`, where source is `core:<Asterisk sound>` (Asterisk plays its own
recording), `tts` (espeak-ng made the WAV from the text) or `file` (a WAV recorded by hand).
Every prompt also has `<name>.wav` beside the manifest, so the set can be heard and served
whatever its source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ivr.core.errors import ConfigError
from ivr.settings import REPO_ROOT

# The default prompt set, in the checkout (IVR_PROMPTS_DIR points a server elsewhere).
PROMPTS_DIR = REPO_ROOT / "prompts"
MANIFEST = "prompts.tsv"
HEADER = ("name", "source", "text")
NAME = re.compile(r"[a-z0-9_]{1,64}")
# Asterisk sound names may sit in folders (`digits/1`), never climb out of the sounds folder.
CORE_SOUND = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class PromptEntry:
    name: str
    source: str  # "tts", "file" or "core"
    text: str
    core_sound: str | None = None  # the Asterisk sound name, for source "core"


def load_manifest(path: Path) -> dict[str, PromptEntry]:
    """The manifest's prompts by name, in file order; any malformed line is a ConfigError
    naming the file and line."""
    entries: dict[str, PromptEntry] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"no prompt manifest at {path}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{path}:{lineno}"
        if len(fields) != 3:
            raise ConfigError(f"{where}: expected name, source and text separated by tabs")
        if tuple(fields) == HEADER:
            continue
        name, source, text = (f.strip() for f in fields)
        if not NAME.fullmatch(name):
            raise ConfigError(f"{where}: prompt name {name!r} must be lowercase letters, "
                              "digits and '_'")
        if name in entries:
            raise ConfigError(f"{where}: prompt {name!r} is listed twice")
        if not text:
            raise ConfigError(f"{where}: prompt {name!r} has no text")
        core_sound = None
        if source.startswith("core:"):
            core_sound = source[len("core:"):]
            if not CORE_SOUND.fullmatch(core_sound):
                raise ConfigError(f"{where}: bad Asterisk sound name {core_sound!r}")
            source = "core"
        elif source not in ("tts", "file"):
            raise ConfigError(f"{where}: source must be core:<sound>, tts or file, "
                              f"got {source!r}")
        entries[name] = PromptEntry(name, source, text, core_sound)
    if not entries:
        raise ConfigError(f"{path} lists no prompts")
    return entries
