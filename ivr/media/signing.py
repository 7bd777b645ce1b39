"""The key behind media URLs that must not be guessable (uploaded prompts, TTS file names).
It lives in the data folder, so every engine process sharing that folder issues and accepts
the same URLs, and Asterisk's media cache stays valid across restarts."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ivr.core.files import private_dir

KEY_BYTES = 32


def media_key(data_dir: Path) -> bytes:
    """Read the key, creating it on first use. os.link fails if another process won the
    race, so all processes end up with the same key."""
    path = data_dir / "media" / "url.key"
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    tmp = path.with_name(f".url.key.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} is not a {KEY_BYTES}-byte media key; delete it to make a new one")
    return key


def sign(key: bytes, message: str, length: int = 32) -> str:
    """A hex HMAC-SHA256 of `message`, cut to `length` characters (128 bits by default)."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:length]
