"""The MyVox /vr API as a developer, in tests: a developer with a recorder, /vr calls whose
reply (XML or JSON) is parsed into one shape, fresh phone numbers."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from ivr.core.keys import new_pin


@dataclass
class Dev:
    username: str
    password: str
    recorder_key: str


class Vr:
    """Calls /vr as a given developer and returns the reply as (status, tree)."""

    def __init__(self, api: TestClient, dev: Dev) -> None:
        self.api, self.dev = api, dev

    async def raw(self, action: str, reply: str = "xml", method: str = "GET",
                  **params: Any) -> str:
        data = {"action": action, "reply": reply, "username": self.dev.username,
                "password": self.dev.password, "voice_recorder_key": self.dev.recorder_key}
        data.update({k: v for k, v in params.items()})
        data = {k: v for k, v in data.items() if v is not None}
        if method == "GET":
            resp = await self.api.get("/vr", params=data)
        else:
            resp = await self.api.post("/vr", data=data)
        assert resp.status == 200
        return await resp.text()

    async def __call__(self, action: str, reply: str = "xml", **params: Any) -> dict[str, Any]:
        text = await self.raw(action, reply, **params)
        return parse(text, reply)

    async def ok(self, action: str, reply: str = "xml", **params: Any) -> dict[str, Any]:
        tree = await self(action, reply, **params)
        assert tree["status"] == "success", tree
        return tree

    async def fail(self, action: str, code: int, reply: str = "xml",
                   **params: Any) -> dict[str, Any]:
        tree = await self(action, reply, **params)
        assert tree["status"] == "failed", tree
        assert int(tree["error_code"]) == code, tree
        return tree


def xml_tree(elem: ET.Element) -> Any:
    """Children to a dict, a repeated name to a list, leaves to text."""
    if len(elem) == 0:
        return elem.text or ""
    out: dict[str, Any] = {}
    for child in elem:
        value = xml_tree(child)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out


def as_list(value: Any) -> list[Any]:
    """XML has no arrays: one repeated element reads as an object, several as a list."""
    return value if isinstance(value, list) else [value]


def parse(text: str, reply: str) -> dict[str, Any]:
    if reply == "json":
        import orjson

        doc = orjson.loads(text)
        assert list(doc) == ["MyVoxapi"]
        return dict(doc["MyVoxapi"])
    root = ET.fromstring(text)
    assert root.tag == "MyVoxapi"
    tree = xml_tree(root)
    out = dict(root.attrib)
    if isinstance(tree, dict):
        out.update(tree)
    return out


def fresh_number(area: str = "512") -> str:
    """A valid US number (an exchange starting 2-9) that no other test is likely to have."""
    return f"+1{area}{secrets.choice('23456789')}{new_pin(6)}"


async def make_dev(api: TestClient, phone_number: str, **recorder: Any) -> Dev:
    username = "dev" + secrets.token_hex(4)
    password = secrets.token_urlsafe(12)
    vr = Vr(api, Dev(username, password, ""))
    await vr.ok("CreateDeveloper")
    tree = await vr.ok("CreateVoiceRecorder", **recorder)
    return Dev(username, password, tree["voice_recorder"]["voice_recorder_key"])
