"""Campaign calls through the real Asterisk: destinations are numbers routed back into the
engine over the `ivr-loopback` SIP trunk, where a test flow answers and records what it hears
(the campaign's prompt, played by the dialer on the other leg).

- global prompts (key press captured) and per-number prompts (a TTS and an uploaded sound
  file, deleted before the call plays it) reach their callees and are heard; a busy number,
  and one busy on both of its attempts (one summary, after the last);
  Call Events and Call Summaries arrive signed, as XML; the call query agrees;
- pause holds pending calls, delete removes one by callid, resume dials the rest;
- a call with a dateandtime waits for it (the query says so), one without goes at once."""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import io
import math
import secrets
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.campaigns import render
from ivr.campaigns.service import Campaigns
from ivr.core.errors import IvrError
from ivr.dialer.accounts import Accounts
from ivr.dialer.worker import DialerWorker
from ivr.telephony.call import Call, RecordingResult
from ivr.telephony.events import Event
from ivr.telephony.rest import AriClient
from tests.campaigns.conftest import Client, Receiver, hours_excluding_now
from tests.telephony_harness import DATA, Engine

pytestmark = pytest.mark.asterisk


def voiced_seconds(wav: bytes) -> float:
    """Seconds of 20 ms frames louder than quiet line noise."""
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    step = rate // 50
    loud = 0
    for i in range(0, len(samples) - step, step):
        frame = samples[i:i + step]
        if math.sqrt(sum(x * x for x in frame) / step) > 300:
            loud += 1
    return loud / 50


class Callees:
    """Numbers of this test's own that answer and record what they hear (optionally pressing
    a key once the prompt has started), or answer busy."""

    def __init__(self, engine: Engine, ari: AriClient, stored: list[str]) -> None:
        self.engine = engine
        self.ari = ari
        self.stored = stored
        self.heard: dict[str, asyncio.Future[float]] = {}
        self.rang: dict[str, int] = {}

    def _add(self, flow: Callable[[Call], Awaitable[None]]) -> str:
        short = self.engine.routes.add(flow, "campaign-callee")
        number = f"555{short:0>4}"  # the dialer calls 7-15 digits
        self.engine.routes.flows[number] = self.engine.routes.flows[short]
        self.rang[number] = 0
        return number

    async def _record_heard(self, call: Call, name: str) -> RecordingResult:
        """Record what `call` receives (the campaign's prompt) through a snoop channel, so the
        callee's own channel stays free to send DTMF while it listens."""
        tel = self.engine.tel
        snoop_id = f"snoop-{secrets.token_hex(6)}"
        snoop = Call(self.ari, {"id": snoop_id}, [])
        started = asyncio.get_running_loop().create_future()

        def sink(event: Event) -> None:
            if event["type"] == "StasisStart" and not started.done():
                started.set_result(None)
            snoop.feed(event)

        tel.runner.router.register(snoop_id, sink)
        try:
            await self.ari.snoop(call.id, snoop_id, app=tel.runner.app, spy="in")
            await asyncio.wait_for(started, 5)
            return await snoop.record(name, max_duration=20, terminate_on="none")
        finally:
            with contextlib.suppress(IvrError):
                await snoop.hangup()
            tel.runner.router.unregister(snoop_id)

    def listener(self, key: str | None = None) -> str:
        heard: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        async def flow(call: Call) -> None:
            self.rang[number] += 1
            await call.answer()
            name = f"campaign-heard-{secrets.token_hex(6)}"
            self.stored.append(name)
            recording = asyncio.create_task(self._record_heard(call, name))
            if key is not None:
                await asyncio.sleep(1.0)
                await call.send_dtmf(key)
            take = await recording
            assert take.hung_up or take.state == "done", take
            if not heard.done():
                heard.set_result(voiced_seconds(await self.ari.stored_recording_file(name)))

        number = self._add(flow)
        self.heard[number] = heard
        return number

    def busy(self) -> str:
        async def flow(call: Call) -> None:
            self.rang[number] += 1
            await call.ari.ring(call.id)
            await asyncio.sleep(0.2)
            await call.hangup("busy")

        number = self._add(flow)
        return number


@pytest.fixture
def callees(engine: Engine, ari: AriClient, stored_recordings: list[str]) -> Callees:
    return Callees(engine, ari, stored_recordings)


@pytest.fixture
async def live(pool: asyncpg.Pool, xmlapi: TestClient, receiver: Receiver,
               dialer_worker: DialerWorker) -> Client:
    """An account that may call now, whose postbacks the receiver verifies."""
    new = await Accounts(pool).create(name="live")
    receiver.secrets.append(new.webhook_secret)
    return Client(new, xmlapi)


def sent_callids(reply_root: Element) -> list[str]:
    return [el.attrib["callid"] for el in reply_root.iter("phonenumber")]


async def test_global_and_per_number_prompts(
    live: Client, campaigns: Campaigns, callees: Callees, receiver: Receiver,
) -> None:
    account = live.new.account
    await campaigns.create_menu(account, "glob", events_url=f"{receiver.url}/events",
                                summary_url=f"{receiver.url}/summary", keypress=True,
                                sender_id="8185550000")
    await campaigns.create_menu(account, "own", events_url=f"{receiver.url}/events",
                                summary_url=f"{receiver.url}/summary")
    await campaigns.create_menu(account, "retry", summary_url=f"{receiver.url}/summary",
                                max_attempts=2, retry_delay=0.2)
    g1, g2 = callees.listener(key="1"), callees.listener(key="2")
    o1, o2, busy = callees.listener(), callees.listener(), callees.busy()
    busy_twice = callees.busy()

    # The sound file: uploaded, then used by a send, then deleted before the call plays it.
    wav = base64.b64encode((DATA / "speech-fox.wav").read_bytes()).decode()
    reply = await live.post(f'<campaign action="1"><file filename="fox.wav" fileaction="save">'
                            f"{wav}</file></campaign>")
    assert reply.errorid == 0, reply.comment

    glob, own, retry = await asyncio.gather(
        live.post(f'<campaign menuid="glob" action="0"><prompts><prompt promptid="1" '
                  f'tts="Web server one is down. Press a key."/></prompts><phonenumbers>'
                  f'<phonenumber number="{g1}" callid="g1"/><phonenumber number="{g2}" '
                  f'callid="g2"/></phonenumbers></campaign>'),
        live.post(f'<campaign menuid="own" action="0"><phonenumbers>'
                  f'<phonenumber number="{o1}" callid="o1"><prompts><prompt promptid="1" '
                  f'tts="Two."/></prompts></phonenumber>'
                  f'<phonenumber number="{o2}" callid="o2"><prompts><prompt promptid="7" '
                  f'filename="fox.wav"/></prompts></phonenumber>'
                  f'<phonenumber number="{busy}" callid="b1"><prompts><prompt promptid="1" '
                  f'tts="Nobody hears this."/></prompts></phonenumber>'
                  f"</phonenumbers></campaign>"),
        live.post(f'<campaign menuid="retry" action="0"><prompts><prompt promptid="1" '
                  f'tts="Again."/></prompts><phonenumbers><phonenumber number="{busy_twice}" '
                  f'callid="r1"/></phonenumbers></campaign>'))
    assert (glob.errorid, own.errorid, retry.errorid) == (0, 0, 0), (glob.comment, own.comment)
    assert sent_callids(glob.root) == ["g1", "g2"]
    assert sent_callids(own.root) == ["o1", "o2", "b1"]
    reply = await live.post('<campaign action="1"><file filename="fox.wav" '
                            'fileaction="delete"/></campaign>')
    assert reply.errorid == 0

    heard = dict(zip((g1, g2, o1, o2), await asyncio.wait_for(asyncio.gather(
        *(callees.heard[n] for n in (g1, g2, o1, o2))), 40), strict=True))
    # Every answered callee heard its prompt: the short TTS, the 4.3 s sound file (after the
    # file was deleted: calls keep the audio they were sent with), the global TTS up to the
    # key press.
    assert 0.3 < heard[o1] < 1.5, heard
    assert 3.0 < heard[o2] < 5.0, heard
    assert heard[g1] > 0.5 and heard[g2] > 0.5, heard

    summaries = await receiver.summaries(["g1", "g2", "o1", "o2", "b1", "r1"])
    for callid, number in (("g1", g1), ("g2", g2), ("o1", o1), ("o2", o2)):
        s = summaries[callid].attrib
        assert (s["status"], s["comment"], s["phonenumber"]) == (
            "Successful", "Human Answer", number), s
        assert s["menuid"] == ("glob" if callid.startswith("g") else "own")
        assert int(s["duration"]) >= 0 and s["dateandtime"].endswith("M")
    assert summaries["b1"].attrib["status"] == "Busy"
    # Busy twice (two attempts): one summary, after the last attempt.
    assert summaries["r1"].attrib["status"] == "Busy" and callees.rang[busy_twice] == 2
    assert len(receiver.of("r1")) == 1
    assert [p.attrib for p in summaries["g1"].iter("prompt")] == [
        {"promptid": "1", "keypress": "1"}]
    assert [p.attrib for p in summaries["o2"].iter("prompt")] == [
        {"promptid": "7", "keypress": ""}]

    # Call events: answer, key press (menus that capture one), hang-up, in that order.
    for callid, key in (("g1", "1"), ("g2", "2"), ("o1", None), ("o2", None)):
        events = receiver.of(callid, "/events")
        assert [p.event_type for p in events] == (
            ["campaign.answer", "campaign.keypress", "campaign.hangup"] if key else
            ["campaign.answer", "campaign.hangup"]), callid
        assert events[0].root.tag == "campaign" and events[0].root.attrib["action"] == "4"
        assert events[-1].root.attrib["action"] == "5"
        # Posted as it happened: the answer while the message played (o2's is 4.3 s), not
        # with the hang-up.
        if callid == "o2":
            assert events[-1].at - events[0].at > 3.0, [(p.event_type, p.at) for p in events]
        if key:
            assert events[1].root.tag == "prompt"
            assert events[1].root.attrib == {"menuid": "glob", "callid": callid,
                                             "promptid": "1", "keypress": key}
            assert events[0].root.attrib["callerid"] == "8185550000"
    assert receiver.of("b1", "/events") == []
    assert receiver.bad == 0

    # The call query tells the same.
    reply = await live.post('<campaign action="3" menuid="own"/>')
    assert [(el.attrib["callid"], el.attrib["status"]) for el in reply.root.iter("phonenumber")
            ] == [("o1", "Successful"), ("o2", "Successful"), ("b1", "Busy")]
    assert callees.rang[busy] == 1


async def test_pause_holds_calls_delete_and_resume(
    pool: asyncpg.Pool, xmlapi: TestClient, campaigns: Campaigns, callees: Callees,
    receiver: Receiver, dialer_worker: DialerWorker,
) -> None:
    # Calling hours closed while the calls are sent and paused: nothing can slip through.
    accounts = Accounts(pool)
    new = await accounts.create(name="pause", hours=hours_excluding_now())
    receiver.secrets.append(new.webhook_secret)
    menu = await campaigns.create_menu(new.account, "p-1",
                                       summary_url=f"{receiver.url}/summary")
    client = Client(new, xmlapi, menu)
    numbers = [callees.listener() for _ in range(3)]
    reply = await client.post(
        '<campaign menuid="p-1" action="0"><prompts><prompt promptid="1" tts="Hello."/>'
        "</prompts><phonenumbers>" + "".join(
            f'<phonenumber number="{n}" callid="p{i}"/>' for i, n in enumerate(numbers))
        + "</phonenumbers></campaign>")
    assert reply.errorid == 0, reply.comment
    reply = await client.post('<campaign menuid="p-1" action="7"/>')
    assert (reply.errorid, reply.root.attrib["paused"]) == (0, "3")

    await accounts.set_hours(new.account, (0, 1440))  # open: only the pause holds them now
    await asyncio.sleep(1.5)  # the worker polls every 0.25 s
    assert sum(callees.rang[n] for n in numbers) == 0
    reply = await client.post('<campaign action="3" menuid="p-1"/>')
    assert {el.attrib["status"] for el in reply.root.iter("phonenumber")} == {"Paused"}

    reply = await client.post('<campaign action="2" menuid="p-1"><phonenumbers>'
                              '<phonenumber callid="p1"/></phonenumbers></campaign>')
    assert reply.root.attrib["deleted"] == "1"
    reply = await client.post('<campaign menuid="p-1" action="8"/>')
    assert (reply.errorid, reply.root.attrib["pending"]) == (0, "2")

    await asyncio.wait_for(asyncio.gather(callees.heard[numbers[0]],
                                          callees.heard[numbers[2]]), 30)
    summaries = await receiver.summaries(["p0", "p2"])
    assert {s.attrib["status"] for s in summaries.values()} == {"Successful"}
    reply = await client.post('<campaign action="3" menuid="p-1"/>')
    assert [(el.attrib["callid"], el.attrib["status"]) for el in reply.root.iter("phonenumber")
            ] == [("p0", "Successful"), ("p1", "Deleted"), ("p2", "Successful")]
    assert callees.rang[numbers[1]] == 0 and receiver.of("p1") == []


async def test_a_scheduled_call_waits_for_its_time(
    pool: asyncpg.Pool, xmlapi: TestClient, campaigns: Campaigns, callees: Callees,
    receiver: Receiver, dialer_worker: DialerWorker,
) -> None:
    new = await Accounts(pool).create(name="later")
    receiver.secrets.append(new.webhook_secret)
    menu = await campaigns.create_menu(new.account, "s-1", summary_url=f"{receiver.url}/summary")
    client = Client(new, xmlapi, menu)
    later, now = callees.listener(), callees.listener()
    at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    reply = await client.post(
        '<campaign menuid="s-1" action="0"><prompts><prompt promptid="1" tts="Later."/>'
        f'</prompts><phonenumbers><phonenumber number="{later}" callid="s1" '
        f'dateandtime="{at:%Y-%m-%dT%H:%M:%S}Z"/><phonenumber number="{now}" callid="s2"/>'
        "</phonenumbers></campaign>")
    assert reply.errorid == 0, reply.comment
    reply = await client.post('<campaign action="3" menuid="s-1"><phonenumbers>'
                              '<phonenumber callid="s1"/></phonenumbers></campaign>')
    (waiting,) = (el.attrib for el in reply.root.iter("phonenumber"))
    assert (waiting["status"], waiting["comment"], waiting["dateandtime"]) == (
        "Pending", "Scheduled", render.when(at))

    await asyncio.wait_for(callees.heard[now], 30)
    assert callees.rang[later] == 0, "dialled before its dateandtime"
    await asyncio.wait_for(callees.heard[later], 30)
    summaries = await receiver.summaries(["s1", "s2"])
    assert {s.attrib["status"] for s in summaries.values()} == {"Successful"}
    started = await pool.fetchval(
        "SELECT d.started_at FROM campaign_calls c JOIN dialer_calls d USING (message_id)"
        " WHERE c.menu_pk = $1 AND c.callid = 's1'", menu.pk)
    assert started >= at, (started, at)
