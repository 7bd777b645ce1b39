"""What the edge refuses in any text a client sends: the C0 control characters but tab, line
feed and carriage return (NUL cannot be stored in PostgreSQL text, the others cannot be
written in XML 1.0), and lone surrogates (not text at all). One rule, shared by every API."""

from __future__ import annotations

import re
from typing import Any

_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def bad_character(value: str) -> str | None:
    """The first character the edge refuses in `value`, or None."""
    found = _BAD.search(value)
    return None if found is None else found.group()


def first_bad(value: Any, path: str = "") -> tuple[str, str] | None:
    """In a decoded JSON value: (where, the character) of the first refused character in a
    string or a key, or None."""
    if isinstance(value, str):
        bad = bad_character(value)
        return None if bad is None else (path, bad)
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = first_bad(str(key), where) or first_bad(item, where)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = first_bad(item, f"{path}[{i}]")
            if found:
                return found
    return None


def describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def xml_safe(text: str) -> str:
    """Text as XML 1.0 can carry it: refused characters (in data stored before the edge
    refused them) become U+FFFD."""
    return _BAD.sub("\ufffd", text)
