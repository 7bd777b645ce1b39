"""FastAGI, the wire: Asterisk's `AGI(agi://host:port/ROUTE,ARGS)` connects to us, sends the
channel's variables (`agi_*: value` lines, then a blank line) and runs the commands we write,
one at a time, each answered by one line (`200 result=N [(data)] [endpos=N]`).

Written here rather than taken from panoramisk (which the design first named): its server loops
forever on a connection closed before the blank line, reads headers without bound, and reads
the `HANGUP` line Asterisk sends when the caller hangs up as a command's answer. This module
reads at most `MAX_HEADERS` bytes of variables within `HEADER_TIMEOUT` seconds, skips `HANGUP`
lines (the channel is then gone) and turns 511 (dead channel) and a closed socket into
CallHungUp."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from ivr.core.errors import CallHungUp, TelephonyError

log = logging.getLogger(__name__)

MAX_HEADERS = 16 * 1024
HEADER_TIMEOUT = 10.0
# A command that blocks on the caller (RECORD FILE, WAIT FOR DIGIT) answers when it ends; no
# answer at all in this long means Asterisk is gone.
_REPLY_TIMEOUT = 3600.0
_REPLY = re.compile(r"^(\d{3})[ -](?:result=(-?\d+))?\s*(?:\((.*?)\))?\s*(?:endpos=(-?\d+))?")


class AgiError(TelephonyError):
    """Asterisk refused a command (not a hang-up): a usage error or an unknown command."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    result: int
    data: str = ""
    endpos: int | None = None


def parse_reply(line: str) -> Reply:
    match = _REPLY.match(line)
    if match is None:
        raise AgiError(f"unreadable AGI answer: {line[:80]!r}")
    code, result, data, endpos = match.groups()
    return Reply(int(code), int(result) if result is not None else 0, data or "",
                 int(endpos) if endpos is not None else None)


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """The `agi_*` variables up to the blank line; TelephonyError on anything else (a port
    scanner, a client that is not Asterisk, a connection closed half way)."""
    headers: dict[str, str] = {}
    size = 0
    async with asyncio.timeout(HEADER_TIMEOUT):
        while True:
            line = await reader.readline()
            size += len(line)
            if size > MAX_HEADERS:
                raise TelephonyError(f"AGI variables longer than {MAX_HEADERS} bytes")
            if not line.endswith(b"\n"):
                raise TelephonyError("the connection closed before the AGI variables ended")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                break
            key, sep, value = text.partition(": ")
            if not sep or not key.startswith("agi_"):
                raise TelephonyError(f"not an AGI variable line: {text[:60]!r}")
            headers[key] = value
    if "agi_network_script" not in headers and "agi_request" not in headers:
        raise TelephonyError("no agi_request among the AGI variables")
    return headers


def quote(arg: str) -> str:
    """One command argument, as Asterisk's parser reads it."""
    if any(c in arg for c in "\r\n\0"):
        raise AgiError("an AGI argument cannot hold a line break")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiChannel:
    """One FastAGI connection: `command()` sends a line and returns its answer, one command
    at a time; `gone` once the caller has hung up (or the connection closed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self.gone = False

    async def command(self, line: str, *, dead_ok: bool = False) -> Reply:
        """`dead_ok`: sent even once the caller has hung up (Asterisk still runs commands
        such as NOOP on a dead channel until the connection closes)."""
        async with self._lock:
            if self.gone and not dead_ok:
                raise CallHungUp("the AGI channel hung up")
            try:
                self._writer.write(line.encode() + b"\n")
                await self._writer.drain()
                reply = await self._reply()
            except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self.gone = True
                raise CallHungUp("the AGI connection closed") from exc
            if reply.code == 511:  # "Command Not Permitted on a dead channel"
                self.gone = True
                raise CallHungUp("the AGI channel hung up")
            if reply.code != 200:
                raise AgiError(f"Asterisk refused {line.split(' ', 2)[:2]}: {reply.code}")
            return reply

    async def _reply(self) -> Reply:
        async with asyncio.timeout(_REPLY_TIMEOUT):
            while True:
                raw = await self._reader.readline()
                if not raw.endswith(b"\n"):
                    raise ConnectionError("closed")
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if text == "HANGUP":  # the caller hung up; the command's answer follows
                    self.gone = True
                    continue
                if text.startswith("100") or not text:  # "100 result=0 Trying..."
                    continue
                if text.startswith("520-"):  # usage text, up to "520 End of proper usage."
                    while not text.startswith("520 "):
                        text = (await self._reader.readline()).decode("utf-8", "replace")
                        if not text:
                            raise ConnectionError("closed")
                    raise AgiError("AGI usage error")
                return parse_reply(text)

    async def close(self) -> None:
        self.gone = True
        if self._writer.is_closing():
            return
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
