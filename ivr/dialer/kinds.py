"""Job kinds and where their outcome hook comes from ("module:factory", the factory taking
the Settings). Loaded lazily, so the dialer does not import the faces built on it."""

from __future__ import annotations

import importlib
import logging

from ivr.dialer.hooks import NoHook, OutcomeHook
from ivr.settings import Settings

log = logging.getLogger(__name__)

KINDS: dict[str, str] = {
    "broadcast": "ivr.broadcast.postbacks:make_hook",
    "campaign": "ivr.campaigns.hook:make_hook",
}


def load_hooks(settings: Settings) -> dict[str, OutcomeHook]:
    hooks: dict[str, OutcomeHook] = {}
    for kind, target in KINDS.items():
        module, _, factory = target.partition(":")
        try:
            hooks[kind] = getattr(importlib.import_module(module), factory)(settings)
        except (ImportError, AttributeError) as exc:
            log.error("dialer: no outcome hook for job kind %r (%s): %s", kind, target, exc)
            hooks[kind] = NoHook()
    return hooks
