"""WAV facts and conversions with the real ffmpeg and sox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ivr.media.errors import MediaError
from ivr.media.prompts import PROMPTS_DIR
from ivr.media.transcode import to_telephone_wav, wav_info, wav_seconds, wav_to_mp3

SPEECH = Path(__file__).resolve().parent.parent / "data" / "speech-fox.wav"


def _sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _decoded_seconds(mp3: Path) -> float:
    """What a player hears: decoding honours the LAME header's encoder delay and padding
    (ffprobe's container duration counts them, about 0.19 s more at 8 kHz)."""
    wav = mp3.with_suffix(".decoded.wav")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(mp3), str(wav)],
                   check=True)
    try:
        return wav_seconds(wav)
    finally:
        wav.unlink()


async def test_mp3_lasts_as_long_as_the_wav(tmp_path: Path) -> None:
    dst = tmp_path / "out" / "take.mp3"
    await wav_to_mp3(SPEECH, dst)
    assert abs(_decoded_seconds(dst) - wav_seconds(SPEECH)) < 0.1
    assert dst.read_bytes()[:3] in (b"ID3", b"\xff\xf3", b"\xff\xe3", b"\xff\xfb")
    assert _names(dst.parent) == ["take.mp3"]


async def test_a_failed_conversion_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(MediaError, match="ffmpeg failed"):
        await wav_to_mp3(bad, tmp_path / "bad.mp3")
    assert _names(tmp_path) == ["bad.wav"]


def test_wav_seconds_matches_the_sample_count() -> None:
    assert wav_seconds(SPEECH) == pytest.approx(4.27, abs=0.01)
    assert wav_seconds(PROMPTS_DIR / "en" / "goodbye.wav") == pytest.approx(0.865, abs=0.01)


async def test_any_wav_becomes_telephone_audio(tmp_path: Path) -> None:
    ulaw = tmp_path / "upload.wav"
    _sox(str(SPEECH), "-r", "44100", "-c", "2", "-e", "u-law", str(ulaw))
    info = wav_info(ulaw)
    assert (info.format_tag, info.channels, info.rate) == (7, 2, 44100)
    assert not info.telephone_ready
    assert info.seconds == pytest.approx(4.27, abs=0.01)  # header maths, any encoding
    out = tmp_path / "out.wav"
    await to_telephone_wav(ulaw, out)
    assert wav_info(out).telephone_ready
    assert wav_seconds(out) == pytest.approx(4.27, abs=0.01)


def test_not_a_wav_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3" + b"\0" * 64)
    with pytest.raises(MediaError, match="not a WAV"):
        wav_seconds(path)
