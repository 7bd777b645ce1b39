"""Call-initiated recorders: a dedicated number; callers identified by caller id and/or access
code; lookup modes Lookup, Lookup Else Create, Create Recording List."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.phone import recordings_of, take
from tests.helpers.vr import as_list
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

SHORT = "speech-short.wav"


async def lists_of(rec: Any, **search: str) -> list[dict[str, Any]]:
    tree = await rec.vr("GetRecordingList", "json", **search)
    if tree["status"] != "success":
        return []
    return as_list(tree.get("recording_list", []))


async def test_lookup_mode_boots_unknown_callers_and_records_into_their_list(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder(initiation="call", identification="caller_id",
                              lookup_mode="lookup")
    leg = await caller.dial(rec.number, caller_id="5558880001")
    assert await leg.wait_hangup(15), "an unknown caller is told so and the call ends"
    assert await lists_of(rec, caller_id="5558880001") == []

    lk = (await rec.vr.ok("CreateRecordingList", "json", caller_id="5558880001"))[
        "recording_list"]["recording_list_key"]
    leg = await caller.dial(rec.number, caller_id="5558880001")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    recordings = await recordings_of(rec, lk)
    assert [r["recording_state"] for r in recordings.values()] == ["recorded"]


async def test_lookup_else_create_by_access_code(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder(initiation="call", identification="access_code",
                              lookup_mode="lookup_else_create")
    for _ in range(2):  # the first call creates the list, the second finds it
        leg = await caller.dial(rec.number, caller_id="5558880002")
        await leg.press("2468#")
        await take(engine, leg, SHORT, then="9")
        assert await leg.wait_hangup(20)
    (found,) = await lists_of(rec, access_code="2468")
    recordings = await recordings_of(rec, found["recording_list_key"])
    assert [r["recording_state"] for r in recordings.values()] == ["recorded", "recorded"]


async def test_create_mode_makes_a_new_list_every_call_up_to_max(
    engine: Engine, caller: Caller, make_recorder: Any
) -> None:
    rec = await make_recorder(initiation="call", identification="none", lookup_mode="create")
    leg = await caller.dial(rec.number, caller_id="5558880003")
    await take(engine, leg, SHORT, then="1")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    leg = await caller.dial(rec.number, caller_id="5558880003")
    await take(engine, leg, SHORT, then="9")
    assert await leg.wait_hangup(20)
    lists = await lists_of(rec, caller_id="5558880003")
    assert len(lists) == 2
    sizes = []
    for found in lists:
        sizes.append(len(await recordings_of(rec, found["recording_list_key"])))
    assert sorted(sizes) == [1, 2]
