"""Building the default prompt set from its manifest: `tts` prompts are spoken by espeak-ng,
`core` prompts are copied from Asterisk's own sounds (so the set can be heard and served as
files too), `file` prompts are left as recorded. The output is byte-identical run to run, so
the committed WAVs only change when a text or the speech pipeline does."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ivr.core.errors import ConfigError
from ivr.media.errors import MediaError
from ivr.media.manifest import MANIFEST, PROMPTS_DIR, PromptEntry, load_manifest
from ivr.media.speech import VOICE, espeak_command, telephone_wav_command

SOUNDS = Path("usr/share/asterisk/sounds")


def resolve_in_root(root: Path, path: Path) -> Path:
    """`path` inside the file system rooted at `root` (the Asterisk sid root), following
    symbolic links as the chrooted Asterisk would: theirs are absolute inside the root."""
    parts = list(path.parts)
    current = root
    for _ in range(256):
        if not parts:
            return current
        part = parts.pop(0)
        if part in ("/", ""):
            continue
        candidate = current / part
        if candidate.is_symlink():
            target = Path(os.readlink(candidate))
            parts = [*target.parts, *parts]
            current = root if target.is_absolute() else current
        else:
            current = candidate
    raise MediaError(f"too many symbolic links under {root / path}")


def core_sound_file(asterisk_root: Path, language: str, sound: str) -> Path:
    """The WAV Asterisk plays for `sound:<sound>` in `language`."""
    return resolve_in_root(asterisk_root, SOUNDS / language / f"{sound}.wav")


def _run(command: list[str], stdin: bytes | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise MediaError(f"{command[0]} failed: {done.stderr.decode(errors='replace').strip()}")


def build_prompt(entry: PromptEntry, folder: Path, language: str,
                 asterisk_root: Path | None) -> bool:
    """(Re)make one prompt's WAV; False when there was nothing to make it from."""
    dst = folder / f"{entry.name}.wav"
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp_dir:
        tmp = Path(tmp_dir)
        if entry.source == "tts":
            _run(espeak_command(VOICE, tmp / "speech.wav"), entry.text.encode())
            _run(telephone_wav_command(tmp / "speech.wav", tmp / "out.wav"))
        elif entry.source == "core":
            assert entry.core_sound is not None
            src = (core_sound_file(asterisk_root, language, entry.core_sound)
                   if asterisk_root else None)
            if src is None or not src.is_file():
                return False
            _run(telephone_wav_command(src, tmp / "out.wav", normalize=False))
        else:
            return dst.is_file()
        os.replace(tmp / "out.wav", dst)
    return True


def build(prompts_dir: Path, language: str, asterisk_root: Path | None,
          say: Callable[[str], None] = print) -> int:
    """Build every prompt of the set; returns how many could not be made."""
    folder = prompts_dir / language
    missing = 0
    for entry in load_manifest(folder / MANIFEST).values():
        if build_prompt(entry, folder, language, asterisk_root):
            say(f"{entry.name}: {entry.source}")
        elif (folder / f"{entry.name}.wav").is_file():
            say(f"{entry.name}: kept (no Asterisk root to copy core:{entry.core_sound} from)")
        else:
            say(f"{entry.name}: MISSING ({entry.source})")
            missing += 1
    return missing


def _default_asterisk_root() -> Path:
    from ivr.settings import Settings

    try:
        return Settings.load().asterisk_root
    except ConfigError:  # no .env yet: the path Settings would default to
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return Path(os.environ.get("IVR_ASTERISK_ROOT") or cache / "ivr" / "asterisk-sid")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.media.prompts")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="regenerate the prompt set's WAVs from its manifest")
    p.add_argument("--prompts-dir", type=Path, default=PROMPTS_DIR)
    p.add_argument("--language", default="en")
    p.add_argument("--asterisk-root", type=Path, default=None,
                   help="the Asterisk root to copy core sounds from (default: the project's)")
    args = parser.parse_args(argv)
    root = args.asterisk_root or _default_asterisk_root()
    try:
        missing = build(args.prompts_dir, args.language, root if root.is_dir() else None)
    except (ConfigError, MediaError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 1 if missing else 0
