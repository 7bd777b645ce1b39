"""Key press -> next prompt, as the engine sees it: from the moment a ChannelDtmfReceived event
is fed to its call to the moment the call sends its next play request. A caller hears the gap
between their key and the next prompt; this is the part of it the engine owns (plus the time
Asterisk takes to start the playback, which ARI does not report).

Observed in a Prometheus histogram in the default registry, served by the app's /metrics. The
hook sits on the hot path of every call: one float stored per key press, one `observe()` per
prompt that follows a key press.

Beside it, how late key presses reach their call (`ivr_key_event_delay_seconds`): from the
timestamp Asterisk puts on a ChannelDtmfReceived event to the moment the engine feeds it to
its call. That is Asterisk's event delivery (an app's events leave through one thread), the
websocket and the engine's event loop, the part of a key's way the first histogram does not
see. Wall clocks on both sides: meaningful where Asterisk runs on the engine's host (or the
two keep their clocks in sync); a skewed clock reads as 0."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prometheus_client import Histogram

# Fine-grained at the low end, where a healthy engine answers; coarse up to the seconds a
# stalled event loop or database would show.
BUCKETS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
           0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)

KEYPRESS_TO_PROMPT = Histogram(
    "ivr_keypress_to_prompt_seconds",
    "From a key press event reaching its call to the call's next play request",
    buckets=BUCKETS,
)

KEY_EVENT_DELAY = Histogram(
    "ivr_key_event_delay_seconds",
    "From Asterisk stamping a key press event to the event reaching its call",
    buckets=BUCKETS,
)

now = time.monotonic
_observe = KEYPRESS_TO_PROMPT.observe
_observe_delay = KEY_EVENT_DELAY.observe


def prompted(pressed_at: float) -> None:
    """A play request is going out; `pressed_at` (a `now()` reading) is the last key press
    since the previous one."""
    _observe(now() - pressed_at)


def stamp(event: dict[str, Any]) -> float | None:
    """The time Asterisk put on an event (epoch seconds), or None."""
    try:
        return datetime.fromisoformat(event["timestamp"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def key_event_arrived(event: dict[str, Any]) -> None:
    """A ChannelDtmfReceived event reached its call: how long after Asterisk stamped it."""
    stamped = stamp(event)
    if stamped is not None:
        _observe_delay(max(0.0, time.time() - stamped))
