"""/healthz tells an anonymous caller its status and nothing else; the version, ARI, calls and
counts, and /metrics, only a loopback peer, or with IVR_METRICS_TOKEN set only a bearer of it
(issue #20 host hygiene: both told anyone the version and internals). The client off loopback
is real: an address of a veth link the test makes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from ivr.core.errors import ConfigError
from ivr.settings import Settings
from tests.helpers.edge import client_from, edge_app
from tests.helpers.netns import Net, free_subnet

SECRETS = {"IVR_ARI_PASSWORD": "s3cret-ari-pw", "IVR_SOFTPHONE_PASSWORD": "s3cret-sip-pw"}
TOKEN = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def outside() -> Iterator[str]:
    """An address of this host that is not loopback (the root end of a veth pair)."""
    net = Net(f"mo{os.getpid() % 10000}")
    try:
        octets = free_subnet(os.getpid() + 61)
        net.namespace("mon")
        net.link(None, f"{octets}.1", net.namespaces[0], f"{octets}.2")
        yield f"{octets}.1"
    finally:
        net.close()


async def test_without_a_token_internals_are_for_loopback_only(
    settings: Settings, outside: str
) -> None:
    async with edge_app(settings, host="0.0.0.0") as server:
        port = server.port
        async with client_from(server, "127.0.0.1") as http:
            async with http.get("/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["status"] == "ok" and "version" in body
                assert body["database"]["connected"] is True
            async with http.get("/metrics") as resp:
                assert resp.status == 200 and "ivr_outbox" in await resp.text()
        async with client_from(server, outside) as http:
            async with http.get(f"http://{outside}:{port}/healthz") as resp:
                assert resp.status == 200 and await resp.json() == {"status": "ok"}  # was all
            async with http.get(f"http://{outside}:{port}/metrics") as resp:
                assert resp.status == 403, await resp.text()  # was 200
                assert (await resp.json())["error"] == "forbidden"


async def test_with_a_token_only_its_bearer_sees_them_even_on_loopback(
    settings: Settings, outside: str
) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with edge_app(settings, host="0.0.0.0", metrics_token=TOKEN) as server:
        base = f"http://{outside}:{server.port}"
        async with client_from(server, outside) as http:
            async with http.get(f"{base}/healthz", headers=bearer) as resp:
                body = await resp.json()
                assert resp.status == 200 and "version" in body and "delivery" in body, body
            async with http.get(f"{base}/metrics", headers=bearer) as resp:
                assert resp.status == 200 and "ivr_outbox" in await resp.text()
            for wrong in ({}, {"Authorization": f"Bearer {TOKEN}x"},
                          {"Authorization": f"Basic {TOKEN}"}):
                async with http.get(f"{base}/healthz", headers=wrong) as resp:
                    assert await resp.json() == {"status": "ok"}
                async with http.get(f"{base}/metrics", headers=wrong) as resp:
                    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
        # A reverse proxy on this host makes every client loopback: no free pass there.
        async with client_from(server, "127.0.0.1") as http:
            async with http.get("/healthz") as resp:
                assert await resp.json() == {"status": "ok"}
            async with http.get("/metrics") as resp:
                assert resp.status == 401


def test_the_token_is_long_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="IVR_METRICS_TOKEN must be at least 16"):
        Settings.from_mapping({**SECRETS, "IVR_METRICS_TOKEN": "short-token"})
    settings = Settings.from_mapping({**SECRETS, "IVR_METRICS_TOKEN": TOKEN})
    assert settings.security.metrics_token == TOKEN and TOKEN not in repr(settings)
