"""The benchmark's wire latency (bench/wire.py) on a capture made here: the caller's RFC 4733
presses (bench/sipp_media.py, as SIPp plays them) and what an Asterisk would send back, silence
during the take, the review menu after #, the menu still playing when 1 comes, then "recording
saved". The reader must find each press's last packet and the next prompt's first sound, not
the menu going on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import sipp_media, wire
from ivr.settings import REPO_ROOT

PROMPTS = {name: REPO_ROOT / "prompts" / "en" / f"{name}.wav"
           for name in ("review_menu", "recording_saved")}
CALLER, ASTERISK = ("10.9.9.2", 20000), ("10.9.9.1", 10000)


def capture(path: Path) -> None:
    caller = sipp_media.Stream()
    presses = [(1.0 + t, p) for t, p in caller.key("#")]
    presses += [(3.0 + t, p) for t, p in caller.key("1")]
    presses += [(5.0 + t, p) for t, p in caller.key("1")]  # pressed again, nothing follows
    menu = sipp_media.speech_ulaw(PROMPTS["review_menu"])
    saved = sipp_media.speech_ulaw(PROMPTS["recording_saved"])
    ast = sipp_media.Stream()
    sent = ast.silence(1.10) + ast.speech(menu[:16000], start=1.10)  # the menu: 2 s of it
    sent += ast.speech(saved, start=3.12)
    a, b = path.with_suffix(".a"), path.with_suffix(".b")
    sipp_media.write_pcap(a, presses, src=CALLER, dst=ASTERISK)
    sipp_media.write_pcap(b, sent, src=ASTERISK, dst=CALLER)
    path.write_bytes(a.read_bytes() + b.read_bytes()[24:])  # one capture, both directions


def test_each_press_to_the_next_prompts_first_sound(tmp_path: Path) -> None:
    pcap = tmp_path / "wire.pcap"
    capture(pcap)
    found = wire.streams(pcap, ASTERISK[0])
    assert list(found) == [CALLER[1]]
    assert [key for _, key in found[CALLER[1]].presses] == ["#", "1", "1"]
    out = wire.latencies(pcap, ASTERISK[0], PROMPTS)
    # The review menu's first sound is 40 ms into the file: 1.10 + 0.04 - 1.08 (the press's
    # last packet); "recording saved" starts with sound: 3.12 - 3.08, not the menu at 3.08.
    assert out["lead_ms"] == {"#": 40.0, "1": 0.0}
    assert out["by_key"]["#"] == {"count": 1, "p50": 60.0, "p95": 60.0, "p99": 60.0}
    assert out["by_key"]["1"] == {"count": 1, "p50": 40.0, "p95": 40.0, "p99": 40.0}
    assert out["missed"] == 1  # the second 1: no prompt followed it


def test_ulaw_round_trip_and_pcap_reader(tmp_path: Path) -> None:
    for sample in (-32768, -1000, -1, 0, 1, 1000, 32767):
        decoded = sipp_media.ULAW[sipp_media.ulaw_encode(sample)]
        assert abs(decoded - sample) <= max(8, abs(sample) // 16)
    assert sipp_media.ULAW[sipp_media.SILENCE[0]] == 0
    stream = sipp_media.Stream()
    packets = stream.key("#", trailing=0.2)  # 100 ms of event, then 100 ms of silence
    sipp_media.write_pcap(tmp_path / "k.pcap", packets)
    read = list(wire.read_pcap(tmp_path / "k.pcap"))
    assert [p.payload for p in read] == [rtp for _, rtp in packets]
    assert read[-1].t - read[0].t == pytest.approx(0.18, abs=1e-6)
    (tmp_path / "not.pcap").write_text("this is not a capture, just some text")
    with pytest.raises(ValueError, match="not a pcap"):
        list(wire.read_pcap(tmp_path / "not.pcap"))
