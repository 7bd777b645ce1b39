"""The phone side in tests: a developer's recorder on a number of its own, sessions started
over /vr, and ways to wait for what the engine is doing (a live recording, a session state)
so the caller talks at the right moment, as a person would after the beep."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from ivr.recorder.service import RecorderService
from ivr.settings import Settings
from ivr.telephony.call import Call
from ivr.telephony.rest import basic_auth
from tests.helpers.vr import Vr, fresh_number
from tests.telephony_harness import CallerLeg, Engine


@dataclass
class Recorder:
    vr: Vr
    key: str
    number: str
    callback_secret: str = ""  # what its callbacks are signed with


async def new_number(pool: asyncpg.Pool, settings: Settings) -> str:
    return (await RecorderService(pool, settings.data_dir, open_signup=True).add_number(
        fresh_number("737"), None, "US", None)).number


async def recordings_of(rec: Recorder, list_key: str) -> dict[str, dict[str, Any]]:
    """The list's recordings by key, through /v1 (MyVox's GetRecordingList lists none)."""
    auth = basic_auth(rec.vr.dev.username, rec.vr.dev.password)["Authorization"]
    resp = await rec.vr.api.get(f"/v1/recorders/{rec.key}/lists/{list_key}/recordings",
                                headers={"Authorization": auth})
    assert resp.status == 200, await resp.text()
    return {r["recording_key"]: r for r in (await resp.json())["recordings"]}


async def start_session(rec: Recorder, names: list[str | None],
                        **params: Any) -> dict[str, Any]:
    """A list with one recording per name (None: unnamed), and a session over all of them."""
    lk = (await rec.vr.ok("CreateRecordingList", "json"))["recording_list"][
        "recording_list_key"]
    keys = []
    for name in names:
        extra = {"name": name} if name else {}
        tree = await rec.vr.ok("CreateRecording", "json", recording_list_key=lk, **extra)
        keys.append(tree["recording"]["recording_key"])
    tree = await rec.vr.ok("StartRecordingSession", "json", recording_list_key=lk,
                           recording_keys=",".join(keys), **params)
    return {"list_key": lk, "keys": keys, "session_key": tree["recording_session_key"],
            "pin": tree["ivr_pin"], "tree": tree}


def engine_call(engine: Engine, leg: CallerLeg) -> Call:
    """The engine's side of a caller's call (the other half of the Local channel pair)."""
    call = engine.tel.runner.calls.get(leg.id + ";2")
    if call is None:
        raise LookupError(f"no engine call for {leg.id}")
    return call


async def when_recording(engine: Engine, leg: CallerLeg, timeout: float = 20) -> None:
    """Returns once Asterisk is writing a take of this call (the beep has played)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if engine_call(engine, leg).live_recording is not None:
                return
        except LookupError:
            pass
        await asyncio.sleep(0.02)
    raise AssertionError("the engine did not start recording")


async def when_softphone_recording(engine: Engine, timeout: float = 15) -> None:
    """Returns once the engine records some call (a softphone's, which has no caller leg)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if any(c.live_recording for c in engine.tel.runner.calls.values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the engine never started recording the softphone")


async def when_not_recording(engine: Engine, leg: CallerLeg, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if engine_call(engine, leg).live_recording is None:
                return
        except LookupError:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the take did not end")


async def take(engine: Engine, leg: CallerLeg, speech: str, then: str) -> None:
    """One take as a caller makes it: wait for the beep, talk, press # and then `then`."""
    await when_recording(engine, leg)
    await leg.say(speech)
    await leg.press("#")
    await when_not_recording(engine, leg)
    if then:
        await leg.press(then)


class StatusWatch:
    """Polls GetSessionStatus while a call runs and keeps every state it saw, in order."""

    def __init__(self, vr: Vr, session_key: str) -> None:
        self.vr, self.key = vr, session_key
        self.states: list[str] = []
        self.current: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            tree = await self.vr.ok("GetSessionStatus", "json", recording_session_key=self.key)
            state = tree["session_state"]
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            current = tree.get("current_recording")
            if current and (not self.current or self.current[-1] != current["recording_key"]):
                self.current.append(current["recording_key"])
            await asyncio.sleep(0.05)

    def __enter__(self) -> StatusWatch:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
