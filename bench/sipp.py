"""SIPp as the benchmark's caller (`--caller sipp`, the default; bench/README.md): an independent
UAC in a network namespace of its own, reached over a veth, so Asterisk's CPU per call is the
callee leg only and SIPp's CPU is measured apart. It plays bench/sipp-caller.xml, the script of
dialplan/loadgen.conf: the speech and the key presses as RTP from pcaps (bench/sipp_media.py),
one caller id per call from a CSV (field0). Asterisk knows it as the trunk `sipp`, by SIPp's
address alone (AsteriskConfig.sipp: a transport and RTP on the host's end of the veth).

The addresses are fixed (ADDRESSES), so the benchmark's Asterisk configuration is the same from
one run to the next; the namespace and veth exist only while the benchmark runs, and a left-over
pair from a run that died is removed first."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import sipp_media, wire

# The host's end of the veth (Asterisk's SIP and RTP for SIPp) and SIPp's: outside the
# 10.200-249.x.y the tests' namespaces use (tests/helpers/netns.py).
ADDRESSES = ("10.199.25.1", "10.199.25.2")
SCENARIO = Path(__file__).with_name("sipp-caller.xml")
MEDIA_PORT = 20000  # SIPp's first RTP port (each call its own: [auto_media_port])

def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout

@dataclass
class Namespace:
    """SIPp's namespace and the veth to it, made by `up`, removed by `close`."""

    name: str = field(default_factory=lambda: f"ivr-bench-{os.getpid()}")
    host_end: str = field(default_factory=lambda: f"vbench{os.getpid()}a")
    peer_end: str = field(default_factory=lambda: f"vbench{os.getpid()}b")

    def up(self) -> None:
        listen, peer = ADDRESSES
        for line in ip("-o", "-4", "addr", "show").splitlines():
            if f" {listen}/" in line:  # a left-over of a run that died: it holds the address
                ip("link", "del", line.split()[1].split("@")[0], check=False)
        ip("netns", "add", self.name)
        ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        ip("link", "add", self.host_end, "type", "veth", "peer", "name", self.peer_end)
        ip("link", "set", self.peer_end, "netns", self.name)
        ip("addr", "add", f"{listen}/30", "dev", self.host_end)
        ip("link", "set", self.host_end, "up")
        ip("netns", "exec", self.name, "ip", "addr", "add", f"{peer}/30", "dev", self.peer_end)
        ip("netns", "exec", self.name, "ip", "link", "set", self.peer_end, "up")

    def close(self) -> None:
        ip("link", "del", self.host_end, check=False)
        ip("netns", "del", self.name, check=False)

@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    ns = Namespace()
    try:
        ns.up()
        yield ns
    finally:
        ns.close()

def script_seconds(script: dict[str, str]) -> dict[str, float]:
    """The waits of dialplan/loadgen.conf's script (its LOADGEN_* variables, bench/calls.py)."""
    return {name: float(script[f"LOADGEN_{name.upper()}"])
            for name in ("wait", "review", "next", "hold")}


def scenario(takes: int, script: dict[str, float], waits: dict[str, int]) -> str:
    """bench/sipp-caller.xml with the waits (ms after starting each file) filled in and one
    block per take."""
    head, block, tail = SCENARIO.read_text().split("<!-- TAKE -->\n")
    blocks = [string.Template(block).substitute(
        take=take, **{f"{kind}_wait": waits[f"{kind}_{take}"]
                      for kind in ("speech", "hash", "keep")})
        for take in range(1, takes + 1)]
    return string.Template(head + "".join(blocks) + tail).substitute(
        hold=round(script["hold"] * 1000))


@dataclass
class CallerRun:
    """What one step's SIPp run did and cost."""

    successful: int = 0
    failed: int = 0
    cpu_seconds: float = 0.0
    exit_status: int = 0
    errors: list[str] = field(default_factory=list)  # the last lines of SIPp's error log
    capture: dict[str, Any] = field(default_factory=dict)  # tcpdump's CPU, packets
    wire_latency_ms: dict[str, Any] = field(default_factory=dict)

@dataclass
class SippCaller:
    """Places a step's calls with SIPp from `ns`, the RTP captured (bench/wire.py)."""

    ns: Namespace
    folder: Path  # the pcaps and the scenario, made once by `prepare`
    prompts: dict[str, Path]  # prompt name -> file, for the wire latency
    sip_port: int = 5060

    @classmethod
    def prepare(cls, ns: Namespace, speech: Path, takes: int, script: dict[str, float],
                prompts: dict[str, Path], sip_port: int = 5060) -> SippCaller:
        folder = Path(tempfile.mkdtemp(prefix="ivr-bench-sipp-"))
        waits = sipp_media.write_call(folder, speech, takes, script)
        (folder / "caller.xml").write_text(scenario(takes, script, waits))
        return cls(ns, folder, prompts, sip_port)

    async def run(self, number: str, caller_ids: list[str], cps: float,
                  deadline_s: float) -> CallerRun:
        """All of `caller_ids` calling `number` at `cps` calls per second; returns when SIPp
        is done (killed at `deadline_s`: what was still up counts as failed)."""
        tag = f"{number}-{caller_ids[0]}"
        (self.folder / f"callers-{tag}.csv").write_text(
            "SEQUENTIAL\n" + "".join(f"{c};\n" for c in caller_ids))
        listen, peer = ADDRESSES
        n = len(caller_ids)
        argv = ["ip", "netns", "exec", self.ns.name, "sipp", f"{listen}:{self.sip_port}",
                "-sf", "caller.xml", "-inf", f"callers-{tag}.csv", "-s", number,
                "-i", peer, "-p", str(self.sip_port), "-mi", peer, "-mp", str(MEDIA_PORT),
                "-m", str(n), "-l", str(n), "-r", str(round(cps * 10)), "-rp", "10000",
                "-nostdin", "-max_recv_loops", "10000",
                "-trace_err", "-error_file", f"errors-{tag}.log",
                "-trace_stat", "-stf", f"stats-{tag}.csv", "-fd", "3600"]
        out = CallerRun()
        pcap = self.folder / f"wire-{tag}.pcap"
        async with wire.capture(self.ns.name, self.ns.peer_end, pcap, listen) as captured:
            out.exit_status, out.cpu_seconds = await asyncio.to_thread(
                _run_measured, argv, self.folder, deadline_s)
        out.capture = captured
        out.successful, out.failed = _counts(self.folder / f"stats-{tag}.csv", n)
        errors = self.folder / f"errors-{tag}.log"
        if errors.exists():
            out.errors = errors.read_text(errors="replace").strip().splitlines()[-5:]
        out.wire_latency_ms = await asyncio.to_thread(wire.latencies, pcap, listen,
                                                      self.prompts)
        out.wire_latency_ms["capture"] = {k: v for k, v in captured.items()
                                          if k != "cpu_seconds"}
        pcap.unlink(missing_ok=True)
        return out

    def close(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()

def _run_measured(argv: list[str], cwd: Path, deadline_s: float) -> tuple[int, float]:
    """Run SIPp to its end (SIGTERM to its session at the deadline); its exit status and CPU
    seconds (its rusage: `ip netns exec` becomes SIPp)."""
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + deadline_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > end:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            end = float("inf")
        time.sleep(0.2)

def _counts(stats: Path, calls: int) -> tuple[int, int]:
    """(successful, failed) from the last line of SIPp's statistics (-trace_stat)."""
    try:
        lines = stats.read_text().strip().splitlines()
    except FileNotFoundError:
        return 0, calls
    if len(lines) < 2:
        return 0, calls
    names, last = lines[0].split(";"), lines[-1].split(";")
    row = dict(zip(names, last, strict=False))
    ok = int(row.get("SuccessfulCall(C)", 0))
    return ok, calls - ok
