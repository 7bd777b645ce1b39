"""The webhook inspector (/console/webhooks) in a real Chromium, with a real receiver that
answers 500 until it is mended, then 200: each attempt's request (signed, no secret) and
answer (status, headers, body), the later event of the session waiting behind the failing one
and saying so, Retry now, the page following the delivery live, Redeliver, and another
developer kept out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, sign_in
from tests.console.test_pages import create_recorder
from tests.helpers.phone import new_number

ROWS = ("return Array.from(document.querySelectorAll('#webhooks tbody tr'))"
        ".map(r => r.querySelector('.w-event').textContent + ' ' +"
        " r.querySelector('.state').textContent)")


class Receiver:
    """500 with a body and a header of its own until `mended`, then 200."""

    def __init__(self) -> None:
        self.mended = False
        self.event_ids: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.event_ids.append(request.headers["X-IVR-Event-Id"])
        if not self.mended:
            return web.Response(status=500, text="receiver says no: database locked",
                                headers={"X-Receiver": "broken"})
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield found, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def post_form(b: Browser, action: str) -> None:
    """A form posted from the page as the console's own forms are (its CSRF token)."""
    await b.js("const f = document.createElement('form'); f.method = 'post';"
               "f.action = arguments[0]; const i = document.createElement('input');"
               "i.name = 'csrf_token'; i.value = document.body.dataset.csrf; f.appendChild(i);"
               "document.body.appendChild(f); window.__ivrOldPage = true; f.submit();", action)
    await b.wait("return !window.__ivrOldPage && document.readyState === 'complete'")


async def test_a_failing_webhook_inspected_retried_and_redelivered(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings,
        receiver: tuple[Receiver, str]) -> None:
    b, (hook, url) = browser, receiver
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    rk = await create_recorder(b, callback_url=url, callback_format="json")
    secret = await pool.fetchval(
        "SELECT callback_secret FROM voice_recorders WHERE recorder_key = $1", rk)
    await b.js("document.querySelector('#create-list').closest('details').open = true")
    await b.fill("#create-list [name=initial_recordings]", "1")
    await b.submit("#create-list button[type=submit]")
    await b.submit("#start-session button[type=submit]")
    await b.submit("#expire-session button")  # session.expired, queued behind session.created

    await b.get("/console/webhooks")
    assert await b.js(ROWS) == ["session.expired pending", "session.created pending"]
    created = await b.js("return document.querySelectorAll('#webhooks tbody tr')[1]"
                         ".dataset.eventId")
    expired = await b.js("return document.querySelectorAll('#webhooks tbody tr')[0]"
                         ".dataset.eventId")
    assert "waits behind an earlier event" in await b.text("#webhooks tbody tr")

    # The failing one: the request as sent (signed, no secret), the receiver's answer.
    await b.get(f"/console/webhooks/{created}")
    await b.wait("return document.querySelector('#attempts .a-status')")
    assert await b.text("#attempts li:last-child .a-status") == "HTTP 500"
    assert await b.text("#webhook-state") == "pending"
    assert "next try" in await b.text("#webhook-note")
    assert await b.text("#webhook-waiting") == ("1 later event of this session waits behind "
                                                "this one (each session's events are "
                                                "delivered in order).")
    assert url in await b.text("#webhook-url")
    assert '"event_type":"session.created"' in await b.text("#request-body")
    sent = await b.text("#request-headers-1")
    assert "X-IVR-Signature" in sent and "X-IVR-Event-Id" in sent and created in sent
    answer = await b.text("#response-headers-1")
    assert "X-Receiver" in answer and "broken" in answer
    assert "receiver says no: database locked" in await b.text("#attempts .a-body")
    assert secret not in await b.js("return document.documentElement.outerHTML")

    # The one behind it says what it waits for, and cannot jump the queue.
    await b.get(f"/console/webhooks/{expired}")
    assert "Waits behind session.created" in await b.text("#webhook-blocked")
    assert await b.js("return document.querySelector('#webhook-blocked a').pathname") \
        == f"/console/webhooks/{created}"
    assert not await b.js("return document.getElementById('retry-now')")
    assert await b.text("#no-attempts") == "Not tried yet."
    await post_form(b, f"/console/webhooks/{expired}/retry")
    assert "waits behind an earlier event" in await b.text("#flash.error")
    await b.screenshot("console-webhook-waiting")

    # Mended, Retry now: the page follows both deliveries to delivered without a click.
    hook.mended = True
    await b.get(f"/console/webhooks/{created}")
    await b.wait("return document.getElementById('live-status').textContent === 'live'")
    await b.submit("#retry-now button")
    await b.wait("return document.getElementById('webhook-state').textContent"
                 " === 'delivered'", timeout=20)
    assert await b.text("#attempts li:last-child .a-status") == "HTTP 200"
    tries = await b.js("return Array.from(document.querySelectorAll('#attempts .a-status'))"
                       ".map(e => e.textContent)")
    assert tries[-1] == "HTTP 200" and set(tries[:-1]) == {"HTTP 500"}, tries
    await b.screenshot("console-webhook")
    await b.get("/console/webhooks?state=delivered")
    await b.wait("return document.querySelectorAll('#webhooks tbody tr').length === 2"
                 " || (location.reload(), false)", timeout=20)

    # On a phone: headers, bodies and tables stay inside the screen.
    await b._run(b.driver.set_window_size, 390, 844)
    try:
        for path in (f"/console/webhooks/{created}", "/console/webhooks"):
            await b.get(path)
            assert await b.js("return document.documentElement.scrollWidth"
                              " - window.innerWidth") <= 0, path
    finally:
        await b._run(b.driver.set_window_size, 1280, 900)

    # Redeliver: the same event again, one more attempt on its page.
    await b.get(f"/console/webhooks/{created}")
    count = len(tries)
    await b.submit("#redeliver button")
    await b.wait(f"return document.querySelectorAll('#attempts .a-status').length === "
                 f"{count + 1} && document.getElementById('webhook-state').textContent"
                 " === 'delivered'", timeout=20)
    assert hook.event_ids.count(created) == count + 1
    assert not await b.js("return document.getElementById('retry-now')")

    # A bad filter is answered beside its field; another developer sees none of it.
    await b.get("/console/webhooks?state=lost")
    assert await b.text("#error-state") == "State: 'lost' is not one of the states listed"
    await b.get("/console/webhooks/not-an-id")
    assert "there is no delivery 'not-an-id' among your webhooks" in await b.text("main")
    other: Dev = await make_developer()
    await b._run(b.driver.delete_all_cookies)
    await sign_in(b, other, "/console/webhooks")
    assert await b.text("#no-webhooks") == "No deliveries."
    await b.get(f"/console/webhooks/{created}")
    assert f"there is no delivery {created} among your webhooks" in await b.text("main")
    await post_form(b, f"/console/webhooks/{created}/redeliver")
    assert "there is no delivery" in await b.text("#flash.error")
