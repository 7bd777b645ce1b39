"""The console in a real browser, without calls: signing in, recorders with every option,
lists and recordings (search, add, drag-and-drop reorder, delete), prompts, CSRF, and one
developer never reaching another's recorders."""

from __future__ import annotations

import io
import uuid
import wave
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from selenium.webdriver.common.action_chains import ActionChains

from ivr.delivery import outbox
from ivr.recorder.service import RecorderService
from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, sign_in
from tests.helpers.phone import new_number


def tone_wav(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * int(8000 * seconds))
    return out.getvalue()


async def service_of(pool: asyncpg.Pool, settings: Settings) -> RecorderService:
    return RecorderService(pool, settings.data_dir, open_signup=False)


async def create_recorder(b: Browser, **fields: str) -> str:
    await b.get("/console/recorders")
    await b.js("document.getElementById('new-recorder').open = true")
    for name, value in fields.items():
        kind = await b.js("return document.querySelector('#create-recorder [name=' + arguments[0]"
                          " + ']').tagName", name)
        if kind == "SELECT":
            await b.select(f"#create-recorder [name={name}]", value)
        else:
            await b.fill(f"#create-recorder [name={name}]", value)
    await b.submit("#create-recorder button[type=submit]")
    await b.wait("return document.getElementById('recorder-key')")
    return await b.text("#recorder-key")


async def test_sign_in_is_required_and_wrong_password_is_refused(
        browser: Browser, make_developer: Any) -> None:
    dev: Dev = await make_developer()
    await browser.get("/console/operations")
    assert browser.path.startswith("/console/signin?next=")
    await browser.fill("#signin input[name=username]", dev.username)
    await browser.fill("#signin input[name=password]", "not-the-password")
    await browser.submit("#signin button[type=submit]")
    await browser.wait("return document.getElementById('flash')")
    assert "authentication failed" in await browser.text("#flash")
    assert browser.path.startswith("/console/signin")
    await browser.screenshot("signin")
    await browser.fill("#signin input[name=username]", dev.username)
    await browser.fill("#signin input[name=password]", dev.password)
    await browser.submit("#signin button[type=submit]")
    await browser.wait("return location.pathname === '/console/operations'")
    cookie = browser.driver.get_cookie("ivr_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Signing out ends the sign-in on the server, not only in this browser.
    await browser.submit("form.signout button")
    await browser.wait("return location.pathname === '/console/signin'")
    browser.driver.add_cookie({**cookie, "expiry": cookie.get("expiry", 0)})
    await browser.get("/console/recorders")
    assert browser.path.startswith("/console/signin")


async def test_recorder_options_lists_recordings_and_reorder(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(browser, dev)
    rk = await create_recorder(browser, name="Site photos", audio_format="both",
                               max_take_seconds="120", silence_seconds="4",
                               min_take_seconds="2", pin_length="5")
    assert "created" in await browser.text("#flash")
    assert await browser.js("return document.querySelectorAll('#numbers li').length") == 1
    service = await service_of(pool, settings)
    developer = await service.authenticate(dev.username, dev.password)
    v = await service.get_recorder(developer, rk)
    assert (v.name, v.audio_format, v.max_take_seconds, v.silence_seconds, v.min_take_seconds,
            v.pin_length) == ("Site photos", "both", 120, 4, 2, 5)

    # Edit: a cross-field rule the API enforces comes back as the page's message, nothing saved.
    await browser.select("#edit-recorder [name=storage]", "upload")
    await browser.submit("#edit-recorder button[type=submit]")
    await browser.wait("return document.querySelector('#flash.error')")
    assert "upload_url" in await browser.text("#flash")
    assert (await service.get_recorder(developer, rk)).storage == "local"
    await browser.select("#edit-recorder [name=touchtone_prompt]", "true")
    await browser.fill("#edit-recorder [name=touchtone_length]", "4")
    await browser.fill("#edit-recorder [name=retention_days]", "30")
    await browser.submit("#edit-recorder button[type=submit]")
    await browser.wait("return document.querySelector('#flash.ok')")
    v = await service.get_recorder(developer, rk)
    assert (v.touchtone_prompt, v.touchtone_length, v.retention_days) == (True, 4, 30)
    # An emptied clearable option clears it.
    await browser.fill("#edit-recorder [name=retention_days]", "")
    await browser.submit("#edit-recorder button[type=submit]")
    await browser.wait("return document.querySelector('#flash.ok')")
    assert (await service.get_recorder(developer, rk)).retention_days is None

    # Prompts: upload one, it plays from the recorder's upload; reset brings the default back.
    path = settings.data_dir / "console-welcome.wav"
    path.write_bytes(tone_wav())
    await browser.js("document.querySelector('#prompt-welcome input[type=file]').scrollIntoView()")
    await browser.fill("#prompt-welcome input[type=file]", str(path))
    await browser.submit("#prompt-welcome form button")
    await browser.wait("return document.querySelector('#flash.ok')")
    src = await browser.js("return document.querySelector('#prompt-welcome audio').src")
    assert "/prompts/" in src
    await browser.js("const a = document.querySelector('#prompt-welcome audio');"
                     "a.preload = 'auto'; a.load();")
    state = await browser.wait("const a = document.querySelector('#prompt-welcome audio');"
                               "return a.error ? 'error ' + a.error.code : a.readyState >= 1"
                               " && 'loaded ' + a.duration")
    assert state == "loaded 0.5", state
    await browser.submit("#prompt-welcome form[action$='/reset'] button")
    await browser.wait("return document.querySelector('#flash.ok')")
    assert "/media/prompts/en/welcome.wav" in await browser.js(
        "return document.querySelector('#prompt-welcome audio').src")
    assert (await service.get_recorder(developer, rk)).prompts == ()

    # A list, three recordings added, found by a wildcard search, reordered by drag and drop.
    await browser.js("document.querySelector('#create-list').closest('details').open = true")
    await browser.fill("#create-list [name=name]", "Inspection 12")
    await browser.fill("#create-list [name=meta_data_1]", "north-site")
    await browser.submit("#create-list button[type=submit]")
    await browser.wait("return document.getElementById('list-key')")
    lk = await browser.text("#list-key")
    for count, name in enumerate(("Front door", "Kitchen", "Garage"), 1):
        await browser.js("document.querySelector('#add-recording').closest('details').open = true")
        await browser.fill("#add-recording [name=name]", name)
        await browser.fill("#add-recording [name=meta_data_1]", name.lower().replace(" ", "-"))
        await browser.submit("#add-recording button[type=submit]")
        await browser.wait("return document.querySelectorAll('#recordings tbody tr').length"
                           " === arguments[0]", count)
    names = "return Array.from(document.querySelectorAll('#recordings tbody tr'))" \
            ".map(r => r.cells[3].textContent.trim())"
    assert await browser.js(names) == ["Front door", "Kitchen", "Garage"]
    await browser.get(f"/console/recorders/{rk}/lists/{lk}?meta_data_1=k%25")
    assert await browser.js(names) == ["Kitchen"]
    await browser.get(f"/console/recorders/{rk}?meta_data_1=north%25")
    assert await browser.js("return document.querySelectorAll('#lists tbody tr').length") == 1
    await browser.get(f"/console/recorders/{rk}?meta_data_1=south%25")
    assert await browser.js("return document.querySelectorAll('#lists tbody tr').length") == 0
    await browser.get(f"/console/recorders/{rk}/lists/{lk}")
    await browser.screenshot("recorder-list")

    garage = await browser.find("#recordings tbody tr:nth-child(3) .handle")
    front = await browser.find("#recordings tbody tr:nth-child(1)")
    chain = (ActionChains(browser.driver).click_and_hold(garage)
             .move_to_element_with_offset(front, 0, -8).pause(0.2).release())
    await browser._run(chain.perform)
    await browser.wait("return document.getElementById('recordings').dataset.saved")
    assert await browser.js(names) == ["Garage", "Front door", "Kitchen"]
    found = (await service.search_recordings(developer, rk, lk, {}, None)).items
    assert [(r.sequence, r.name) for r in sorted(found, key=lambda r: r.sequence)] == [
        (1, "Garage"), (2, "Front door"), (3, "Kitchen")]

    # Delete one (the page asks first).
    await browser.js("window.confirm = () => true")
    await browser.submit("#recordings tbody tr:nth-child(2) form button")
    await browser.wait("return document.querySelector('#flash.ok')")
    assert await browser.js(names) == ["Garage", "Kitchen"]
    await browser.get(f"/console/recorders/{rk}")
    await browser.screenshot("recorder")
    await browser.get("/console/recorders")
    await browser.screenshot("recorders")


async def test_csrf_token_is_required(browser: Browser, make_developer: Any, api: TestClient,
                                      pool: asyncpg.Pool, settings: Settings) -> None:
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(browser, dev)
    rk = await create_recorder(browser, name="Before")
    # A form whose token was tampered with is refused and changes nothing.
    await browser.js("document.querySelector('#edit-recorder [name=csrf_token]').value = 'x'")
    await browser.fill("#edit-recorder [name=name]", "After")
    await browser.submit("#edit-recorder button[type=submit]")
    await browser.wait("return document.title.startsWith('Request refused')")
    assert "did not come from the console" in await browser.text("main")
    service = await service_of(pool, settings)
    developer = await service.authenticate(dev.username, dev.password)
    assert (await service.get_recorder(developer, rk)).name == "Before"
    # The same POST from outside the page: the session cookie alone is not enough.
    cookie = browser.driver.get_cookie("ivr_console")
    assert cookie is not None
    for headers, data in (({}, {"name": "After"}),
                          ({}, {"name": "After", "csrf_token": "guess"}),
                          ({"X-CSRF-Token": "guess"}, {"name": "After"})):
        resp = await api.post(f"/console/recorders/{rk}", data=data,
                              headers=headers, cookies={"ivr_console": cookie["value"]})
        assert resp.status == 403, await resp.text()
    resp = await api.post(f"/console/recorders/{rk}/delete",
                          cookies={"ivr_console": cookie["value"]})
    assert resp.status == 403
    # The sign-in form is protected too (double-submit cookie).
    resp = await api.post("/console/signin", data={"username": dev.username,
                                                   "password": dev.password})
    assert resp.status == 403
    assert "ivr_console" not in resp.cookies
    assert (await service.get_recorder(developer, rk)).name == "Before"


async def test_developers_cannot_reach_each_others_recorders(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    await new_number(pool, settings)
    alice, bob = await make_developer(), await make_developer()
    await sign_in(browser, alice)
    rk = await create_recorder(browser, name="Alice's")
    await browser.js("document.querySelector('#create-list').closest('details').open = true")
    await browser.submit("#create-list button[type=submit]")
    await browser.wait("return document.getElementById('list-key')")
    lk = await browser.text("#list-key")
    await browser.submit("form.signout button")
    await browser.wait("return location.pathname === '/console/signin'")

    await sign_in(browser, bob)
    await browser.get("/console/recorders")
    assert rk not in await browser.text("main")
    for path in (f"/console/recorders/{rk}", f"/console/recorders/{rk}/lists/{lk}"):
        await browser.get(path)
        assert await browser.text("h1") == "Not available"
        assert "belongs to another developer" in await browser.text("main")
    # Bob's own (valid) CSRF token does not let him change Alice's recorder either.
    await browser.js(
        "const f = document.createElement('form'); f.method = 'post';"
        "f.action = arguments[0]; const i = document.createElement('input');"
        "i.name = 'csrf_token'; i.value = document.body.dataset.csrf; f.appendChild(i);"
        "document.body.appendChild(f); f.submit();", f"/console/recorders/{rk}/delete")
    await browser.wait("return document.querySelector('#flash.error')")
    assert "belongs to another developer" in await browser.text("#flash")
    service = await service_of(pool, settings)
    developer = await service.authenticate(alice.username, alice.password)
    assert (await service.get_recorder(developer, rk)).name == "Alice's"


async def test_failed_delivery_is_shown_and_retried(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(browser, dev)
    rk = await create_recorder(browser, name="Callbacks")
    service = await service_of(pool, settings)
    developer = await service.authenticate(dev.username, dev.password)
    recorder = await service.get_recorder(developer, rk)
    event_id = uuid.uuid4()
    # A callback the worker gave up on (as it does once its retry window has passed).
    async with pool.acquire() as conn:
        await outbox.enqueue_callback(
            conn, event_id=event_id, event_type="session.ended", stream=f"recorder:{recorder.id}",
            owner=f"recorder:{recorder.id}", url="http://127.0.0.1:9/hook", body=b"{}",
            content_type="application/json", secret="s" * 32, retry_for=0)
        await conn.execute(
            "UPDATE outbox SET state = 'failed', settled_at = now(), attempts = 3,"
            " last_error = 'connection refused' WHERE event_id = $1", event_id)
    await browser.get("/console/operations")
    assert "connection refused" in await browser.text("#deliveries")
    await browser.submit(f"#deliveries form[action$='/{event_id}/retry'] button")
    await browser.wait("return document.querySelector('#flash.ok')")
    async with pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM outbox WHERE event_id = $1", event_id)
    # Pending again, with a fresh retry window (a failed attempt meanwhile keeps it pending).
    assert state == "pending"
    await browser.get("/console/operations")
    assert "pending" in await browser.text("#deliveries")
    assert not await browser.js("return document.querySelector('#deliveries form')")


async def test_session_started_and_expired_from_the_console(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(browser, dev)
    rk = await create_recorder(browser, pin_length="8")
    await browser.js("document.querySelector('#create-list').closest('details').open = true")
    await browser.fill("#create-list [name=initial_recordings]", "2")
    await browser.submit("#create-list button[type=submit]")
    await browser.submit("#start-session button[type=submit]")
    pin = await browser.text("#pin")
    assert pin.isdigit() and len(pin) == 8
    await browser.wait("return document.getElementById('live-status').textContent === 'live'")
    assert await browser.js("return document.querySelectorAll('#session-recordings tbody tr')"
                            ".length") == 2
    session_path = browser.path
    await browser.submit("#expire-session button")
    assert browser.path == session_path
    assert await browser.text("#session-state") == "expired"
    assert not await browser.js("return document.getElementById('pin')")
    await browser.wait("return document.getElementById('live-status').textContent"
                       " === 'session over'")
    service = await service_of(pool, settings)
    developer = await service.authenticate(dev.username, dev.password)
    view = await service.session_status(developer, session_path.rsplit("/", 1)[1])
    assert view.session.state == "expired" and view.session.recorder_key == rk
