"""What the recorder's table modules share in building SQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _assignments(changes: Mapping[str, Any], start: int = 2) -> tuple[str, list[Any]]:
    # Column names come from the service's own field lists, never from a request.
    assert all(name.isidentifier() for name in changes)
    sets = [f"{name} = ${i}" for i, name in enumerate(changes, start)]
    return ", ".join([*sets, "updated_at = now()"]), list(changes.values())


def like_pattern(value: str) -> str:
    """MyVox searches treat only '%' as a wildcard: '_' and '\\' match themselves."""
    return value.replace("\\", "\\\\").replace("_", "\\_")
