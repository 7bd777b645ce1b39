"""The /v1 face: the same flows as /vr, its OpenAPI document, Idempotency-Key."""

from __future__ import annotations

import re
import secrets
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from ivr.core import keys
from ivr.core.web import POOL
from ivr.recorder.openapi import DOCUMENT


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(login, password)}


def _template(path: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)


async def test_openapi_matches_routes(api: TestClient) -> None:
    served: set[tuple[str, str]] = set()
    for route in api.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if path.startswith("/v1/") and route.method != "HEAD":
            served.add((_template(path), route.method.lower()))
    doc = (await (await api.get("/v1/openapi.json")).json())
    assert doc["openapi"].startswith("3.")
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    assert doc == DOCUMENT


async def test_rest_flow(api: TestClient, phone_number: str) -> None:
    username, password = "rest" + secrets.token_hex(4), secrets.token_urlsafe(12)
    resp = await api.post("/v1/developers", json={"username": username, "password": password})
    assert resp.status == 201
    auth = basic(username, password)
    assert (await api.get("/v1/developer")).status == 401
    token = (await (await api.post("/v1/tokens", headers=auth)).json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    recorder = await (await api.post("/v1/recorders", json={}, headers=bearer)).json()
    rk = recorder["voice_recorder_key"]
    # One of the operator's configured numbers (the least used one: other tests add more).
    assigned = recorder["phone_number_list"][0]["phone_number"]
    assert await api.server.app[POOL].fetchval(
        "SELECT count(*) FROM phone_numbers WHERE number = $1", assigned) == 1
    resp = await api.post(f"/v1/recorders/{rk}/lists", headers=auth,
                          json={"recording_list_key": "L1", "initial_recordings": 2,
                                "update_password": "???"})
    assert resp.status == 201
    created = await resp.json()
    update = created["update_password"]
    assert created["recording_count"] == 2
    base = f"/v1/recorders/{rk}/lists/L1"
    resp = await api.post(base + "/recordings", headers=auth, json={"name": "x", "sequence": 1})
    assert resp.status == 403 and (await resp.json())["error"] == "asset_password_required"
    resp = await api.post(base + "/recordings", json={"name": "x", "sequence": 1},
                          headers={**auth, "X-Asset-Password": update})
    rec = await resp.json()
    assert resp.status == 201 and rec["sequence"] == 1
    resp = await api.post(base + "/recordings", json={"sequence": "first"},
                          headers={**auth, "X-Asset-Password": update})
    assert resp.status == 400 and (await resp.json())["param"] == "sequence"
    listed = await (await api.get(base + "/recordings", headers=auth)).json()
    assert [r["sequence"] for r in listed["recordings"]] == [1, 2, 3]
    resp = await api.patch(base + f"/recordings/{rec['recording_key']}",
                           json={"sequence": 3, "meta_data_1": "m"},
                           headers={**auth, "X-Asset-Password": update})
    assert (await resp.json())["sequence"] == 3
    resp = await api.post(base + "/sessions", headers={**auth, "X-Asset-Password": update},
                          json={"recording_keys": [rec["recording_key"]]})
    session = await resp.json()
    assert resp.status == 201 and len(session["ivr_pin"]) == 6
    status = await (await api.get(f"/v1/sessions/{session['recording_session_key']}",
                                  headers=auth)).json()
    assert status["session_state"] == "created" and "ivr_pin" not in status
    expired = await (await api.post(
        f"/v1/sessions/{session['recording_session_key']}/expire", headers=auth)).json()
    assert expired["session_state"] == "expired"
    resp = await api.delete(base + f"/recordings/{rec['recording_key']}", headers=auth)
    assert resp.status == 204
    login, pw = "rest" + secrets.token_hex(4), "pw-" + secrets.token_hex(6)
    await api.post("/v1/developers", json={"username": login, "password": pw})
    resp = await api.get(base, headers=basic(login, pw))
    assert resp.status == 403 and (await resp.json())["error"] == "voice_recorder_not_yours"
    assert (await api.delete(f"/v1/recorders/{rk}", headers=auth)).status == 204


async def test_idempotency_key(api: TestClient, phone_number: str) -> None:
    username, password = "idem" + secrets.token_hex(4), secrets.token_urlsafe(12)
    await api.post("/v1/developers", json={"username": username, "password": password})
    auth = basic(username, password)
    rk = (await (await api.post("/v1/recorders", json={}, headers=auth)).json())[
        "voice_recorder_key"]
    headers = {"Idempotency-Key": "k-1"}
    first = await api.post(f"/v1/recorders/{rk}/lists", json={"name": "a"},
                           headers={**auth, **headers})
    again = await api.post(f"/v1/recorders/{rk}/lists", json={"name": "a"},
                           headers={**auth, **headers})
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    lists = await (await api.get(f"/v1/recorders/{rk}/lists", headers=auth)).json()
    assert len(lists["recording_lists"]) == 1
    resp = await api.post(f"/v1/recorders/{rk}/lists", json={"name": "b"},
                          headers={**auth, **headers})
    assert resp.status == 422 and (await resp.json())["error"] == "idempotency_key_reused"
    # A failed request frees its key.
    bad: dict[str, Any] = {"max_recordings": "lots"}
    resp = await api.post(f"/v1/recorders/{rk}/lists", json=bad,
                          headers={**auth, "Idempotency-Key": "k-2"})
    assert resp.status == 400
    resp = await api.post(f"/v1/recorders/{rk}/lists", json={"max_recordings": 2},
                          headers={**auth, "Idempotency-Key": "k-2"})
    assert resp.status == 201


async def test_a_password_change_revokes_the_developers_tokens(api: TestClient) -> None:
    """A token does not outlive ChangePassword (a leaked token is dead once its owner changes
    the password), nor its expiry."""
    username, password = "tok" + secrets.token_hex(4), secrets.token_urlsafe(12)
    assert (await api.post("/v1/developers", json={"username": username,
                                                   "password": password})).status == 201
    token = (await (await api.post("/v1/tokens", headers=basic(username, password))).json())[
        "token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/v1/developer", headers=bearer)).status == 200
    old = (await (await api.post("/v1/tokens", headers=basic(username, password))).json())[
        "token"]
    await api.server.app[POOL].execute(
        "UPDATE developer_tokens SET expires_at = now() - interval '1 second'"
        " WHERE token_hash = $1", keys.token_digest(old))
    assert (await api.get("/v1/developer", headers={"Authorization": f"Bearer {old}"})
            ).status == 401
    resp = await api.get("/vr", params={"action": "ChangePassword", "reply": "json",
                                        "username": username, "password": password,
                                        "new_password": "a-new-password-1"})
    assert (await resp.json())["MyVoxapi"]["status"] == "success"
    resp = await api.get("/v1/developer", headers=bearer)
    assert resp.status == 401
    assert "unknown, revoked or expired token" in (await resp.json())["message"]
    assert (await api.get("/v1/developer", headers=basic(username, "a-new-password-1"))
            ).status == 200
