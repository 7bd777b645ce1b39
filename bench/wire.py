"""Key press -> next prompt on the wire (bench/README.md): the RTP between SIPp and Asterisk,
captured on the SIPp namespace's end of the veth (tcpdump), read back by a small pcap reader.

Per press: from the last packet of the RFC 4733 event the caller sent to the first packet from
Asterisk, to that caller, that carries the next prompt's audio: the first 20 ms of that prompt
file that are not silence, as Asterisk sends it (G.711 u-law, within a quantisation step or
so). Matching the prompt, not just any sound, matters for the `1` (keep): it comes while the
review menu still plays, so the first sound after it is the menu going on; after `#` there was
silence (the recording: Asterisk sends silence frames, transmit_silence) and the first sound is
the menu. The figure includes each prompt's own leading silence (`lead_ms`), the same for the
engine and the baseline (the same files)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bench.sipp_media import EVENT_PT, EVENTS, PACKET, PCMU, ULAW

SNAPLEN = 256  # Ethernet + IPv4 + UDP + RTP header + 160 bytes of u-law fit
SILENT = 200  # peak sample below this (of 32767, about -44 dBFS) is silence
CANDIDATES = 4  # the prompt's first frames that are not silence, matched against each packet
# What each key is answered with (the recorder flow and dialplan/bench-baseline.conf alike).
NEXT_PROMPT = {"#": "review_menu", "1": "recording_saved"}
_KEYS = {v: k for k, v in EVENTS.items()}
_DECODE = np.array(ULAW, dtype=np.int32)


class Packet(NamedTuple):
    t: float
    src: bytes  # IPv4 address, 4 bytes
    sport: int
    dst: bytes
    dport: int
    payload: bytes  # the UDP payload (RTP)


def read_pcap(path: Path) -> Iterator[Packet]:
    """UDP over IPv4 from a classic pcap (Ethernet or Linux cooked, micro- or nanoseconds)."""
    with path.open("rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            order = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            order = ">"
        else:
            raise ValueError(f"{path}: not a pcap file")
        scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
        link = struct.unpack(order + "I", head[20:24])[0]
        offset = {1: 14, 113: 16}.get(link)
        if offset is None:
            raise ValueError(f"{path}: link type {link} (want Ethernet or Linux cooked)")
        record, ports = struct.Struct(order + "IIII"), struct.Struct("!HH")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, caplen, _ = record.unpack(rec)
            frame = f.read(caplen)
            ip = frame[offset:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            sport, dport = ports.unpack_from(ip, ihl)
            yield Packet(sec + frac * scale, ip[12:16], sport, ip[16:20], dport, ip[ihl + 8:])


def prompt_frames(path: Path) -> tuple[np.ndarray, float]:
    """The first CANDIDATES 20 ms frames of a prompt that are not silence, as u-law would carry
    them (encoded and decoded), and the milliseconds of silence before them."""
    from bench.sipp_media import ulaw_encode

    with wave.open(str(path)) as w:
        raw = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    frames, lead = [], None
    for i in range(0, len(samples) - PACKET + 1, PACKET):
        frame = [ULAW[ulaw_encode(s)] for s in samples[i:i + PACKET]]
        if lead is None and max(abs(s) for s in frame) < SILENT:
            continue
        if lead is None:
            lead = i / 8.0
        frames.append(frame)
        if len(frames) == CANDIDATES:
            break
    return np.array(frames, dtype=np.int32), lead or 0.0


def _matches(payloads: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """For each packet (row of decoded samples): does it carry one of `frames`? Close within
    about a u-law step (Asterisk's encoder rounds a little differently from G.711's)."""
    diff = np.abs(payloads[:, None, :] - frames[None, :, :]).mean(axis=2)
    scale = np.abs(frames).mean(axis=1)[None, :]
    return (diff <= 0.1 * scale + 4).any(axis=1)


@dataclass
class Stream:
    """One call, as seen on the wire: its key presses and what Asterisk sent it."""

    presses: list[tuple[float, str]] = field(default_factory=list)  # (last packet, key)
    times: list[float] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    _event: tuple[int, int] | None = None  # (RTP timestamp, event) of the event going on


def streams(path: Path, asterisk: str) -> dict[int, Stream]:
    """Per caller (its RTP port): presses, and Asterisk's u-law packets to it."""
    found: dict[int, Stream] = {}
    address = socket.inet_aton(asterisk)
    for pkt in read_pcap(path):
        rtp = pkt.payload
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        pt = rtp[1] & 0x7F
        if pkt.dst == address and pt == EVENT_PT and len(rtp) >= 16:
            stream = found.setdefault(pkt.sport, Stream())
            ts = struct.unpack("!I", rtp[4:8])[0]
            event, end = rtp[12], bool(rtp[13] & 0x80)
            if end:  # the end is sent three times: the last one is the press's last packet
                if stream._event == (ts, event) and stream.presses:
                    stream.presses[-1] = (pkt.t, _KEYS.get(event, "?"))
                else:
                    stream.presses.append((pkt.t, _KEYS.get(event, "?")))
                stream._event = (ts, event)
        elif pkt.src == address and pt == PCMU and len(rtp) >= 12 + PACKET:
            stream = found.setdefault(pkt.dport, Stream())
            stream.times.append(pkt.t)
            stream.payloads.append(rtp[12:12 + PACKET])
    return found


def latencies(path: Path, asterisk: str, prompts: dict[str, Path]) -> dict[str, Any]:
    """Per press, seconds from its last packet to the next prompt's first sound; percentiles
    in ms, over all presses and by key, with the presses no prompt followed."""
    refs = {key: prompt_frames(prompts[name]) for key, name in NEXT_PROMPT.items()}
    by_key: dict[str, list[float]] = {k: [] for k in NEXT_PROMPT}
    missed = 0
    for stream in streams(path, asterisk).values():
        if not stream.payloads:
            missed += len(stream.presses)
            continue
        times = np.array(stream.times)
        decoded = _DECODE[np.frombuffer(b"".join(stream.payloads), dtype=np.uint8)].reshape(
            -1, PACKET)
        loud = np.abs(decoded).max(axis=1) >= SILENT
        presses = sorted(stream.presses)
        for i, (t, key) in enumerate(presses):
            if key not in refs:
                continue
            until = presses[i + 1][0] if i + 1 < len(presses) else float("inf")
            lo, hi = np.searchsorted(times, t, "right"), np.searchsorted(times, until, "left")
            window = np.nonzero(loud[lo:hi])[0] + lo
            hits = window[_matches(decoded[window], refs[key][0])] if len(window) else window
            if len(hits):
                by_key[key].append(float(times[hits[0]] - t))
            else:
                missed += 1
    every = sorted(x for xs in by_key.values() for x in xs)
    return {**summary(every), "missed": missed,
            "by_key": {k: summary(sorted(v)) for k, v in by_key.items()},
            "lead_ms": {k: round(refs[k][1], 1) for k in refs}}


def summary(values: list[float]) -> dict[str, Any]:
    """count and p50/p95/p99 in ms (nearest rank) of sorted seconds."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None}
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)  # noqa: E731
    return {"count": len(values), "p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99)}


@contextlib.asynccontextmanager
async def capture(namespace: str, interface: str, path: Path, asterisk: str
                  ) -> AsyncIterator[dict[str, Any]]:
    """tcpdump on `interface` in `namespace`, writing `path`: what Asterisk sends (not SIP) and
    the caller's RFC 4733 packets (UDP payload byte 1: the RTP payload type), not the caller's
    audio; yields a dict that gets its CPU seconds, and what it captured and dropped, once it
    has stopped."""
    from bench.procstat import cpu_seconds

    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", namespace, "tcpdump", "-i", interface, "-w", str(path), "-s",
        str(SNAPLEN), "-B", "65536", "-n", "-U",
        f"udp and not port 5060 and (src host {asterisk} or udp[9] & 0x7f = {EVENT_PT})",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 10)
    if b"listening on" not in line:
        raise RuntimeError(f"tcpdump did not start: {line.decode(errors='replace')}")
    stats: dict[str, Any] = {}
    try:
        yield stats
    finally:
        stats["cpu_seconds"] = cpu_seconds(proc.pid)
        if proc.returncode is None:
            proc.terminate()
        rest = (await proc.stderr.read()).decode(errors="replace")
        await proc.wait()
        for text in rest.splitlines():
            words = text.split()
            if "captured" in words or "dropped" in text:
                stats[" ".join(words[1:])] = int(words[0])
