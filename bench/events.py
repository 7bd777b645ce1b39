"""ARI event routing: an event stream shaped like Asterisk's (key presses, playbacks starting
and finishing, variables set, events for channels nobody owns) replayed through a loopback
websocket, in a separate process, into the engine's real EventStream -> Router -> Call objects,
with a task per call waiting on its key presses as a flow does.

Two phases: a flood (as fast as the sender can write: events per second routed) and a paced
stream (a fixed rate well above what the load steps produce: routing delay, from the sender
writing an event to its call having taken it in, p50/p99).

    python -m bench.events serve PORT COUNT RATE   (the sender; RATE 0 = flood)"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ivr.telephony.call import Call
from ivr.telephony.events import Event, EventStream, Router
from ivr.telephony.rest import AriClient

CALLS = 400
APP = "ivr-bench"


def _channel(i: int) -> dict[str, Any]:
    cid = f"bench-{i:06d}.{i}"
    return {
        "id": cid, "name": f"PJSIP/loadgen-{i:08x}", "state": "Up",
        "protocol_id": f"{i:032x}@127.0.0.1",
        "caller": {"name": "", "number": f"1555{i:07d}"}, "connected": {"name": "", "number": ""},
        "accountcode": "", "dialplan": {"context": "ivr-inbound", "exten": "15550100",
                                        "priority": 1, "app_name": "Stasis",
                                        "app_data": "ivr,inbound,15550100"},
        "creationtime": "2026-01-01T00:00:00.000+0000", "language": "en",
    }


def stream(count: int) -> list[str]:
    """`count` events (as JSON text without their opening brace), cycling over the calls."""
    out = []
    stamp = "2026-01-01T00:00:00.000+0000"
    channels = [_channel(i) for i in range(CALLS)]
    for n in range(count):
        i = n % CALLS
        ch = channels[i]
        kind = (n // CALLS) % 6
        base: dict[str, Any] = {"asterisk_id": "02:42:ac:11:00:02", "application": "ivr",
                                "timestamp": stamp}
        if n % 20 == 19:  # a channel of no call of ours (another app's, one that just ended)
            event = {"type": "ChannelVarset", "variable": "RTPAUDIOQOS", "value": "x",
                     "channel": {**ch, "id": f"gone-{n}"}, **base}
        elif kind == 0:
            event = {"type": "ChannelDtmfReceived", "digit": "1", "duration_ms": 100,
                     "channel": ch, **base}
        elif kind in (1, 2):
            pb = {"id": f"{ch['id']}-p{n}", "media_uri": "sound:http://127.0.0.1:8080/x.wav",
                  "target_uri": f"channel:{ch['id']}", "language": "en",
                  "state": "playing" if kind == 1 else "done"}
            event = {"type": "PlaybackStarted" if kind == 1 else "PlaybackFinished",
                     "playback": pb, **base}
        elif kind == 3:
            event = {"type": "ChannelVarset", "variable": "PLAYBACKSTATUS", "value": "SUCCESS",
                     "channel": ch, **base}
        elif kind == 4:
            rec: dict[str, Any] = {"name": f"take-{n:032x}", "format": "wav",
                                   "state": "recording",
                   "target_uri": f"channel:{ch['id']}"}
            event = {"type": "RecordingStarted", "recording": rec, **base}
        else:
            rec = {"name": f"take-{n:032x}", "format": "wav", "state": "done", "duration": 5,
                   "talking_duration": 4, "silence_duration": 1,
                   "target_uri": f"channel:{ch['id']}"}
            event = {"type": "RecordingFinished", "recording": rec, **base}
        out.append(orjson.dumps(event).decode()[1:])
    return out


# --- the sender (its own process) ----------------------------------------------------------
def serve(port: int, count: int, rate: float) -> None:
    events = stream(count)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        now = time.monotonic
        if rate <= 0:
            for body in events:
                await ws.send_str(f'{{"bench_sent":{now():.6f},{body}')
        else:
            tick = 0.005
            per_tick = max(1, round(rate * tick))
            start = now()
            for k in range(0, len(events), per_tick):
                delay = start + (k / per_tick) * tick - now()
                if delay > 0:
                    await asyncio.sleep(delay)
                for body in events[k:k + per_tick]:
                    await ws.send_str(f'{{"bench_sent":{now():.6f},{body}')
        await ws.send_str('{"type":"BenchEnd","bench_sent":0}')
        await ws.receive()  # until the client goes
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the receiver: the engine's own event layer ----------------------------------------------
async def _phase(count: int, rate: float) -> dict[str, Any]:
    from bench.api import free_port

    port = free_port()
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.events", "serve", str(port), str(count), str(rate))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    delays = array("d")
    received = [0.0, 0.0]
    router = Router(lambda event: None)
    now = time.monotonic

    def dispatch(event: Event) -> None:
        if event["type"] == "BenchEnd":
            if not done.done():
                done.set_result(None)
            return
        router.dispatch(event)
        t = now()
        if not delays:
            received[0] = t
        received[1] = t
        delays.append(t - event["bench_sent"])

    async with aiohttp.ClientSession() as session:
        ari = AriClient(session, "http://127.0.0.1:1")  # never asked: no step runs here
        calls = [Call(ari, _channel(i), []) for i in range(CALLS)]
        for call in calls:
            router.register(call.id, call.feed)

        async def flow(call: Call) -> None:
            while True:
                await call.next_digit(3600)

        flows = [asyncio.ensure_future(flow(c)) for c in calls]
        events = EventStream(session, f"ws://127.0.0.1:{port}/ari/events", [APP], dispatch)
        for _ in range(100):  # the sender's port opens within a second or so
            try:
                async with session.get(f"http://127.0.0.1:{port}/"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        events.start()
        try:
            await asyncio.wait_for(done, 120)
        finally:
            await events.stop()
            for task in flows:
                task.cancel()
            sender.terminate()
            await sender.wait()
    ordered = sorted(delays)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    span = received[1] - received[0]
    return {"events": len(delays), "routed": router.routed, "unrouted": router.unrouted,
            "events_per_s": round(len(delays) / span) if span > 0 else None,
            "delay_p50_ms": pct(0.5), "delay_p99_ms": pct(0.99), "delay_max_ms": pct(1.0)}


async def run(flood_count: int = 100_000, paced_rate: float = 5000,
              paced_seconds: float = 10) -> dict[str, Any]:
    return {"flood": await _phase(flood_count, 0),
            "paced": {"rate": paced_rate,
                      **await _phase(int(paced_rate * paced_seconds), paced_rate)}}


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        print(orjson.dumps(asyncio.run(run()), option=orjson.OPT_INDENT_2).decode())
