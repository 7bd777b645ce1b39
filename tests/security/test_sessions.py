"""Sessions do not outlive the password (issue #20): after /vr ChangePassword the old bearer
token and the old console cookie stop working; a token can be revoked and expires."""

from __future__ import annotations

import re
import secrets
from typing import Any

import aiohttp

from ivr.settings import Settings
from tests.helpers.edge import edge_app, own_address
from tests.helpers.vr import parse


async def test_change_password_ends_tokens_and_console_sign_ins(settings: Settings,
                                                                 pool: Any) -> None:
    async with edge_app(settings) as server:
        base = str(server.make_url("/")).rstrip("/")
        connector = aiohttp.TCPConnector(local_addr=(own_address(), 0))
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base, connector=connector, cookie_jar=jar) as http:
            async def vr(**params: Any) -> dict[str, Any]:
                async with http.post("/vr", data=params) as resp:
                    return parse(await resp.text(), "xml")

            me = {"username": "ses" + secrets.token_hex(4), "password": secrets.token_urlsafe(12)}
            assert (await vr(action="CreateDeveloper", **me))["status"] == "success"
            token = (await vr(action="LoginDeveloper", **me))["api_token"]
            async with http.get("/console/signin") as resp:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert csrf is not None
            async with http.post("/console/signin", data={"csrf_token": csrf.group(1), **me},
                                 allow_redirects=False) as resp:
                assert resp.status == 303 and "signin" not in resp.headers["Location"]

            async def console_in() -> bool:
                async with http.get("/console/account", allow_redirects=False) as resp:
                    return resp.status == 200

            async def token_in() -> int:
                async with http.get("/v1/developer", headers={
                        "Authorization": f"Bearer {token}"}) as resp:
                    return resp.status

            assert await console_in() and await token_in() == 200
            new = secrets.token_urlsafe(12)
            tree = await vr(action="ChangePassword", new_password=new, **me)
            assert tree["status"] == "success", tree
            assert not await console_in()  # was still signed in
            assert await token_in() == 401
        # The revocation is the database's: an engine started after the change agrees.
        async with edge_app(settings) as other:
            async with aiohttp.ClientSession(str(other.make_url("/")).rstrip("/")) as http:
                async with http.get("/v1/developer", headers={
                        "Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 401
