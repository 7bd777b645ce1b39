"""Webhooks of one call leave in the order things happened: a take's `started` before its end
even when Asterisk's events overtake the answer to the recording request, and a call's events
in order through several delivery workers at once."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import aiohttp
import asyncpg
import orjson
import pytest

from ivr.callcontrol import webhooks as cc_webhooks
from ivr.callcontrol.live_call import Telephony
from ivr.callcontrol.service import CallControl
from ivr.delivery.worker import DeliveryWorker
from ivr.settings import Settings
from ivr.telephony.rest import AriClient, basic_auth
from tests.callcontrol.conftest import NewApp, Webhooks
from tests.helpers.tcp_proxy import pipe
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Caller


class SlowAnswers:
    """A TCP relay to Asterisk's ARI port that holds every answer back `delay` seconds, as a
    loaded host does: requests reach Asterisk at once, events (on the engine's own socket)
    are not held, so they overtake the answers."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SlowAnswers:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def held(_: bytes) -> bool:
            await asyncio.sleep(self.delay)
            return True

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer, held))


@pytest.mark.asterisk
async def test_a_take_ended_before_its_request_was_answered_keeps_its_order(
    new_app: NewApp, caller: Caller, webhooks: Webhooks, control: CallControl,
    settings: Settings, stored_recordings: list[str],
) -> None:
    """The caller hangs up while the answer to the start request is still on its way: the
    take starts and ends (two Asterisk events) before the request returns."""
    app = await new_app()
    dialing = asyncio.create_task(caller.dial(app.number))
    vid = (await webhooks.wait_first_for_number(app.number))["voice_id"]
    base = f"/voice/v1/call/{vid}"
    await app.request("POST", f"{base}/accept")
    leg = await dialing
    await webhooks.wait(vid, "connected")
    live = control.calls[uuid.UUID(vid)]
    ari_port = int(settings.ari_url.rsplit(":", 1)[1])
    async with SlowAnswers(ari_port, 0.8) as relay, aiohttp.ClientSession(
            headers=basic_auth(settings.ari_user, settings.ari_password)) as session:
        tel = live.tel
        live.tel = Telephony(AriClient(session, f"http://127.0.0.1:{relay.port}"), tel.router,
                             tel.app, tel.trunk)
        try:
            start = asyncio.create_task(app.request("PUT", f"{base}/recording",
                                                    {"start": True}))
            await asyncio.sleep(0.3)  # the take is running; its answer is still held back
            await leg.hangup()
            status, got = await start
        finally:
            live.tel = tel
    assert status == 200, got
    stored_recordings.append("cc-" + got["recording_id"].replace("-", ""))
    await webhooks.wait(vid, "disconnected")
    assert webhooks.states(vid) == ["incomingcall", "connected", "started", "completed",
                                    "disconnected"]
    assert all(e["recording_id"] == got["recording_id"] for e in webhooks.of(vid)
               if e["state"] in ("started", "completed"))


async def test_a_calls_events_leave_in_order_through_concurrent_workers(
    pool: asyncpg.Pool
) -> None:
    """Many events of one call, each committed on its own as the call's writer does, while
    three workers (four deliveries at once each) claim side by side: the receiver sees them
    in order, and each once."""
    receiver: SignedReceiver[int] = SignedReceiver(lambda _, body: orjson.loads(body)["seq"])
    secret = secrets.token_urlsafe(16)
    receiver.secrets.append(secret)
    voice_id = uuid.uuid4()
    workers = [DeliveryWorker(pool, poll_interval=0.01, concurrency=4, allow_private=True)
               for _ in range(3)]
    async with serving(receiver, "/hook") as url:
        for worker in workers:
            worker.start()
        try:
            for seq in range(120):
                async with pool.acquire() as conn, conn.transaction():
                    await cc_webhooks.enqueue(
                        conn, voice_id=voice_id, app_id="order-test", url=f"{url}/hook",
                        secret=secret, event={"voice_id": str(voice_id), "state": "ringing",
                                              "seq": seq})
                if seq % 10 == 0:
                    await asyncio.sleep(0)  # let the workers claim mid-stream
            await receiver.wait_until(lambda: len(receiver.got) >= 120, 60,
                                      lambda: f"got {len(receiver.got)} of 120")
        finally:
            for worker in workers:
                await worker.stop()
    assert receiver.got == list(range(120))
