"""Toll-fraud guards on the outbound paths (issue #20 item 3): by default an account calls only
the operator's country, never premium-rate numbers, at most so many calls at once and a day;
every refusal is an API error in the API's own format and an alert on the console."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from typing import Any

import aiohttp

from ivr.callcontrol.service import CallControl
from ivr.dialer.accounts import Accounts
from ivr.settings import Settings
from ivr.telephony import toll
from tests.helpers.edge import client_from, edge_app, own_address

UK = "+442079460018"  # a valid London number
PREMIUM = "19005551234"  # US 900: premium rate
US = "15125550123"


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


async def new_app(pool: Any) -> Any:
    number = "1512" + "".join(secrets.choice("0123456789") for _ in range(7))
    made = await CallControl(pool).create_application(webhook_url="http://11.254.77.2/hook",
                                                      numbers=[number])
    return made, number


async def test_call_control_destinations_and_premium(settings: Settings, pool: Any) -> None:
    app, number = await new_app(pool)
    async with edge_app(settings) as server, client_from(server) as http:
        async def call(to: str, **extra: Any) -> tuple[int, dict[str, Any]]:
            async with http.post("/voice/v1/call", headers=basic(app.app_id, app.app_key),
                                 json={"from": number, "to": to, **extra}) as resp:
                return resp.status, await resp.json()

        status, body = await call(UK)
        # Call control's own error shape (was dialled).
        assert status == 403 and body["result"] == 403, body
        assert "is in GB; this account may call US" in body["msg"], body
        status, body = await call(PREMIUM)
        assert status == 403 and "premium-rate" in body["msg"], body
        # A second leg bridged on answer is a call out too.
        status, body = await call(US, action_on_connect={"bridge": {"from": number, "to": UK}})
        assert status == 403 and "is in GB" in body["msg"], body
        # Allowed: past the guard (no telephony worker here: 503, after the guard).
        status, body = await call(US)
        assert status == 503, body
    async with pool.acquire() as conn:
        codes = [a["code"] for a in await toll.alerts(conn, "app", app.app_id)]
    assert codes == ["destination_not_allowed", "premium_rate", "destination_not_allowed"]


async def test_call_control_concurrent_and_daily_caps(settings: Settings, pool: Any) -> None:
    app, number = await new_app(pool)
    async with pool.acquire() as conn:
        await toll.set_limits(conn, "app", app.app_id, per_day=2, concurrent=1)
    async with edge_app(settings) as server, client_from(server) as http:
        async def call() -> tuple[int, dict[str, Any]]:
            async with http.post("/voice/v1/call", headers=basic(app.app_id, app.app_key),
                                 json={"from": number, "to": US}) as resp:
                return resp.status, await resp.json()

        assert (await call())[0] == 503 and (await call())[0] == 503  # two admitted
        status, body = await call()
        assert status == 403 and "2 a day" in body["msg"], body
        await pool.execute("UPDATE toll_limits SET per_day = 100 WHERE account = $1",
                           app.app_id)
        app_pk = await pool.fetchval("SELECT id FROM cc_applications WHERE app_id = $1",
                                     app.app_id)
        await pool.execute(  # a call of the application still in progress
            "INSERT INTO cc_calls (voice_id, application_id, direction, from_number, to_number,"
            " channel_id, state) VALUES ($1, $2, 'outbound', $3, $4, $5, 'connected')",
            uuid.uuid4(), app_pk, number, US, f"test-{uuid.uuid4().hex}")
        status, body = await call()
        assert status == 403 and "calls in progress" in body["msg"], body


async def test_broadcast_job_refused_and_shown_on_the_console(settings: Settings,
                                                              pool: Any) -> None:
    made = await Accounts(pool).create(name="toll")
    job = {"client_job_id": "1234567", "destinations": [{"number": "35699000001"}],
           "voice_content": {"tts_text": "Hello, this is a test", "voice": "MAN",
                             "language": "en-GB"}}
    async with edge_app(settings) as server:
        async with client_from(server) as http:
            async with http.post("/voice-broadcast/v1/jobs", json=job,
                                 headers=basic(made.account_id, made.secret)) as resp:
                body = await resp.json()
            assert resp.status == 403, body  # Malta, outside the default US
            assert body["result_info"]["status_code"] == -101, body
            assert "MT" in body["result_info"]["description"], body
        jar = aiohttp.CookieJar(unsafe=True)
        base = str(server.make_url("/")).rstrip("/")
        connector = aiohttp.TCPConnector(local_addr=(own_address(), 0))
        async with aiohttp.ClientSession(base, cookie_jar=jar, connector=connector) as http:
            async with http.get("/console/dialer/signin") as resp:
                token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert token is not None
            async with http.post("/console/dialer/signin", data={
                    "csrf_token": token.group(1), "account_id": made.account_id,
                    "secret": made.secret}) as resp:
                page = await resp.text()
            assert 'id="toll-alerts"' in page and "35699000001" in page, page[:2000]
