"""baresip, a real SIP softphone, as a caller: `ivr softphone call` and the test suite's
softphone are this one driver.

baresip runs headless on a config of its own (a temporary folder given with `-f`, so it needs
no home directory or login session): its microphone is a WAV file (then silence), its speaker
a WAV file, no sound device; it registers nothing and calls through the development account
(IVR_SOFTPHONE_USER / IVR_SOFTPHONE_PASSWORD) on Asterisk's UDP 127.0.0.1:5060. It is driven
over its TCP control socket (netstrings of JSON): commands in, call events out. Keys go as
RFC 4733 telephone events, one at a time with a gap, so Asterisk sees each press."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

from ivr.core.errors import InvalidParameter, IvrError

ASTERISK_SIP = "127.0.0.1:5060"
KEY_GAP = 0.25  # seconds from one key to the next: each is its own telephone event
PAUSE = 1.0  # seconds a `w` or `,` in the keys waits
KEYS = frozenset("0123456789*#ABCD")
PAUSES = frozenset("w,")
MODULES = "/usr/lib/baresip/modules"
_DTMF = re.compile(r"(DTMF digit[^:\n]*: )'.'")


class SoftphoneError(IvrError):
    """baresip could not be started, or its call did not go through."""

    error_id = "softphone_error"


def parse_keys(keys: str) -> list[str | float]:
    """`keys` as the steps to take: a key to press (0-9 * # A-D) or a pause in seconds (each
    `w` or `,`). Anything else is refused, naming the first character that is not a key."""
    steps: list[str | float] = []
    for char in keys:
        if char.lower() in PAUSES:
            steps.append(PAUSE)
        elif char.upper() in KEYS:
            steps.append(char.upper())
        else:
            raise InvalidParameter("keys", f"--keys: {char!r} is not a key (0-9 * # A-D) or a "
                                   "pause (w or ,)")
    return steps


class Softphone:
    """One baresip process calling from the development softphone account. `speech` is what
    its microphone says from the moment a call is answered: once, then silence (or over and
    over, with `repeat`); silence throughout without it. What it heard (its last call) is
    written to `heard` when it stops, if given."""

    def __init__(self, user: str, password: str, speech: Path | None = None, *,
                 repeat: bool = False, heard: Path | None = None, seconds: float = 30,
                 server: str = ASTERISK_SIP, listen: str = "127.0.0.1", tls: bool = False,
                 srtp: bool = False, cafile: Path | None = None) -> None:
        # server: Asterisk's ADDRESS:PORT (its TLS port with `tls`); srtp: SDES SRTP demanded
        # (mediaenc=srtp-mand); cafile: what signed Asterisk's certificate (checked with it).
        self.server, self.listen, self.tls, self.srtp, self.cafile = (
            server, listen, tls, srtp, cafile)
        self.user = user
        self.password = password
        self.speech = speech
        self.repeat = repeat
        self.seconds = seconds  # how long the microphone file runs (speech, then silence)
        self.dir = Path(tempfile.mkdtemp(prefix="baresip-"))
        self.heard = heard
        self.ctrl_port = _free_port()
        self.sip_port = _free_sip_port(listen)
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.events: list[dict[str, object]] = []

    def _write_config(self) -> None:
        # No sound device: the microphone is a file (aufile) and what is heard is written by
        # sndfile (dump-*-dec.wav in snd_path; aufile cannot play in this baresip).
        # baresip ends the call when its microphone file ends: the file lasts `seconds`
        # (speech then silence, speech repeated, or silence), at the call's rate.
        mic = self.dir / "speech.wav"
        seconds = str(self.seconds)
        if self.speech is None:
            source, effects = ["-n"], ["trim", "0", seconds]
        elif self.repeat:
            source, effects = [str(self.speech)], ["repeat", "-", "trim", "0", seconds]
        else:
            source, effects = [str(self.speech)], ["pad", "0", seconds]
        sox = subprocess.run(["sox", *source, "-r", "8000", "-c", "1", "-b", "16", str(mic),
                              *effects], capture_output=True, text=True)
        if sox.returncode != 0:
            raise SoftphoneError(f"cannot read {self.speech}: {sox.stderr.strip()}")
        (self.dir / "config").write_text(
            f"""poll_method epoll
sip_listen {self.listen}:{self.sip_port}
audio_player aufile,/dev/null
audio_source aufile,{mic}
audio_alert aufile,/dev/null
module_path {MODULES}
module stdio.so
module g711.so
module aufile.so
module sndfile.so
snd_path {self.dir}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
rtp_ports 30000-30999
""" + ("module srtp.so\n" if self.srtp else "")
            + (f"sip_cafile {self.cafile}\n" if self.cafile else "")
        )
        (self.dir / "accounts").write_text(
            f"<{self._uri(self.user)}>;auth_pass={self.password};"
            "regint=0;audio_codecs=PCMU" + (";mediaenc=srtp-mand" if self.srtp else "") + "\n"
        )
        (self.dir / "accounts").chmod(0o600)

    def _uri(self, user: str) -> str:
        return f"sip:{user}@{self.server}" + (";transport=tls" if self.tls else "")

    async def start(self) -> None:
        if shutil.which("baresip") is None:
            raise SoftphoneError("baresip is not installed (apt-get install baresip-core)")
        self._write_config()
        for attempt in range(3):
            if await self._launch():
                self._events_task = asyncio.get_running_loop().create_task(self._read_events())
                return
            if "Address already in use" not in self.log() or attempt == 2:
                break
            # A port it wanted was taken between our check and its bind (the machine's
            # other sockets come and go): again, on other ports.
            self.ctrl_port, self.sip_port = _free_port(), _free_sip_port(self.listen)
            self._write_config()
        raise SoftphoneError(f"baresip did not open its control port; log: {self.log()}")

    async def _launch(self) -> bool:
        self.proc = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(self.dir), stdin=subprocess.DEVNULL,
            stdout=(self.dir / "baresip.log").open("wb"), stderr=subprocess.STDOUT,
        )
        for _ in range(100):
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port)
                return True
            except OSError:
                if self.proc.returncode is not None:
                    return False
                await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        return False

    async def _read_events(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:
                length = int((await self._reader.readuntil(b":"))[:-1])
                payload = await self._reader.readexactly(length + 1)
                self.events.append(orjson.loads(payload[:-1]))
                self._changed.set()
        self._changed.set()  # the socket closed: nothing more will come

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        body = orjson.dumps({"command": command, "params": params, "token": command})
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    def saw(self, event_type: str) -> bool:
        return any(e.get("type") == event_type for e in self.events)

    async def wait_for(self, event_type: str, timeout: float) -> bool:
        """Until baresip reports `event_type` (CALL_ESTABLISHED, CALL_CLOSED, ...); False when
        `timeout` seconds pass first or baresip has gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.saw(event_type):
            if self._events_task is None or self._events_task.done():
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            if loop.time() >= deadline:
                return self.saw(event_type)
        return True

    async def dial(self, number: str, timeout: float = 15) -> None:
        """Call `number` on Asterisk; returns once the other side has answered."""
        await self.command("dial", self._uri(number))
        if not await self.wait_for("CALL_ESTABLISHED", timeout):
            closed = next((e for e in self.events if e.get("type") == "CALL_CLOSED"), None)
            why = f"it ended: {closed.get('param')}" if closed else f"not in {timeout:.0f} s"
            raise SoftphoneError(f"the call to {number} was not answered ({why}); "
                                 f"baresip's log: {self.log()}")

    async def press(self, keys: str) -> None:
        """Key `keys` (see parse_keys) into the call, stopping early if the call ends."""
        for step in parse_keys(keys):
            if self.saw("CALL_CLOSED"):
                return
            if isinstance(step, str):
                await self.command("sndcode", step)
                await asyncio.sleep(KEY_GAP)
            else:
                await asyncio.sleep(step)

    async def hangup(self) -> None:
        await self.command("hangup")
        await self.wait_for("CALL_CLOSED", 5)

    def log(self) -> str:
        """The end of baresip's log, without the keys it sent (they are PINs)."""
        path = self.dir / "baresip.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return _DTMF.sub(r"\1'?'", text)[-3000:]

    async def stop(self) -> None:
        """Quit baresip (it writes out what it heard) and remove its folder."""
        if self.proc and self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.command("quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._writer is not None:
            self._writer.close()
        if self._events_task is not None:
            self._events_task.cancel()
        heard = sorted(self.dir.glob("dump-*-dec.wav"))  # one per call, by start time
        if heard and self.heard is not None:
            shutil.move(heard[-1], self.heard)
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _free_sip_port(address: str = "127.0.0.1") -> int:
    """A port P for baresip's sip_listen: it binds UDP and TCP on P and TLS (TCP) on P + 1,
    and this baresip cannot be told to skip TLS, so all three must be free."""
    for _ in range(50):
        port = _free_port(address)
        try:
            with socket.socket() as tcp_next, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp_next.bind((address, port + 1))
                udp.bind((address, port))
        except OSError:
            continue
        return port
    raise SoftphoneError("no free port pair for baresip")


def caller(user: str, password: str, keys: str = "", *, say: Path | None = None,
           record: Path | None = None, seconds: float = 60) -> Softphone:
    """The softphone of `ivr softphone call`, once its arguments are checked (bad ones are
    refused before anything starts)."""
    parse_keys(keys)
    if say is not None and not say.is_file():
        raise InvalidParameter("say", f"--say: no such file {say}")
    if record is not None and not record.resolve().parent.is_dir():
        raise InvalidParameter("record", f"--record: no such folder {record.parent}")
    # The microphone runs a little past the call's end: baresip hangs up when it ends.
    return Softphone(user, password, say, repeat=True,
                     heard=record.resolve() if record else None, seconds=seconds + 5)


async def call(phone: Softphone, number: str, keys: str = "", *, seconds: float = 60,
               report: Callable[[str], None] = print) -> bool:
    """`ivr softphone call`: dial `number`, key `keys` once answered, until the other side
    hangs up or `seconds` pass (then hang up). True when the other side ended the call."""
    loop = asyncio.get_running_loop()
    try:
        await phone.start()
        report(f"calling sip:{number}@{ASTERISK_SIP} as {phone.user}")
        await phone.dial(number)
        answered = loop.time()
        # The keys are counted, never shown: they are PINs and passwords.
        presses = sum(isinstance(step, str) for step in parse_keys(keys))
        report(f"answered; keying {presses} key(s)")
        keying = asyncio.create_task(phone.press(keys))
        ended = await phone.wait_for("CALL_CLOSED", seconds)
        keying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keying
        took = loop.time() - answered
        if ended:
            report(f"the other side hung up after {took:.1f} s")
        else:
            await phone.hangup()
            report(f"hung up after {took:.1f} s")
    finally:
        await phone.stop()
    if phone.heard is not None and phone.heard.exists():
        report(f"what the softphone heard: {phone.heard}")
    return ended
