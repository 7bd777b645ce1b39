"""The event layer's own logic, without Asterisk: which Stasis apps an engine listens on, and
how a second copy of an event (one per subscribed app) is told from a new event."""

from __future__ import annotations

from ivr.telephony.events import Dedup, Router, stasis_apps


def test_one_shard_is_the_app_alone_and_more_add_numbered_apps() -> None:
    assert stasis_apps("ivr", 1) == ["ivr"]
    assert stasis_apps("ivr", 3) == ["ivr", "ivr-0", "ivr-1", "ivr-2"]


def _entered(app: str, channel: str, ts: str = "2026-11-30T14:00:00.000+0000") -> dict:
    return {"type": "ChannelEnteredBridge", "application": app, "timestamp": ts,
            "channel": {"id": channel}, "bridge": {"id": "b1"}}


def test_a_copy_from_another_app_is_dropped_once() -> None:
    dedup = Dedup()
    assert not dedup.is_copy(_entered("ivr-2", "c1"))
    assert dedup.is_copy(_entered("ivr", "c1"))
    assert dedup.dropped == 1
    # Another channel entering the same bridge in the same millisecond is a new event.
    assert not dedup.is_copy(_entered("ivr", "c2"))


def test_events_of_one_app_are_never_dropped() -> None:
    dedup = Dedup()
    digit = {"type": "ChannelDtmfReceived", "application": "ivr-1", "digit": "1",
             "timestamp": "2026-11-30T14:00:00.000+0000", "channel": {"id": "c1"}}
    assert not dedup.is_copy(digit)
    assert not dedup.is_copy(dict(digit))  # the same key again, from the same app: a new event
    assert not dedup.is_copy({**digit, "digit": "2", "application": "ivr"})


def test_the_window_is_bounded() -> None:
    dedup = Dedup(window=4)
    for i in range(10):
        dedup.is_copy(_entered("ivr-0", f"c{i}"))
    assert not dedup.is_copy(_entered("ivr", "c0"))  # long forgotten


def test_router_hands_each_event_to_its_channel_and_the_rest_to_unrouted() -> None:
    unrouted: list[dict] = []
    router = Router(unrouted.append)
    got: list[dict] = []
    router.register("c1", got.append)
    router.dispatch(_entered("ivr", "c1"))
    router.dispatch(_entered("ivr", "c9"))
    assert [e["channel"]["id"] for e in got] == ["c1"]
    assert [e["channel"]["id"] for e in unrouted] == ["c9"]
