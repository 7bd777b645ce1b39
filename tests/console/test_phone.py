"""The console's phone (issue #28) in a real Chromium whose microphone is a speech file: a
developer starts a session, clicks "Call this session", keys the PIN on the page's keypad,
talks a take, keeps it, and the stored take has the fake microphone's speech in it. Then the
account behind the call: issued per call, never the password, refused by Asterisk once expired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver

from ivr.console.phone_service import LIVE_PER_DEVELOPER, PHONE, ConsolePhone, ws_url
from ivr.recorder.service import RecorderService
from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, chromium, new_list_with_recording, sign_in
from tests.console.test_pages import create_recorder
from tests.helpers.audio import SPEECH, loudness
from tests.helpers.phone import new_number
from tests.helpers.sipws import options_status
from tests.telephony_harness import Engine, wav_seconds

pytestmark = pytest.mark.asterisk

TALK_S = 4.0  # how long the test talks into the take before pressing #
STATE = "return document.getElementById('phone').dataset.state"


@pytest.fixture(scope="module")
def media_chrome() -> Iterator[webdriver.Chrome]:
    """A Chromium of its own: its microphone says tests/data/speech-fox.wav over and over,
    and the page may use it without asking."""
    with chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={SPEECH}") as driver:
        yield driver


@pytest.fixture
async def phone_browser(media_chrome: webdriver.Chrome, engine: Engine
                        ) -> AsyncIterator[Browser]:
    await asyncio.to_thread(media_chrome.delete_all_cookies)
    yield Browser(media_chrome, engine.url)
    await asyncio.to_thread(media_chrome.delete_all_cookies)
    # Leaving the page hangs up a call a failed test left (phone.js, on pagehide).
    await asyncio.to_thread(media_chrome.get, "about:blank")


async def press(b: Browser, keys: str) -> None:
    """The on-screen keypad, a key at a time, as a person taps it."""
    for key in keys:
        await b.click(f"#phone-keypad [data-key='{key}']")
        await asyncio.sleep(0.35)


async def test_a_take_recorded_from_the_browser(
        engine: Engine, phone_browser: Browser, make_developer: Any, pool: asyncpg.Pool,
        settings: Settings) -> None:
    b = phone_browser
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    await create_recorder(b, name="Browser phone", max_take_seconds="60",
                          silence_seconds="0", min_take_seconds="1")
    # The recorder's page has the phone too, for its numbers.
    assert await b.text("#phone-call") == "Call"
    lk, key = await new_list_with_recording(b, "Phone", "Greeting")
    await b.submit("#start-session button[type=submit]")
    pin = await b.text("#pin")
    session_key = b.path.rsplit("/", 1)[1]
    number = await b.js("return document.getElementById('phone-number').value")
    assert pin.isdigit(), pin
    await b.wait("return document.getElementById('live-status').textContent === 'live'")
    assert await b.js(STATE) == "idle"
    assert await b.js("return document.querySelector('#phone-keypad button').disabled")

    await b.click("#phone-call")
    await b.wait(f"{STATE} === 'talking'", timeout=20)
    await press(b, pin + "#")
    await b.wait("return document.getElementById('session-state').textContent === 'recording'",
                 timeout=20)
    started = asyncio.get_running_loop().time()
    assert float(await b.js("return document.getElementById('phone-level').dataset.peak")) > 0.05
    await b.screenshot("console-phone-call")
    await asyncio.sleep(TALK_S)
    await press(b, "#")
    talked = asyncio.get_running_loop().time() - started
    await asyncio.sleep(1.0)  # the review menu begins
    await press(b, "9")  # keep it, and done
    await b.wait(f"{STATE} === 'ended'", timeout=20)
    assert await b.text("#phone-state") != "ended: you hung up"  # the engine said goodbye
    await b.wait("return document.getElementById('live-status').textContent === 'session over'")
    assert await b.js("return document.querySelector('#phone-keypad button').disabled")
    # Keys are sent, never shown.
    assert pin not in await b.text("#phone")

    take = await pool.fetchrow(
        "SELECT t.id FROM recordings r JOIN recording_lists l ON l.id = r.list_id"
        " JOIN takes t ON t.id = r.accepted_take_id"
        " WHERE l.list_key = $1 AND r.recording_key = $2", lk, key)
    assert take is not None, "no accepted take"
    # The call came in as every caller's does: the call log has it, from the phone's account,
    # to the recorder's number, run by the recorder's flow.
    call = await pool.fetchrow(
        "SELECT c.caller_id, c.dialed, c.flow FROM calls c JOIN recording_sessions s"
        " ON s.channel_id = c.channel_id WHERE s.session_key = $1", session_key)
    assert call["caller_id"].startswith("webrtc") and call["flow"] == "recorder", dict(call)
    assert call["dialed"] == number, dict(call)
    cookie = await b._run(b.driver.get_cookie, "ivr_console")
    async with aiohttp.ClientSession(cookies={"ivr_console": cookie["value"]}) as http, \
            http.get(f"{engine.url}/console/takes/{take['id']}/audio.wav") as resp:
        assert resp.status == 200, await resp.text()
        wav = await resp.read()
    seconds = wav_seconds(wav)
    assert seconds == pytest.approx(talked, abs=1.5), (seconds, talked)
    # The fake microphone's speech, through Opus or G.711 and back: as loud as the file's own
    # speech within a few dB, far above the silence a broken media path records.
    source = loudness(SPEECH.read_bytes(), 0.3, 3.8)
    heard = loudness(wav, 0.2, seconds - 0.2)
    print(f"[phone] take {seconds:.2f} s of {talked:.2f} s talked; RMS {heard}, the file's "
          f"speech {source}")
    assert source / 4 < heard < source * 4, (heard, source)
    assert await pool.fetchval("SELECT count(*) FROM console_phone_accounts a JOIN developers d"
                               " ON d.id = a.developer_id WHERE d.username = $1",
                               dev.username) == 1


async def issue(b: Browser, csrf: str) -> Any:
    """The page script's request: [status, JSON answer]."""
    return await b.js(
        "return fetch('/console/phone/account', {method: 'POST', headers: arguments[0]})"
        ".then(r => r.json().then(j => [r.status, j]))", {"X-CSRF-Token": csrf})


async def test_accounts_are_per_call_short_and_never_the_password(
        engine: Engine, phone_browser: Browser, make_developer: Any, pool: asyncpg.Pool,
        settings: Settings) -> None:
    b = phone_browser
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    csrf = await b.js("return document.body.dataset.csrf")
    status, body = await issue(b, "not-the-token")
    assert status == 403 and body["error"] == "csrf_rejected", body
    assert await b.js("return fetch('/console/phone/account', {method: 'POST'})"
                      ".then(r => r.status)") == 403
    status, first = await issue(b, csrf)
    assert status == 200, first
    assert first["username"].startswith("webrtc-") and first["password"] != dev.password
    assert dev.password not in str(first) and first["ws_url"].endswith("/ws")
    assert await options_status(first["ws_url"], first["username"], first["password"]) == 200
    for _ in range(LIVE_PER_DEVELOPER - 1):
        status, _body = await issue(b, csrf)
        assert status == 200
    status, body = await issue(b, csrf)
    assert status == 409 and body["error"] == "conflict", body
    assert f"at most {LIVE_PER_DEVELOPER}" in body["message"]
    # Nothing half-written: the refused one has no row.
    assert await pool.fetchval(
        "SELECT count(*) FROM console_phone_accounts a JOIN developers d ON d.id ="
        " a.developer_id WHERE d.username = $1", dev.username) == LIVE_PER_DEVELOPER

    # An expired account is refused by Asterisk itself once the sweep has removed it.
    other: Dev = await make_developer()
    service = RecorderService(pool, settings.data_dir, open_signup=False)
    developer = await service.authenticate(other.username, other.password)
    short = ConsolePhone(engine.pool, engine.tel.ari, settings, lifetime=1)
    account = await short.issue(developer)
    assert await options_status(account.ws_url, account.name, account.password) == 200
    await asyncio.sleep(1.2)
    await short.sweep(50)  # (the engine's own sweeper, every 2 s, may have been first)
    assert await pool.fetchval("SELECT removed_at IS NOT NULL FROM console_phone_accounts"
                               " WHERE name = $1", account.name)
    assert await options_status(account.ws_url, account.name, account.password) == 401


async def test_no_phone_without_telephony(api: TestClient, browser: Browser,
                                          make_developer: Any) -> None:
    assert PHONE not in api.app
    dev: Dev = await make_developer()
    await sign_in(browser, dev)
    status, body = await issue(browser, await browser.js("return document.body.dataset.csrf"))
    assert status == 503 and "telephony" in body["message"], body


def test_the_websocket_url_follows_the_settings(base_settings: Settings) -> None:
    env = {"IVR_ARI_PASSWORD": "a-strong-password-for-ari-0123", "IVR_SOFTPHONE_PASSWORD":
           "softphone-password", "IVR_DATABASE_URL": base_settings.database_url}
    # The Asterisk beside the console: the console's host, ARI's plain port.
    assert ws_url(Settings.from_mapping({**env, "IVR_PUBLIC_URL": "http://10.1.2.3:8080",
                                         "IVR_ARI_BIND": "0.0.0.0:8088"})) \
        == "ws://10.1.2.3:8088/ws"
    assert ws_url(Settings.from_mapping(env)) == "ws://127.0.0.1:8088/ws"
    # An Asterisk on another host: its host; over https, wss:// on the TLS listener's port.
    assert ws_url(Settings.from_mapping({
        **env, "IVR_ARI_URL": "https://media.example.net:8089",
        "IVR_PUBLIC_URL": "https://console.example.net", "IVR_ARI_TLS_BIND": "0.0.0.0:8089"})) \
        == "wss://media.example.net:8089/ws"
