"""The Numbers page (/console/numbers, issue #22 item 6, issue #28's phone on it) in a real
Chromium: a developer's numbers in E.164 with what the development softphone dials, only their
own, and a real call placed from the page's phone through Asterisk into the recorder's number;
on a 390×844 screen too, and without telephony (no phone, the numbers still there)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, sign_in
from tests.console.test_calls import no_page_scroll
from tests.console.test_pages import create_recorder
from tests.console.test_phone import STATE, media_chrome, phone_browser  # noqa: F401
from tests.helpers.phone import new_number
from tests.telephony_harness import Engine

NUMBERS = "return [...document.querySelectorAll('#numbers tbody tr')].map(r => r.dataset.number)"


async def _numbers_of(pool: asyncpg.Pool, recorder_key: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT p.number FROM voice_recorders v JOIN recorder_numbers rn ON rn.recorder_id = v.id"
        " JOIN phone_numbers p ON p.id = rn.phone_number_id WHERE v.recorder_key = $1",
        recorder_key)
    return sorted(r["number"] for r in rows)


@pytest.mark.asterisk
async def test_numbers_listed_and_called_from_the_page(
        engine: Engine, phone_browser: Browser, make_developer: Any,  # noqa: F811
        pool: asyncpg.Pool, settings: Settings) -> None:
    b = phone_browser
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev, "/console/numbers")
    assert b.path == "/console/numbers"
    assert "None of your recorders has a number yet" in await b.text("#no-numbers")
    assert await b.js("return document.getElementById('phone-call')") is None

    # Another developer's recorder: its number is not on this developer's page.
    other: Dev = await make_developer()
    key = await create_recorder(b, name="Numbered")
    mine = await _numbers_of(pool, key)
    assert mine and all(n.startswith("+") for n in mine), mine  # E.164
    await b.get("/console/numbers")
    assert await b.js(NUMBERS) == mine
    row = f"#numbers tr[data-number='{mine[0]}']"
    assert await b.text(f"{row} .dial-uri") == \
        f"sip:{mine[0]}@127.0.0.1:{settings.network.sip_port}"
    assert "shared: the caller keys a session's PIN" in await b.text(row)
    assert await b.js(f"return document.querySelector(\"{row} a\").getAttribute('href')") \
        == f"/console/recorders/{key}"
    assert await b.text("#softphone-account") == \
        f"sip:{settings.softphone_user}@127.0.0.1:{settings.network.sip_port}"
    await b.screenshot("console-numbers")

    # The page's phone calls the number for real: Asterisk answers, the recorder's flow runs.
    await b.click("#phone-call")
    await b.wait(f"{STATE} === 'talking'", timeout=20)
    call = await pool.fetchrow("SELECT caller_id, dialed, flow FROM calls WHERE dialed = $1"
                               " ORDER BY id DESC LIMIT 1", mine[0])
    assert call is not None and call["flow"] == "recorder", call
    assert call["caller_id"].startswith("webrtc"), dict(call)
    await b.click("#phone-hangup")
    await b.wait(f"{STATE} === 'ended'", timeout=20)

    # The other developer sees none of these numbers.
    await b._run(b.driver.delete_all_cookies)
    await sign_in(b, other, "/console/numbers")
    assert await b.js(NUMBERS) == []


async def test_numbers_on_a_phone_screen_and_without_telephony(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings) -> None:
    b = browser
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    key = await create_recorder(b, name="Phone screen")
    await b.get("/console/numbers")
    assert await b.js(NUMBERS) == await _numbers_of(pool, key)
    # The web app without telephony: the numbers, no phone.
    assert "needs the engine's telephony" in await b.text("#phone-unavailable")
    await b._run(b.driver.set_window_size, 390, 844)
    try:
        await b.get("/console/numbers")
        await no_page_scroll(b)
        assert await b.js("return document.querySelector('.top nav a[href=\"/console/numbers\"]')"
                          ".getBoundingClientRect().right") <= 390
    finally:
        await b._run(b.driver.set_window_size, 1280, 900)
