"""Key press -> next prompt, as the engine sees it: from the moment a ChannelDtmfReceived event
is fed to its call to the moment the call sends its next play request. A caller hears the gap
between their key and the next prompt; this is the part of it the engine owns (plus the time
Asterisk takes to start the playback, which ARI does not report).

Observed in a Prometheus histogram in the default registry, served by the app's /metrics. The
hook sits on the hot path of every call: one float stored per key press, one `observe()` per
prompt that follows a key press."""

from __future__ import annotations

import time

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

now = time.monotonic
_observe = KEYPRESS_TO_PROMPT.observe


def prompted(pressed_at: float) -> None:
    """A play request is going out; `pressed_at` (a `now()` reading) is the last key press
    since the previous one."""
    _observe(now() - pressed_at)
