"""Request parameters for both faces: /vr form values (all strings) and /v1 JSON values (typed).
Each reader names the parameter in its error. For updates, a parameter that is absent leaves a
field as it is, while one given empty (or JSON null) clears it."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ivr.core.errors import InvalidParameter, MissingParameter
from ivr.core.keys import is_key


class Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = Absent.ABSENT
T = TypeVar("T")

_PHONE_FORMATTING = re.compile(r"[\s().-]")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class Params:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def raw(self, name: str) -> Any:
        return self.data.get(name, ABSENT)

    def given(self, name: str) -> bool:
        value = self.raw(name)
        return value is not ABSENT and value is not None and value != ""

    def _string(self, name: str, *, required: bool) -> str | Absent | None:
        value = self.raw(name)
        if value is ABSENT:
            if required:
                raise MissingParameter(name)
            return ABSENT
        if value is None or value == "":
            if required:
                raise MissingParameter(name)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidParameter(name, f"parameter '{name}' must be a string")
        return str(value).strip() if isinstance(value, int) else value

    def text(self, name: str, *, required: bool = False, max_len: int = 1000) -> Any:
        value = self._string(name, required=required)
        if isinstance(value, str) and len(value) > max_len:
            raise InvalidParameter(name, f"parameter '{name}' is longer than {max_len} characters")
        return value

    def key(self, name: str, *, required: bool = False) -> Any:
        value = self._string(name, required=required)
        if isinstance(value, str) and not is_key(value):
            raise InvalidParameter(
                name, f"parameter '{name}' must be 1 to 64 letters, digits, '-' or '_'"
            )
        return value

    def digits(self, name: str, *, max_len: int = 32, extra: str = "") -> Any:
        value = self._string(name, required=False)
        if isinstance(value, str):
            allowed = set("0123456789" + extra)
            if not set(value) <= allowed or len(value) > max_len:
                also = f" or {extra}" if extra else ""
                raise InvalidParameter(
                    name, f"parameter '{name}' must be 1 to {max_len} digits{also}")
        return value

    def phone(self, name: str) -> Any:
        """A caller id: 2 to 15 digits, an optional leading '+'; spaces, dots, dashes and
        brackets are dropped ("512-538-1945" is 5125381945)."""
        value = self._string(name, required=False)
        if isinstance(value, str):
            value = _PHONE_FORMATTING.sub("", value)
            if not re.fullmatch(r"\+?[0-9]{2,15}", value):
                raise InvalidParameter(name, f"parameter '{name}' must be a phone number (digits)")
        return value

    def integer(self, name: str, lo: int, hi: int) -> Any:
        value = self.raw(name)
        if value is ABSENT:
            return ABSENT
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise InvalidParameter(name, f"parameter '{name}' must be a whole number")
        if isinstance(value, str):
            if not re.fullmatch(r"\s*[+-]?[0-9]{1,9}\s*", value):
                raise InvalidParameter(name, f"parameter '{name}' must be a whole number")
            value = int(value)
        if not isinstance(value, int):
            raise InvalidParameter(name, f"parameter '{name}' must be a whole number")
        if not lo <= value <= hi:
            raise InvalidParameter(name, f"parameter '{name}' must be between {lo} and {hi}")
        return value

    def decimal(self, name: str, lo: float, hi: float) -> Any:
        """A number, whole or not ("0.5", 0.5, "-40")."""
        value = self.raw(name)
        if value is ABSENT:
            return ABSENT
        if value is None or value == "":
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?([0-9]{1,9}(\.[0-9]{0,6})?|"
                                                   r"\.[0-9]{1,6})\s*", value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameter(name, f"parameter '{name}' must be a number")
        if not lo <= value <= hi:
            raise InvalidParameter(name, f"parameter '{name}' must be between {lo:g} and {hi:g}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is ABSENT or value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        raise InvalidParameter(name, f"parameter '{name}' must be true or false")

    def choice(self, name: str, options: Iterable[str]) -> Any:
        value = self._string(name, required=False)
        options = tuple(options)
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in options:
                raise InvalidParameter(
                    name, f"parameter '{name}' must be one of {', '.join(options)}"
                )
        return value

    def url(self, name: str) -> Any:
        value = self.text(name, max_len=2000)
        if isinstance(value, str) and not re.match(r"^(https?|ftp|sftp)://[^\s/]+", value):
            raise InvalidParameter(name, f"parameter '{name}' must be an http(s) or (s)ftp URL")
        return value


def present(values: Mapping[str, T | Absent]) -> dict[str, T]:
    """The entries that were given (None included: it clears)."""
    return {k: v for k, v in values.items() if not isinstance(v, Absent)}
