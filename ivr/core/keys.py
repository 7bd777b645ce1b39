"""Keys, PINs, passwords and tokens, all from `secrets`: nothing here can be derived from another
key or guessed from a sequence."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

KEY_ALPHABET = string.ascii_uppercase + string.digits
# What any object key may be, generated or chosen by a developer (recorder, list, recording,
# number keys): one rule for the API, the console, the phone side and file paths (no `/`,
# no `.`, so a key is always a safe path part). The same rule is in the migrations' CHECKs.
KEY_CHARS = r"[A-Za-z0-9_-]{1,64}"
KEY_PATTERN = re.compile(KEY_CHARS)


def is_key(value: str) -> bool:
    return KEY_PATTERN.fullmatch(value) is not None
# Random passwords avoid look-alike characters: they are read off a screen and typed back.
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def new_key(length: int = 10) -> str:
    """An object key such as a voice recorder, list, recording or session key."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(length))


def new_play_key() -> str:
    """The 20-character key that names a recording's audio in its URL."""
    return new_key(20)


def new_pin(length: int) -> str:
    """Digits a caller enters; a leading zero is fine, every digit is uniform."""
    return "".join(secrets.choice(string.digits) for _ in range(length))


def new_password(length: int = 12) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def new_token() -> str:
    """An API bearer token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored for a token: it is random and long, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).digest()
