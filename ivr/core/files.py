"""Stored audio is private to the service (issue #20, host hygiene): files 0640 and their
folders 0750 whatever the process umask, so another user on the host can neither read a
caller's take nor list a recorder's folder; the group is left for a backup or ops account.
Every file lands whole or not at all: written to a hidden name beside it, then renamed."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_MODE = 0o640
DIR_MODE = 0o750


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents 0750; folders that were already there keep theirs
    (a data folder the operator chose, /tmp)."""
    missing: list[Path] = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir()
            os.chmod(folder, DIR_MODE)  # mkdir's mode is cut by the umask
    return path


def part_path(path: Path) -> Path:
    """A hidden name beside `path` for writing it before the rename (a tool's output)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")


def publish(part: Path, path: Path) -> None:
    """Give a finished `part` the private mode and rename it to `path` in one step."""
    os.chmod(part, FILE_MODE)
    os.replace(part, path)


def write_private(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` atomically, 0640, its folder made 0750 if missing. `fsync` for
    what must survive a power cut once acknowledged (a caller's take)."""
    private_dir(path.parent)
    part = part_path(path)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        publish(part, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
