"""Bad input is refused at the edge in each API's own error format (issue #20): NUL and control
characters in names, UTF-7 campaign documents, oversized and many-field bodies; the server
holds no large body for an anonymous client."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import wave
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import orjson

from ivr.dialer.accounts import Accounts
from ivr.settings import Settings
from tests.helpers.edge import client_from, edge_app, edge_process, rss_of
from tests.helpers.phone import new_number
from tests.helpers.vr import parse

MIB = 1024**2


async def vr(http: aiohttp.ClientSession, data: Any, reply: str = "xml") -> dict[str, Any]:
    async with http.post("/vr", data=data) as resp:
        assert resp.status == 200
        text = await resp.text()
    ET.fromstring(text) if reply == "xml" else None  # well-formed, or this raises
    return parse(text, reply)


async def developer(http: aiohttp.ClientSession) -> dict[str, str]:
    me = {"username": "edge" + secrets.token_hex(4), "password": secrets.token_urlsafe(12)}
    assert (await vr(http, {"action": "CreateDeveloper", **me}))["status"] == "success"
    return me


def basic(me: dict[str, str]) -> dict[str, str]:
    raw = f"{me['username']}:{me['password']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def wav(seconds: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\1" * 8000 * seconds)
    return buf.getvalue()


async def test_control_characters_in_names(settings: Settings) -> None:
    async with edge_app(settings) as server, client_from(server) as http:
        me = await developer(http)
        for char in ("\x00", "\x01", "\x1b"):
            tree = await vr(http, {"action": "SetDeveloper", "name": f"a{char}b", **me})
            assert tree["error_code"] == "1003", tree  # was 1000 (NUL) / not well-formed XML
            assert "control character" in tree["error_details"]
            async with http.post("/v1/recorders", headers=basic(me),
                                 data=orjson.dumps({"name": f"a{char}b"})) as resp:
                body = await resp.json()
                assert resp.status == 400 and body["error"] == "invalid_parameter", body
        # Tab and line breaks are text.
        tree = await vr(http, {"action": "SetDeveloper", "name": "a\tb\nc", **me})
        assert tree["status"] == "success", tree


async def test_large_and_many_field_bodies_are_refused(settings: Settings) -> None:
    async with edge_app(settings) as server, client_from(server) as http:
        tree = await vr(http, {"action": "GetDeveloper", "username": "x", "password": "y",
                               "blob": "z" * (65 * MIB)})
        assert tree["error_code"] == "1003" and "body size" in tree["error_details"], tree
        many = [("action", "GetDeveloper")] + [(f"f{i}", "1") for i in range(20_000)]
        tree = await vr(http, many)
        assert tree["error_code"] == "1003" and "form fields" in tree["error_details"], tree
        async with http.post("/v1/developers", data=b"{" + b" " * (2 * MIB) + b"}",
                             headers={"Content-Type": "application/json"}) as resp:
            body = await resp.json()
            assert resp.status == 400 and "too large" in body["message"], body


async def test_anonymous_large_posts_do_not_grow_the_server(settings: Settings) -> None:
    async with edge_process(settings) as (base, pid), aiohttp.ClientSession(base) as http:
        before = rss_of(pid)
        body = b"\0" * (32 * MIB)  # each within the old 64 MiB limit

        async def post(multipart: bool) -> dict[str, Any]:
            if not multipart:
                async with http.post("/vr", data=b"action=GetDeveloper&blob=" + body, headers={
                        "Content-Type": "application/x-www-form-urlencoded"}) as resp:
                    return parse(await resp.text(), "xml")
            form = aiohttp.FormData()
            form.add_field("action", "UploadPrompt")
            form.add_field("prompt_file", body, filename="x.wav")
            return await vr(http, form)

        trees = await asyncio.gather(*(post(i % 2 == 0) for i in range(4)))
        assert {t["error_code"] for t in trees} <= {"1001", "1003"}, trees
        grown = rss_of(pid) - before
        # Four 60 MiB posts took +550 MB (and it stayed): now nothing large is held.
        assert grown < 40 * MIB, grown // MIB


async def test_prompt_upload_after_authentication(settings: Settings, pool: Any) -> None:
    await new_number(pool, settings)
    async with edge_app(settings) as server, client_from(server) as http:
        me = await developer(http)
        tree = await vr(http, {"action": "CreateVoiceRecorder", **me})
        rk = tree["voice_recorder"]["voice_recorder_key"]
        form = aiohttp.FormData()
        for k, v in {"action": "UploadPrompt", **me, "voice_recorder_key": rk,
                     "prompt_name": "welcome"}.items():
            form.add_field(k, v)
        # Larger than the form limit (1 MiB), within the upload limit.
        form.add_field("prompt_file", wav(seconds=70), filename="w.wav")
        tree = await vr(http, form)
        assert tree["status"] == "success", tree


async def test_utf7_campaign_document(settings: Settings, pool: Any) -> None:
    account = await Accounts(pool).create(name="utf7")
    doc = (b'<?xml version="1.0" encoding="UTF-7"?><campaign action="0" menuid="m"/>')
    async with edge_app(settings) as server, client_from(server) as http:
        raw = f"{account.account_id}:{account.secret}".encode()
        async with http.post("/ivrapi.asp", data=doc, headers={
                "Authorization": "Basic " + base64.b64encode(raw).decode()}) as resp:
            root = ET.fromstring(await resp.text())
            assert resp.status == 400 and root.get("errorid") == "3", root.attrib
            assert "encoding" in (root.get("comment") or "")
