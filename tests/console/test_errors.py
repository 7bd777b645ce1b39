"""The error list (/console/errors) in a real Chromium: a call whose flow failed and a callback
its receiver keeps answering 500, each with its stable code linked to the code's page (readable
signed out too); the kind filter and a bad one; docs/errors.md names every code."""

from __future__ import annotations

import re
import secrets
from typing import Any

import asyncpg

from ivr.console.error_codes import CODES
from ivr.settings import REPO_ROOT, Settings
from tests.console.conftest import Browser, Dev, sign_in
from tests.console.test_pages import create_recorder
from tests.console.test_webhooks import Receiver, receiver  # noqa: F401 (a fixture)
from tests.helpers.phone import new_number

CODES_SHOWN = ("return Array.from(document.querySelectorAll('#errors tbody tr'))"
               ".map(r => r.querySelector('.e-code').textContent)")


def test_docs_name_every_code() -> None:
    text = (REPO_ROOT / "docs" / "errors.md").read_text()
    assert set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M)) == set(CODES)


async def test_failures_listed_with_their_codes_and_pages(
        browser: Browser, make_developer: Any, pool: asyncpg.Pool, settings: Settings,
        receiver: tuple[Receiver, str]) -> None:  # noqa: F811
    b, (_, url) = browser, receiver
    await new_number(pool, settings)
    dev: Dev = await make_developer()
    await sign_in(b, dev)
    await create_recorder(b, callback_url=url, callback_format="json")
    await b.js("document.querySelector('#create-list').closest('details').open = true")
    await b.fill("#create-list [name=initial_recordings]", "1")
    await b.submit("#create-list button[type=submit]")
    await b.submit("#start-session button[type=submit]")
    session_key = b.path.rsplit("/", 1)[1]
    # A call into that session whose flow failed, as the engine records one.
    channel = f"err-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        call_id = await conn.fetchval(
            "INSERT INTO calls (channel_id, direction, caller_id, dialed, flow, ended_at,"
            " outcome, failure_code, failure_reason) VALUES ($1, 'inbound', '5557773001',"
            " '5125550100', 'recorder', now(), 'error', 'database_error',"
            " 'ConnectionRefusedError: database gone') RETURNING id", channel)
        await conn.execute("UPDATE recording_sessions SET channel_id = $1, called_at = now()"
                           " WHERE session_key = $2", channel, session_key)

    await b.get("/console/errors")
    shown = await b.wait(f"const c = {CODES_SHOWN.removeprefix('return ')};"
                         " if (!c.includes('delivery_server_error')) location.reload();"
                         " else return c;", timeout=20)
    assert sorted(shown) == ["database_error", "delivery_server_error"], shown
    rows = await b.js("return document.getElementById('errors').innerText")
    assert "ConnectionRefusedError: database gone" in rows and "HTTP 500" in rows
    assert "retrying" in rows and "session.created" in rows
    assert await b.js("return document.querySelector(\"#errors a[href^='/console/calls/']\")"
                      ".pathname") == f"/console/calls/{call_id}"
    await b.screenshot("console-errors")
    await b.submit("#errors a.e-code[href$='/delivery_server_error']")
    assert await b.text("h1") == "delivery_server_error: Your receiver answered 5xx"
    assert "Retry now" in await b.text("#code-fix")

    # The delivery's page names its code too; the call's page links its code's page.
    await b.get("/console/errors?kind=delivery")
    assert await b.js(CODES_SHOWN) == ["delivery_server_error"]
    await b.submit("#errors td:first-child a")
    assert await b.text("#webhook-code") == "delivery_server_error"
    await b.get(f"/console/calls/{call_id}")
    assert await b.js("return document.getElementById('failure-help').pathname") \
        == "/console/errors/codes/database_error"
    await b.get("/console/errors?kind=flow")
    assert await b.js(CODES_SHOWN) == ["database_error"]
    await b.get("/console/errors?kind=trunk")
    assert await b.text("#error-kind") == "Kind: 'trunk' is not flow or delivery"

    # Code pages are docs: readable signed out; an unknown code says so.
    await b._run(b.driver.delete_all_cookies)
    await b.get("/console/errors/codes/database_error")
    assert b.path == "/console/errors/codes/database_error"
    assert "database" in await b.text("#code-meaning")
    await b.get("/console/errors/codes")
    assert await b.js("return document.querySelectorAll('#codes tbody tr').length") \
        == len(CODES)
    await b.get("/console/errors/codes/no_such_code")
    assert "there is no error code 'no_such_code'" in await b.text("main")
