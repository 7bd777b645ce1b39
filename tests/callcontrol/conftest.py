"""Call-control fixtures: the service attached to the engine's real telephony worker, its web
face on a test server, and a webhook receiver that checks every signature."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.callcontrol.media import SpokenMedia
from ivr.callcontrol.rest import CALLCONTROL
from ivr.callcontrol.routes import add_routes
from ivr.callcontrol.service import CallControl, NewApplication
from ivr.core.web import POOL, SETTINGS, error_middleware
from ivr.media.routes import add_routes as add_media_routes
from ivr.settings import Settings
from ivr.telephony.call import Call
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Engine


class Webhooks(SignedReceiver[dict[str, Any]]):
    """Receives events at /hook; every one must carry a valid signature."""

    def __init__(self) -> None:
        super().__init__(lambda _, body: orjson.loads(body))

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.got

    def of(self, voice_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("voice_id") == voice_id]

    def states(self, voice_id: str) -> list[str]:
        return [e.get("state") or e.get("playstate") for e in self.of(voice_id)]

    async def wait(self, voice_id: str, state: str, timeout: float = 15) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for e in self.of(voice_id):
                if state in (e.get("state"), e.get("playstate")):
                    return e
            return None

        await self.wait_until(lambda: found() is not None, timeout,
                           lambda: f"no {state!r} event for {voice_id}; got "
                                   f"{self.states(voice_id)}")
        event = found()
        assert event is not None
        return event

    async def wait_first_for_number(self, number: str, timeout: float = 15
                                    ) -> dict[str, Any]:
        """The `incomingcall` event of the first call to `number`."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events
                         if e.get("state") == "incomingcall" and e.get("to") == number), None)

        await self.wait_until(lambda: found() is not None, timeout,
                           lambda: f"no incomingcall for {number}")
        event = found()
        assert event is not None
        return event


@pytest.fixture(scope="session")
async def webhooks() -> AsyncIterator[Webhooks]:
    hooks = Webhooks()
    async with serving(hooks, "/hook") as base:
        hooks.url = f"{base}/hook"
        yield hooks


@pytest.fixture(scope="session")
async def control(engine: Engine, pool: asyncpg.Pool,
                  settings: Settings) -> AsyncIterator[CallControl]:
    # Its receivers are on loopback, its calls to this Asterisk's own numbers: the suite's
    # relaxations (the settings fixture), not the production defaults.
    service = CallControl(pool, allow_private_urls=True, security=settings.security)
    service.attach(engine.tel.ari, engine.tel.runner.router, engine.tel.runner.app)
    yield service
    await service.close()


@pytest.fixture(scope="session")
async def voice(control: CallControl, settings: Settings, pool: asyncpg.Pool
                ) -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[POOL] = pool
    app[CALLCONTROL] = control
    add_routes(app)
    add_media_routes(app)  # the TTS audio Asterisk fetches
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    control.media = SpokenMedia.for_settings(settings.data_dir,
                                             str(client.make_url("")).rstrip("/"),
                                             settings.prompts_dir)
    yield client
    await client.close()


@dataclass
class VoiceApp:
    """An application with its own inbound number, and its API credentials."""

    creds: NewApplication
    number: str
    client: TestClient
    extra_numbers: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.creds.app_id}:{self.creds.app_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        resp = await self.client.request(
            method, path, json=body, headers=self.headers if headers is None else headers)
        return resp.status, await resp.json()


NewApp = Callable[..., Awaitable[VoiceApp]]


@pytest.fixture
async def new_app(engine: Engine, control: CallControl, voice: TestClient,
                  webhooks: Webhooks) -> NewApp:
    async def make(greeting: str | None = None, accept_timeout: int = 10,
                   shared: str | None = None) -> VoiceApp:
        async def inbound(call: Call) -> None:
            route = await control.route_for(call)
            assert route is not None, f"{call.dialed} routes to no application"
            await route.flow(call)

        number = engine.routes.add(inbound, "callcontrol")
        if shared is not None:  # the shared number must route to call control too
            engine.routes.flows[shared] = engine.routes.flows[number]
        creds = await control.create_application(
            webhook_url=webhooks.url, numbers=[number], greeting=greeting,
            accept_timeout=accept_timeout, shared_numbers=[shared] if shared else None)
        webhooks.secrets.append(creds.webhook_secret)
        return VoiceApp(creds, number, voice)

    return make
