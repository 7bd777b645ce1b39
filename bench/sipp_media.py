"""What SIPp plays as the caller (bench/sipp.py): the caller's speech and its key presses as RTP
in pcap files, written at bench time from tests/data/speech-fox.wav (8 kHz, G.711 u-law, 20 ms
packets) and RFC 4733 events, so no binary blob is kept in git. SIPp's play_pcap_audio sends a
file's packets as they are (its own address and ports put in), keeping their RTP headers: so one
stream runs through every file of a call, its sequence numbers and timestamps going on from one
file to the next, and a key pressed twice is two events (a receiver takes a repeated event with
an old timestamp for a retransmission of the first).

Also the G.711 u-law codec (ITU-T G.711 segments), which bench/wire.py decodes what Asterisk
sends with."""

from __future__ import annotations

import socket
import struct
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
PACKET = 160  # samples: 20 ms
PCMU, EVENT_PT = 0, 101  # the payload types the scenario's SDP offers
SSRC = 0x1B5E_7A11
EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
EVENT_PACKETS = 5  # 100 ms of key press, then the end packet three times (RFC 4733 2.5.1.4)
_BIAS, _CLIP = 0x84, 32635
SILENCE = b"\xff"  # u-law's zero
# Each file's trailing silence ends this much before the scenario starts the next file (SIPp
# stops a file still playing when the next one starts on the same call).
GAP = 0.04


def ulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sign else sample, _CLIP) + _BIAS
    exponent = max(0, (magnitude >> 7).bit_length() - 1)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode(byte: int) -> int:
    u = ~byte & 0xFF
    magnitude = (((u & 0x0F) << 3) + _BIAS << ((u >> 4) & 7)) - _BIAS
    return -magnitude if u & 0x80 else magnitude


ULAW = tuple(_decode(b) for b in range(256))  # u-law byte -> linear sample


def speech_ulaw(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (RATE, 2, 1):
            raise ValueError(f"{path}: want 8 kHz 16-bit mono")
        frames = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return bytes(ulaw_encode(s) for s in samples)


@dataclass
class Stream:
    """One call's RTP stream from the caller, written out file by file."""

    seq: int = 1000
    ts: int = 160_000

    def speech(self, ulaw: bytes, start: float = 0.0) -> list[tuple[float, bytes]]:
        """(seconds from the file's start, RTP packet) for the speech, from `start` on."""
        out = []
        for i in range(0, len(ulaw) - PACKET + 1, PACKET):
            out.append((start + i / RATE, self._rtp(PCMU, False, ulaw[i:i + PACKET])))
            self.ts += PACKET
        return out

    def silence(self, seconds: float, start: float = 0.0) -> list[tuple[float, bytes]]:
        """`seconds` of silence (u-law's zero), from `start` on."""
        return self.speech(SILENCE * round(seconds * RATE / PACKET) * PACKET, start)

    def key(self, key: str, trailing: float = 0.0) -> list[tuple[float, bytes]]:
        """One RFC 4733 event: EVENT_PACKETS updates 20 ms apart, then the end three times
        back to back (as Asterisk sends its own), all with the event's start timestamp; then
        `trailing` seconds of silence (a new talkspurt: marker on its first packet)."""
        event, out = EVENTS[key], []
        start = self.ts
        for i in range(EVENT_PACKETS):
            duration = PACKET * (i + 1)
            out.append((i * 0.02, self._event(event, False, duration, start, i == 0)))
        for _ in range(3):
            out.append(((EVENT_PACKETS - 1) * 0.02, self._event(
                event, True, PACKET * EVENT_PACKETS, start, False)))
        self.ts += PACKET * EVENT_PACKETS
        return out + self.silence(max(0.0, trailing - EVENT_PACKETS * 0.02),
                                  start=EVENT_PACKETS * 0.02)

    def _event(self, event: int, end: bool, duration: int, ts: int, marker: bool) -> bytes:
        volume = 10  # -10 dBm0
        return self._rtp(EVENT_PT, marker, struct.pack("!BBH", event, (0x80 if end else 0)
                                                       | volume, duration), ts)

    def _rtp(self, pt: int, marker: bool, payload: bytes, ts: int | None = None) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq & 0xFFFF,
                             (self.ts if ts is None else ts) & 0xFFFFFFFF, SSRC)
        self.seq += 1
        return header + payload


Address = tuple[str, int]


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]],
               src: Address = ("192.0.2.1", 40000), dst: Address = ("192.0.2.2", 10000),
               start: float = 1_000_000.0) -> None:
    """A classic pcap (Ethernet, IPv4, UDP) of `packets` (seconds from `start`, RTP); SIPp
    replaces the addresses and ports, and keeps the spacing of the timestamps."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for seconds, rtp in packets:
        udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + udp
        whole = start + seconds
        sec, usec = int(whole), round((whole - int(whole)) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_call(folder: Path, speech: Path, takes: int, script: dict[str, float]) -> dict[str, int]:
    """The files of one call's script (bench/sipp-caller.xml), per take: the speech (the first
    after the wait for the beep), # and 1, each followed by the silence until the next file, as
    a phone sends RTP all along (a recording holds what the caller sent from its start: the
    margin a system leaves before the speech shows in the takes' length, as with the loadgen).
    Returns the milliseconds the scenario waits after starting each file, by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    ulaw = speech_ulaw(speech)
    stream, waits = Stream(), {}
    speech_ms = len(ulaw) // PACKET * 20
    for take in range(1, takes + 1):
        lead = script["wait"] if take == 1 else 0.0
        last = take == takes
        files = (
            (f"speech_{take}", stream.silence(lead) + stream.speech(ulaw, start=lead),
             round(lead * 1000) + speech_ms + 20),
            (f"hash_{take}", stream.key("#", trailing=script["review"] - GAP),
             round(script["review"] * 1000)),
            (f"keep_{take}", stream.key("1", trailing=(script["hold"] if last else
                                                       script["next"]) - GAP),
             0 if last else round(script["next"] * 1000)))
        for name, packets, wait_ms in files:
            write_pcap(folder / f"{name}.pcap", packets)
            waits[name] = wait_ms
    return waits
