"""The FastAGI face without Asterisk: a scripted Asterisk connects to the engine's AgiServer
and answers its commands line by line (tests/phone/test_agi.py has the real calls). What is
checked here: which commands a flow's steps become (barge-in, keys kept for the next step, a
prompt without barge-in resumed where a key cut it), hang-ups in mid-command, and what the
server does with input that is not Asterisk's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.core.errors import CallHungUp
from ivr.telephony import latency
from ivr.telephony.agi import parse_reply
from ivr.telephony.agi_call import AgiCall
from ivr.telephony.agi_server import AgiServer
from ivr.telephony.runner import Route

HEADERS = ("agi_network: yes\nagi_network_script: test\nagi_request: agi://127.0.0.1/test\n"
           "agi_uniqueid: 1700000000.1\nagi_callerid: 5551230000\nagi_calleridname: unknown\n"
           "agi_extension: s\nagi_arg_1: 7001\n\n")


class Asterisk:
    """Connects like Asterisk's AGI() and answers each command with the next scripted line
    (a callable gets the command)."""

    def __init__(self, answers: list[str | Callable[[str], str]]) -> None:
        self.answers = answers
        self.commands: list[str] = []

    async def run(self, port: int, headers: str = HEADERS) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(headers.encode())
        while True:
            line = await reader.readline()
            if not line:
                break
            command = line.decode().strip()
            self.commands.append(command)
            answer = self.answers.pop(0) if self.answers else "200 result=0"
            writer.write(((answer(command) if callable(answer) else answer) + "\n").encode())
        writer.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    servers: list[AgiServer] = []

    async def serve(flow: Any) -> AgiServer:
        async def choose(path: str, call: AgiCall) -> Route | None:
            return Route("test", flow) if path == "test" else None

        server = AgiServer(("127.0.0.1", 0), choose, None, tmp_path, allowed=frozenset())
        await server.start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        await server.close()


def test_replies_are_read() -> None:
    assert parse_reply("200 result=49 endpos=800") == parse_reply("200 result=49  endpos=800")
    reply = parse_reply("200 result=35 (dtmf) endpos=4000")
    assert (reply.result, reply.data, reply.endpos) == (35, "dtmf", 4000)
    assert parse_reply("511 Command Not Permitted on a dead channel").code == 511


async def test_barge_in_and_keys_kept(served: Callable[..., Any]) -> None:
    got: list[Any] = []

    async def flow(call: AgiCall) -> None:
        got.append((call.caller_id, call.caller_name, call.dialed, call.id))
        call.say("sound:welcome", "digits:12")  # a key stops both
        got.append(await call.next_digit(5))
        await call.say("sound:http://127.0.0.1:8080/p.wav?v=1", barge_in=False)
        got.append(await call.next_digit(5))  # kept from the prompt, which went on
        got.append(await call.next_digit(2.5))

    def prompts_after_keys() -> float:
        return next(s.value for m in latency.KEYPRESS_TO_PROMPT.collect() for s in m.samples
                    if s.name.endswith("_count"))

    before = prompts_after_keys()
    server = await served(flow)
    asterisk = Asterisk(["200 result=49 endpos=100", "200 result=50 endpos=800",
                         "200 result=0 endpos=9000", "200 result=0", "200 result=1"])
    await asyncio.wait_for(asterisk.run(server.port), 5)
    assert got == [("5551230000", "", "7001", "1700000000.1"), "1", "2", None]
    keys = '"0123456789*#"'
    assert asterisk.commands == [
        f'STREAM FILE "welcome" {keys}',
        f'STREAM FILE "http://127.0.0.1:8080/p.wav?v=1" {keys}',
        f'STREAM FILE "http://127.0.0.1:8080/p.wav?v=1" {keys} 800',
        "WAIT FOR DIGIT 2500", "HANGUP"]
    assert prompts_after_keys() == before + 1  # the key on "welcome", then the next prompt


async def test_a_hang_up_mid_command_ends_the_flow(served: Callable[..., Any]) -> None:
    ended: list[str] = []

    async def flow(call: AgiCall) -> None:
        try:
            await call.next_digit(5)
        except CallHungUp:
            ended.append("hung up")
            raise

    server = await served(flow)
    asterisk = Asterisk(["HANGUP\n200 result=-1"])
    await asyncio.wait_for(asterisk.run(server.port), 5)
    assert ended == ["hung up"]
    assert asterisk.commands == ["WAIT FOR DIGIT 5000"]  # no HANGUP to a channel gone


async def test_a_take_cut_by_a_hang_up_is_a_result(served: Callable[..., Any]) -> None:
    results: list[Any] = []

    async def flow(call: AgiCall) -> None:
        live = await call.start_recording("take-1-2-abc", max_duration=30, max_silence=5)
        results.append(await live.finished())
        await call.answer()  # the call is gone: CallHungUp, no command

    server = await served(flow)
    asterisk = Asterisk(["200 result=-1 (hangup) endpos=16000"])
    await asyncio.wait_for(asterisk.run(server.port), 5)
    assert asterisk.commands == [
        'RECORD FILE "/var/spool/asterisk/recording/take-1-2-abc" wav "#" 30000 0 s=5',
        "NOOP"]  # answered once Asterisk has closed the take
    assert results[0].hung_up and results[0].duration == 2.0 and results[0].ok


async def test_a_dead_channel_is_a_hang_up(served: Callable[..., Any]) -> None:
    caught: list[str] = []

    async def flow(call: AgiCall) -> None:
        try:
            await call.answer()
        except CallHungUp:
            caught.append("hung up")
            raise

    server = await served(flow)
    asterisk = Asterisk(["511 Command Not Permitted on a dead channel or intercept routine"])
    await asyncio.wait_for(asterisk.run(server.port), 5)
    assert caught == ["hung up"] and asterisk.commands == ["ANSWER"]


@pytest.mark.parametrize("headers", ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "agi_x: 1\n",
                                     "agi_network_script: nowhere\n\n"])
async def test_what_is_not_a_route_is_closed(served: Callable[..., Any], headers: str) -> None:
    async def flow(call: AgiCall) -> None:
        raise AssertionError("no flow runs")

    server = await served(flow)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(headers.encode())
    if not headers.endswith("\n\n"):
        writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing sent
    writer.close()
    assert not server.calls


def test_who_may_connect(tmp_path: Path) -> None:
    async def choose(path: str, call: AgiCall) -> Route | None:
        return None

    server = AgiServer(("0.0.0.0", 0), choose, None, tmp_path, allowed=frozenset({"10.1.2.3"}))
    assert server._allowed_peer(("127.0.0.1", 5000)) and server._allowed_peer(("::1", 5000))
    assert server._allowed_peer(("10.1.2.3", 5000))
    assert server._allowed_peer(("::ffff:10.1.2.3", 5000, 0, 0))
    assert not server._allowed_peer(("10.1.2.4", 5000))
    assert not server._allowed_peer(None)
