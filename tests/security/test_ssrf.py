"""Server-side request forgery (issue #20): URLs the platform or Asterisk will fetch are refused
when they point at loopback, private, link-local or metadata addresses, carry control
characters or another scheme; the address is checked again at connect time, after DNS and on
every redirect. The suite's other tests set IVR_ALLOW_PRIVATE_URLS on purpose (their receivers
are on loopback); these run on the default."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.callcontrol.service import CallControl
from ivr.core.urls import UnsafeUrl, check_url, guarded_connector
from ivr.settings import Settings
from tests.helpers.edge import client_from, edge_app
from tests.helpers.netns import Net, ip
from tests.helpers.phone import new_number
from tests.helpers.vr import parse

# A public (global) address, routed only into this test's own namespace.
PUBLIC_HOST, ROOT_END = "11.254.77.2", "11.254.77.1"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8088/ari/channels", "http://localhost:5432/", "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "ftp://example.com/x.wav",
    "http://example.com/a\r\nX-Injected: 1", "file:///etc/passwd"])
async def test_the_checker_refuses(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)


async def test_the_checker_takes_public_and_private_where_allowed() -> None:
    await check_url("http://11.254.77.2/hook", allow_private=False)
    await check_url("http://127.0.0.1:9/hook", allow_private=True)


async def test_api_refuses_internal_callback_and_upload_urls(settings: Settings,
                                                            pool: Any) -> None:
    await new_number(pool, settings)
    async with edge_app(settings) as server, client_from(server) as http:
        me = {"username": "sr" + secrets.token_hex(4), "password": secrets.token_urlsafe(12)}

        async def vr(**params: Any) -> dict[str, Any]:
            async with http.post("/vr", data={**params, **me}) as resp:
                return parse(await resp.text(), "xml")

        assert (await vr(action="CreateDeveloper"))["status"] == "success"
        for name, url in [("callback_url", "http://127.0.0.1:8088/ari"),
                          ("callback_url", "http://169.254.169.254/"),
                          ("callback_url", "http://example.com/\r\nX: y"),
                          ("upload_url", "http://10.0.0.5/{recording_key}.wav")]:
            extra = {"storage": "upload"} if name == "upload_url" else {}
            tree = await vr(action="CreateVoiceRecorder", **{name: url}, **extra)
            assert tree["error_code"] == "1003", (url, tree)  # was accepted
            assert name in tree["error_details"], tree


async def test_connect_time_check_after_dns() -> None:
    """A name is checked by the address it resolves to when the connection is made (real
    resolution: the machine's own name and localhost), whatever it resolved to before."""
    async with aiohttp.ClientSession(connector=guarded_connector(False)) as http:
        for name in ("localhost", socket.gethostname()):
            with pytest.raises(aiohttp.ClientConnectorError):
                async with http.get(f"http://{name}:9/"):
                    pass


REDIRECTOR = """
import sys
from aiohttp import web
async def go(request):
    raise web.HTTPFound(request.query["to"])
app = web.Application()
app.router.add_get("/go", go)
app.router.add_get("/ok", lambda r: web.Response(text="public"))
web.run_app(app, host=sys.argv[1], port=8080, print=None)
"""


@pytest.fixture(scope="module")
async def public_site() -> AsyncIterator[str]:
    """A web server on a public address, in a namespace of its own, that redirects."""
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root", pytrace=False)
    net = Net(f"sr{os.getpid() % 10000}")
    proc = None
    try:
        ns = net.namespace("site")
        net.link(None, ROOT_END, ns, PUBLIC_HOST)
        ip("netns", "exec", ns, "ip", "route", "add", "default", "via", ROOT_END)
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", ns, sys.executable, "-c", REDIRECTOR, PUBLIC_HOST)
        base = f"http://{PUBLIC_HOST}:8080"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/ok") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the redirector did not start")
        yield base
    finally:
        if proc is not None:
            proc.kill()
            await proc.wait()
        net.close()


async def test_redirects_are_checked_at_every_hop(public_site: str) -> None:
    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="internal")

    inside = web.Application()
    inside.router.add_get("/secret", secret)
    runner = web.AppRunner(inside)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(connector=guarded_connector(False)) as http:
            async with http.get(f"{public_site}/ok") as resp:  # the public hop is fetched
                assert await resp.text() == "public"
            for target in (f"http://127.0.0.1:{port}/secret", "http://169.254.169.254/"):
                with pytest.raises(aiohttp.ClientConnectorError):
                    async with http.get(f"{public_site}/go", params={"to": target}):
                        pass
        # Without the guard the same redirect reaches the internal service (what was broken).
        async with aiohttp.ClientSession() as http, http.get(
                f"{public_site}/go", params={"to": f"http://127.0.0.1:{port}/secret"}) as resp:
            assert await resp.text() == "internal"
    finally:
        await runner.cleanup()


async def test_a_play_url_asterisk_would_fetch_is_checked_first(settings: Settings,
                                                                pool: Any) -> None:
    """Asterisk fetches play URLs itself (it fetched one on loopback): refused before any call
    is placed, in call control's own error format."""
    number = "1512" + "".join(secrets.choice("0123456789") for _ in range(7))
    app = await CallControl(pool).create_application(webhook_url="http://11.254.77.2/hook",
                                                     numbers=[number])
    async with edge_app(settings) as server, client_from(server) as http:
        auth = base64.b64encode(f"{app.app_id}:{app.app_key}".encode()).decode()
        for url in ("http://127.0.0.1:8088/ari/asterisk/info", "http://169.254.169.254/x.wav"):
            async with http.post("/voice/v1/call", headers={"Authorization": f"Basic {auth}"},
                                 json={"from": number, "to": "15125550123",
                                       "action_on_connect": {"play": {"url": url}}}) as resp:
                body = await resp.json()
                assert resp.status == 400, body  # was 200 and Asterisk fetched it
                assert "non-public" in str(body), body
        async with http.post("/voice/v1/call", headers={"Authorization": f"Basic {auth}"},
                             json={"from": number, "to": "15125550123",
                                   "event_url": "http://127.0.0.1:5432/"}) as resp:
            assert resp.status == 400, await resp.text()
