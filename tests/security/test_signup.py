"""Sign-up is closed by default outside development, rate-limited per client address where
it is open, and a developer's voice recorders are capped (issue #20)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import aiohttp
import orjson

from ivr.settings import Settings
from tests.helpers.edge import client_from, edge_app
from tests.helpers.phone import new_number
from tests.helpers.vr import parse

SECRETS = {"IVR_ARI_PASSWORD": "s3cret-ari-pw", "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw"}


async def vr(http: aiohttp.ClientSession, **params: Any) -> dict[str, Any]:
    async with http.post("/vr", data=params) as resp:
        return parse(await resp.text(), "xml")


def new_me() -> dict[str, str]:
    return {"username": "su" + secrets.token_hex(5), "password": secrets.token_urlsafe(12)}


def test_sign_up_is_closed_by_default_outside_development() -> None:
    public = Settings.from_mapping({**SECRETS, "IVR_PUBLIC_URL": "https://voice.example.com"})
    assert public.open_signup is False  # was true
    assert Settings.from_mapping(SECRETS).open_signup is True  # loopback: development
    opened = Settings.from_mapping({**SECRETS, "IVR_PUBLIC_URL": "https://voice.example.com",
                                    "IVR_OPEN_SIGNUP": "true"})
    assert opened.open_signup is True


async def test_closed_sign_up_refuses(settings: Settings) -> None:
    async with edge_app(settings, open_signup=False) as server, client_from(server) as http:
        tree = await vr(http, action="CreateDeveloper", **new_me())
        assert tree["error_code"] == "1101" and "closed" in tree["error_details"], tree


async def test_sign_ups_per_address_are_limited(settings: Settings) -> None:
    async with edge_app(settings, open_signup=True, signup_per_hour=3) as server:
        async with client_from(server) as http:
            trees = [await vr(http, action="CreateDeveloper", **new_me()) for _ in range(4)]
            assert [t["status"] for t in trees] == ["success"] * 3 + ["failed"], trees
            assert trees[-1]["error_code"] == "1101", trees[-1]
            assert "accounts an hour" in trees[-1]["error_details"]
            async with http.post("/v1/developers", data=orjson.dumps(new_me())) as resp:
                assert resp.status == 429, await resp.text()
                assert (await resp.json())["error"] == "too_many_signups"
        async with client_from(server) as http:  # another address is not held up
            assert (await vr(http, action="CreateDeveloper", **new_me()))["status"] == "success"


async def test_recorders_per_developer_are_capped(settings: Settings, pool: Any) -> None:
    await new_number(pool, settings)
    async with edge_app(settings, open_signup=True, max_recorders=2) as server, \
            client_from(server) as http:
        me = new_me()
        assert (await vr(http, action="CreateDeveloper", **me))["status"] == "success"
        trees = [await vr(http, action="CreateVoiceRecorder", **me) for _ in range(3)]
        assert [t["status"] for t in trees] == ["success", "success", "failed"], trees
        assert trees[-1]["error_code"] == "1201" and "as many as" in trees[-1]["error_details"]
        auth = base64.b64encode(f"{me['username']}:{me['password']}".encode()).decode()
        async with http.post("/v1/recorders", data=b"{}",
                             headers={"Authorization": f"Basic {auth}"}) as resp:
            assert resp.status == 403, await resp.text()
            assert (await resp.json())["error"] == "voice_recorder_quota"
