"""The account page and sign-up in a real Chromium: API tokens made (shown once), named,
listed with their last use, revoked (the API refuses them at once); a new password revokes
every token and ends the other browsers' sign-ins; sign-up linked from sign-in only while it
is open, every wrong field answered beside it with what was typed kept."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from selenium import webdriver

from ivr.app import create_app
from ivr.console import store
from ivr.core import keys
from ivr.settings import Settings
from tests.console.conftest import Browser, Dev, sign_in

TOKENS = ("return Array.from(document.querySelectorAll('#token-list tbody tr'))"
          ".map(r => r.querySelector('.t-name').textContent)")


async def status_with(api: TestClient, token: str) -> int:
    resp = await api.get("/v1/developer", headers={"Authorization": f"Bearer {token}"})
    return resp.status


async def post_token(b: Browser, name: str, days: str) -> None:
    await b.fill("#create-token [name=token_name]", name)
    await b.fill("#create-token [name=lifetime_days]", days)
    await b.submit("#create-token button[type=submit]")


async def test_tokens_made_listed_revoked_and_a_new_password_revokes_the_rest(
        browser: Browser, api: TestClient, make_developer: Any, pool: asyncpg.Pool) -> None:
    b = browser
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    await b.submit(".signout a.who")
    assert b.path == "/console/account"
    assert await b.text("#no-tokens") == "No API tokens."
    # A wrong field is answered beside it, and what was typed stays.
    for name, days, wrong, message in (
            ("", "30", "token_name", "Name: say what will use the token (e.g. the CI job)"),
            ("CI job", "400", "lifetime_days", "Expires after: a whole number of days, "
                                               "1 to 365")):
        await post_token(b, name, days)
        assert await b.text(f"#error-{wrong}") == message
        assert await b.js("const f = document.getElementById('create-token');"
                          "return [f.token_name.value, f.lifetime_days.value]") == [name, days]
    await post_token(b, "CI job", "30")
    ci = await b.text("#new-token")
    assert len(ci) > 30 and await status_with(api, ci) == 200
    await post_token(b, "Laptop", "90")
    laptop = await b.text("#new-token")
    assert await b.js(TOKENS) == ["Laptop", "CI job"]
    row = "#token-list tbody tr:nth-child(2)"
    assert (await b.text(f"{row} td:nth-child(4)")) != "never"  # CI job was used just now
    assert ci not in await b.js("return document.body.innerText")  # shown once only
    await b.screenshot("console-account")

    # Revoked: gone from the list, refused by the API at once.
    await b.js("window.confirm = () => true")
    await b.submit(f"{row} form button")
    assert "revoked" in await b.text("#flash.ok")
    assert await b.js(TOKENS) == ["Laptop"]
    assert await status_with(api, ci) == 401
    assert await status_with(api, laptop) == 200

    # A new password: wrong fields first, then every token revoked, other sign-ins ended.
    async with pool.acquire() as conn:
        developer_id = await conn.fetchval("SELECT id FROM developers WHERE username = $1",
                                           dev.username)
        await store.insert_sign_in(conn, keys.token_digest(keys.new_token()), developer_id,
                                   secrets.token_urlsafe(32), 3600)
    for current, new, repeat, wrong in (
            ("not-my-password", "short", "", {
                "current_password": "Current password: not the password of this account",
                "new_password": "New password: at least 8 characters"}),
            (dev.password, "a-new-password-2", "a-new-password-3", {
                "repeat_password": "Repeat the new password: it does not match"}),
            (dev.password, "a-new-password-2", "a-new-password-2", {})):
        await b.fill("#change-password [name=current_password]", current)
        await b.fill("#change-password [name=new_password]", new)
        await b.fill("#change-password [name=repeat_password]", repeat)
        await b.submit("#change-password button[type=submit]")
        for name, message in wrong.items():
            assert await b.text(f"#error-{name}") == message
    assert await b.text("#flash.ok") == ("Password changed. 1 API token revoked and 1 other "
                                         "console sign-in ended.")
    assert await status_with(api, laptop) == 401
    assert await b.text("#no-tokens") == "No API tokens."  # this browser stays signed in
    assert await pool.fetchval("SELECT count(*) FROM console_sessions WHERE developer_id = $1",
                               developer_id) == 1


@contextlib.asynccontextmanager
async def _serve(settings: Settings, chrome: webdriver.Chrome,
                 open_signup: bool) -> AsyncIterator[Browser]:
    client = TestClient(TestServer(
        create_app(dataclasses.replace(settings, open_signup=open_signup),
                   with_telephony=False), host="127.0.0.1"))
    await client.start_server()
    await asyncio.to_thread(chrome.delete_all_cookies)
    try:
        yield Browser(chrome, str(client.make_url("")))
    finally:
        await asyncio.to_thread(chrome.delete_all_cookies)
        await client.close()


async def test_sign_up_is_linked_from_sign_in_while_it_is_open(
        chrome: webdriver.Chrome, settings: Settings, make_developer: Callable[..., Any]) -> None:
    taken: Dev = await make_developer()
    async with _serve(settings, chrome, open_signup=False) as b:
        await b.get("/console/signin")
        assert not await b.js("return document.getElementById('signup-link')")
        await b.get("/console/signup")
        assert await b.text("h1") == "Sign-up is closed"
    async with _serve(settings, chrome, open_signup=True) as b:
        await b.get("/console/signin")
        await b.submit("#signup-link")
        assert b.path == "/console/signup"
        await b.fill("#signup [name=username]", "x")
        await b.fill("#signup [name=name]", "Ada")
        await b.fill("#signup [name=password]", "short")
        await b.submit("#signup button[type=submit]")
        assert await b.text("#error-username") == (
            "Username: 3 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter "
            "or digit")
        assert await b.text("#error-password") == "Password: at least 8 characters"
        assert await b.js("return document.querySelector('#signup [name=name]').value") == "Ada"
        await b.screenshot("console-signup-errors")
        await b.fill("#signup [name=username]", taken.username)
        await b.fill("#signup [name=password]", "a-good-password")
        await b.fill("#signup [name=repeat_password]", "a-good-password")
        await b.submit("#signup button[type=submit]")
        assert await b.text("#error-username") == (f"Username: {taken.username!r} is taken; "
                                                   "choose another")
        username = "new" + secrets.token_hex(4)
        await b.fill("#signup [name=username]", username)
        await b.fill("#signup [name=password]", "a-good-password")
        await b.fill("#signup [name=repeat_password]", "a-good-password")
        await b.submit("#signup button[type=submit]")
        assert b.path == "/console/recorders"
        assert await b.text("#flash") == f"Welcome, {username}: your account is ready."
        assert await b.text(".signout .who") == username
