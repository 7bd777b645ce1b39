"""Brute force against every password check is slowed down and locked out (issue #20), with
the state in Postgres: an attacker's guesses are refused after a few failures, without the
password being looked at; the victim's own sign-in from another address waits at most the
account's short lock; a second engine sees the same locks."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from typing import Any

import aiohttp

from ivr.dialer.accounts import Accounts
from ivr.settings import Settings
from tests.helpers.edge import client_from, edge_app, own_address
from tests.helpers.phone import new_number
from tests.helpers.vr import parse

LOCK_MAX = 2.0  # the account's longest lock here (production: IVR_AUTH_LOCK_MAX, 60 s)


async def vr(http: aiohttp.ClientSession, **params: Any) -> dict[str, Any]:
    async with http.post("/vr", data=params) as resp:
        assert resp.status == 200
        return parse(await resp.text(), "xml")


async def new_developer(http: aiohttp.ClientSession) -> tuple[str, str]:
    username, password = "thr" + secrets.token_hex(4), secrets.token_urlsafe(12)
    tree = await vr(http, action="CreateDeveloper", username=username, password=password)
    assert tree["status"] == "success", tree
    return username, password


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


async def test_vr_guesses_are_locked_out_and_the_victim_is_not(settings: Settings) -> None:
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server:
        attacker, victim = own_address(), own_address()
        async with client_from(server, victim) as http:
            username, password = await new_developer(http)
        async with client_from(server, attacker) as http:
            started = time.monotonic()
            answers = [await vr(http, action="GetDeveloper", username=username,
                                password=f"wrong-{i}") for i in range(60)]
            spent = time.monotonic() - started
            assert {a["error_code"] for a in answers} == {"1001"}
            locked = [a for a in answers if "too many failed attempts" in a["error_details"]]
            # Five free failures, then (the address's 30 too) locks: nearly all refused unread.
            assert len(locked) >= 50, [a["error_details"] for a in answers[:10]]
            assert spent < 10, spent
            right = await vr(http, action="GetDeveloper", username=username, password=password)
            assert "too many failed attempts" in right["error_details"], right
        async with client_from(server, victim) as http:
            # The account's lock is short; the victim waits for it at most, then is in.
            deadline = time.monotonic() + LOCK_MAX + 1.5
            while True:
                tree = await vr(http, action="GetDeveloper", username=username,
                                password=password)
                if tree["status"] == "success" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert tree["status"] == "success", tree
        async with client_from(server, attacker) as http:
            # The guesser's address stays locked even with the right password.
            tree = await vr(http, action="GetDeveloper", username=username, password=password)
            assert "too many failed attempts" in tree["error_details"], tree


async def test_v1_basic_is_throttled_with_retry_after_and_a_second_engine_sees_it(
        settings: Settings) -> None:
    address = own_address()
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server:
        async with client_from(server, own_address()) as http:
            username, password = await new_developer(http)
        async with client_from(server, address) as http:
            statuses = []
            for i in range(8):
                async with http.get("/v1/developer", headers=basic(username, f"x{i}")) as r:
                    statuses.append(r.status)
                    if r.status == 429:
                        body = await r.json()
                        assert body["error"] == "too_many_attempts", body
                        assert int(r.headers["Retry-After"]) >= 1
            assert statuses[:5] == [401] * 5 and 429 in statuses[5:], statuses
    # Another engine on the same database (a restart, a second instance): still locked.
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server, \
            client_from(server, address) as http:
        async with http.get("/v1/developer", headers=basic(username, password)) as r:
            assert r.status == 429, await r.text()


async def test_console_sign_in_is_throttled(settings: Settings) -> None:
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server:
        async with client_from(server) as http:
            username, password = await new_developer(http)
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        connector = aiohttp.TCPConnector(local_addr=(own_address(), 0))
        base = str(server.make_url("/")).rstrip("/")
        async with aiohttp.ClientSession(base, connector=connector, cookie_jar=jar) as http:
            async def sign_in(secret: str) -> str:
                async with http.get("/console/signin") as resp:
                    token = re.search(r'name="csrf_token" value="([^"]+)"',
                                      await resp.text())
                assert token is not None
                async with http.post("/console/signin", data={
                        "csrf_token": token.group(1), "username": username,
                        "password": secret}) as resp:
                    return f"{resp.url.path} {await resp.text()}"

            pages = [await sign_in(f"wrong-{i}") for i in range(7)]
            assert all("/console/signin" in p for p in pages)
            assert "too many failed attempts" in pages[-1]
            assert "too many failed attempts" in await sign_in(password)


async def test_dialer_secret_is_throttled(settings: Settings, pool: Any) -> None:
    account = await Accounts(pool).create(name="throttle")
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server, \
            client_from(server) as http:
        statuses = []
        for i in range(8):
            async with http.get("/voice-broadcast/v1/jobs/nope",
                                headers=basic(account.account_id, f"wrong-{i}")) as r:
                statuses.append(r.status)
                last = await r.json()
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses
        assert "too many failed attempts" in last["result_info"]["description"], last


async def test_list_password_is_throttled(settings: Settings, pool: Any) -> None:
    await new_number(pool, settings)
    async with edge_app(settings, auth_lock_max=LOCK_MAX) as server, \
            client_from(server) as http:
        username, password = await new_developer(http)
        me = {"username": username, "password": password}
        tree = await vr(http, action="CreateVoiceRecorder", **me)
        assert tree["status"] == "success", tree
        rk = tree["voice_recorder"]["voice_recorder_key"]
        tree = await vr(http, action="CreateRecordingList", voice_recorder_key=rk,
                        access_password="list-secret-1", **me)
        lk = tree["recording_list"]["recording_list_key"]
        answers = [await vr(http, action="GetRecordingList", voice_recorder_key=rk,
                            recording_list_key=lk, asset_password=f"guess-{i}", **me)
                   for i in range(8)]
        assert all(a["status"] == "failed" for a in answers)
        assert "too many failed attempts" in answers[-1]["error_details"], answers[-1]
        right = await vr(http, action="GetRecordingList", voice_recorder_key=rk,
                         recording_list_key=lk, asset_password="list-secret-1", **me)
        assert "too many failed attempts" in right["error_details"], right
