"""The call log (/console/calls) with real calls through Asterisk, in a real Chromium: a call
appears in the list and its page follows it live (a wrong PIN without its digits, the caller
in, the take with a player that plays, the webhooks delivered, the hang-up), on a desktop and
a 390×844 screen, and the session's history still there when its page is loaded again; a
call that failed on our side shows its code and reason, with a webhook
receiver answering 500; filters, bad filter input, and another developer's call."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web

from ivr.recorder.phone import RecorderPhone
from tests.console.conftest import Browser, Dev, sign_in
from tests.helpers.phone import start_session, take, when_recording
from tests.phone.conftest import make_recorder  # noqa: F401 (a fixture, shared)
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Caller, Engine

pytestmark = pytest.mark.asterisk

SHORT, SHORT_S = "speech-short.wav", 1.5
WRONG_PIN = "9081726354"  # ten digits: no session's PIN (six) can be it
TIMELINE = ("return Array.from(document.querySelectorAll('#call-timeline li'))"
            ".map(li => li.querySelector('.what').textContent)")
ROWS = ("return Array.from(document.querySelectorAll('#calls tbody tr'))"
        ".map(r => [r.dataset.callId, r.querySelector('.c-state .state').textContent])")


class FailingReceiver:
    """A webhook receiver that answers every post with HTTP 500."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(await request.read())
        return web.Response(status=500, text="receiver broke")


async def no_page_scroll(b: Browser) -> None:
    """Nothing sticks out of a phone's screen: tables scroll inside their card."""
    wide = await b.js("return document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the screen"


async def test_a_call_in_the_list_and_on_its_page_live(
        engine: Engine, caller: Caller, engine_browser: Browser, make_recorder: Any,  # noqa: F811
        pool: asyncpg.Pool) -> None:
    b = engine_browser
    hooks: SignedReceiver[dict[str, Any]] = SignedReceiver(
        lambda request, body: dict(orjson.loads(body)["MyVoxapi"]))
    async with serving(hooks, "/events") as base:
        rec = await make_recorder(callback_url=f"{base}/events", callback_format="json")
        hooks.secrets.append(rec.callback_secret)
        s = await start_session(rec, ["Front door"])
        await sign_in(b, Dev(rec.vr.dev.username, rec.vr.dev.password), "/console/calls")
        assert b.path == "/console/calls"
        await b.wait("return document.getElementById('live-status').textContent === 'live'")
        assert await b.js(ROWS) == []
        assert not await b.js("return document.getElementById('no-calls').hidden")
        await b.js("window.__ivrSamePage = true")

        leg = await caller.dial(rec.number, caller_id="5557772001")
        await leg.press(WRONG_PIN + "#")
        await leg.press(s["pin"] + "#")
        await when_recording(engine, leg)
        # The list shows the call in progress without a reload.
        rows = await b.wait(f"const r = ({ROWS.removeprefix('return ')}); return r.length && r")
        assert [state for _, state in rows] == ["in progress"], rows
        assert await b.js("return window.__ivrSamePage") is True
        call_id = int(rows[0][0])

        await b.submit(f"#calls tr[data-call-id='{call_id}'] a")
        assert b.path == f"/console/calls/{call_id}"
        await b.wait("return document.getElementById('live-status').textContent === 'live'")
        assert await b.text("#call-state") == "in progress"
        timeline = await b.js(TIMELINE)
        assert timeline[:4] == ["Callback session.created", "Call started",
                                "PIN or password not accepted", "Caller in"], timeline
        assert "Callback session.called" in timeline, timeline
        await b.js("window.__ivrSamePage = true")
        await b.screenshot("console-call-live")

        await take(engine, leg, SHORT, then="1")
        assert await leg.wait_hangup(20)
        # The page follows the call to its end, and its callbacks to their delivery.
        await b.wait("return document.getElementById('live-status').textContent"
                     " === 'call over'", timeout=30)
        assert await b.js("return window.__ivrSamePage") is True
    assert await b.text("#call-state") == "completed"
    assert await b.text("#call-hangup") == "the engine hung up: the call's flow had finished"
    timeline = await b.js(TIMELINE)
    assert timeline[:4] == ["Callback session.created", "Call started",
                            "PIN or password not accepted", "Caller in"], timeline
    key = s["keys"][0]
    assert f"Take #1 of recording {key} (Front door)" in timeline, timeline
    assert timeline[-2:] == ["Session ended", "Call ended"], timeline
    states = await b.js("return Array.from(document.querySelectorAll("
                        "'#call-timeline li.webhook .state')).map(e => e.textContent)")
    assert states and set(states) == {"delivered"}, states
    assert await b.js("return document.getElementById('call-failure').hidden") is True
    body = await b.js("return document.body.innerText")
    assert s["pin"] not in body and WRONG_PIN not in body

    # The take plays in the page.
    duration = await b.wait("const a = document.querySelector('#call-takes audio');"
                            "return a && (a.error ? 'error ' + a.error.code :"
                            " a.readyState >= 1 && a.duration)")
    assert duration == pytest.approx(SHORT_S, abs=1.0), duration
    assert "accepted" in await b.text("#call-takes tbody tr")
    await b.screenshot("console-call")

    # The session's page, loaded after the call: its history is read back from its rows.
    await b.get(f"/console/sessions/{s['session_key']}")
    await b.wait("return document.getElementById('live-status').textContent"
                 " === 'session over'")
    history = await b.js("return Array.from(document.querySelectorAll('#state-history .what'))"
                         ".map(e => e.textContent)")
    assert history == ["created", "called", f"take #1 of {key}: accepted", "ended"], history
    assert await b.js("return document.getElementById('session-call').pathname") \
        == f"/console/calls/{call_id}"

    # On a phone: the header wraps, the timeline and the tables stay inside the screen.
    await b._run(b.driver.set_window_size, 390, 844)
    try:
        await b.get(f"/console/calls/{call_id}")
        await b.wait("return document.getElementById('live-status').textContent"
                     " === 'call over'")
        await no_page_scroll(b)
        assert await b.js("return document.querySelector('.top nav a[href=\"/console/calls\"]')"
                          ".getBoundingClientRect().right") <= 390
        await b.get("/console/calls")
        await b.wait("return document.querySelectorAll('#calls tbody tr').length === 1")
        await no_page_scroll(b)
        assert await b.js("const s = document.querySelector('.scroll');"
                          "return s.scrollWidth > s.clientWidth")  # the table scrolls
    finally:
        await b._run(b.driver.set_window_size, 1280, 900)


async def test_a_failed_call_shows_why(
        engine: Engine, caller: Caller, engine_browser: Browser, make_recorder: Any,  # noqa: F811
        make_developer: Any, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    b = engine_browser

    async def fails(self: RecorderPhone, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionRefusedError("database gone")

    receiver = FailingReceiver()
    async with serving(receiver, "/hooks") as base:  # type: ignore[arg-type]
        url = f"{base}/hooks"
        rec = await make_recorder(callback_url=url, callback_format="json")
        s = await start_session(rec, [None], caller_id="5557772002")
        monkeypatch.setattr(RecorderPhone, "start_take", fails)
        leg = await caller.dial(rec.number, caller_id="5557772002")
        # The take records (Asterisk started it) and ends on `#`; then the fault surfaces.
        await when_recording(engine, leg)
        await leg.press("#")
        assert await leg.wait_hangup(20), "the engine apologises and hangs up"
        call_id = await pool.fetchval("SELECT id FROM calls WHERE channel_id = $1",
                                      leg.id + ";2")
        await sign_in(b, Dev(rec.vr.dev.username, rec.vr.dev.password),
                      f"/console/calls/{call_id}")
        assert b.path == f"/console/calls/{call_id}"
        assert await b.text("#call-state") == "failed"
        assert await b.js("return document.getElementById('call-failure').hidden") is False
        assert await b.text("#failure-code") == "database_error"
        assert await b.text("#failure-reason") == "ConnectionRefusedError: database gone"
        timeline = await b.js(TIMELINE)
        assert "Failed: database_error" in timeline and timeline[-1] == "Call ended", timeline
        assert "failed" in await b.text("#call-hangup")
        # The receiver's 500s are on the page, while the callbacks wait for their retry.
        detail = await b.wait(
            "const d = Array.from(document.querySelectorAll('#call-timeline li.webhook .detail'))"
            ".map(e => e.textContent).find(t => t.includes('HTTP 500')); return d", timeout=30)
        assert url in detail and "pending" in detail, detail
        # The session's first event fails, so the later ones wait behind it, and say so.
        timeline = await b.js(TIMELINE)
        assert timeline[0] == "Callback session.created", timeline
        waiting = await b.js(
            "return Array.from(document.querySelectorAll('#call-timeline li.webhook .detail'))"
            ".filter(e => e.textContent.includes('waits until the earlier events')).length")
        assert waiting >= 1, await b.js("return document.getElementById('call-timeline')"
                                        ".innerText")
        assert receiver.got, "the receiver was called"
        await b.screenshot("console-call-failed")
        # The first callback's link leads to the inspector: the receiver's answer in full.
        await b.get(await b.js("return document.querySelector("
                               "'#call-timeline li.webhook a.inspect').pathname"))
        assert await b.text("#attempts li:first-child .a-status") == "HTTP 500"
        assert await b.text("#attempts li:first-child .a-body") == "receiver broke"
        assert await b.text("#webhook-code") == "delivery_server_error"

    # The list: filtered by state and by number; a bad filter keeps what was typed.
    await b.get("/console/calls?state=failed")
    await b.wait("return document.querySelectorAll('#calls tbody tr').length === 1")
    assert await b.js(ROWS) == [[str(call_id), "failed"]]
    assert await b.text("#calls .c-state .failure-code") == "database_error"  # and why
    await b.get("/console/calls?state=completed")
    await b.wait("return !document.getElementById('no-calls').hidden")
    assert await b.js(ROWS) == []
    await b.get("/console/calls?number=777-2002")
    await b.wait("return document.querySelectorAll('#calls tbody tr').length === 1")
    await b.get("/console/calls?number=5550000")
    await b.wait("return !document.getElementById('no-calls').hidden")
    await b.get("/console/calls?since=2000-01-01T00:00&until=2000-01-02T00:00")
    await b.wait("return !document.getElementById('no-calls').hidden")
    await b.fill("#call-filters [name=number]", "five five five")
    await b.fill("#call-filters [name=since]", "")
    await b.submit("#call-filters button[type=submit]")
    assert await b.text("#error-number") == "Number: digits only, with an optional leading +"
    assert await b.js("return document.querySelector('#call-filters [name=number]').value") \
        == "five five five"
    assert await b.js(ROWS) == []
    await b.screenshot("console-calls-bad-filter")

    # Another developer sees neither the call nor its take.
    other: Dev = await make_developer()
    await b._run(b.driver.delete_all_cookies)
    await sign_in(b, other, "/console/calls")
    await b.wait("return !document.getElementById('no-calls').hidden")
    await b.get(f"/console/calls/{call_id}")
    assert f"there is no call {call_id} among your calls" in await b.text("main")
    assert s["session_key"] not in await b.js("return document.body.innerText")
    status = await b.js("return fetch(arguments[0]).then(r => r.status)",
                        f"/console/calls/{call_id}/events")
    assert status == 404
