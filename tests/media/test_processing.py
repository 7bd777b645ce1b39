"""Kept takes made ready for listening: the ends' silence trimmed, the loudness brought to a
target without the true peak passing the ceiling."""

from __future__ import annotations

import pytest

from ivr.media.processing import PAD_SECONDS, PEAK_CEILING_DBTP, process
from ivr.media.quality import analyse
from tests.helpers.audio import padded


def figures(data: bytes) -> dict[str, float]:
    measured = analyse(data)
    assert measured is not None
    return measured.as_dict()


def test_the_silence_at_both_ends_goes_but_a_pad_and_the_speech_stay() -> None:
    take = padded(1.5, 2.0)
    before = figures(take)
    out = process(take, before, trim=True, target_lufs=None)
    assert out is not None
    after = figures(out)
    assert after["speech_seconds"] == pytest.approx(before["speech_seconds"], abs=0.1)
    assert after["leading_silence_seconds"] <= PAD_SECONDS + 0.05
    assert after["trailing_silence_seconds"] <= PAD_SECONDS + 0.05
    assert after["duration_seconds"] < before["duration_seconds"] - 3.0


def test_a_quiet_take_is_brought_to_the_target_loudness() -> None:
    take = padded(0.5, 0.5, gain_db=-15)
    before = figures(take)
    out = process(take, before, trim=False, target_lufs=-20.0)
    assert out is not None
    after = figures(out)
    assert after["loudness_lufs"] == pytest.approx(-20.0, abs=0.5), (before, after)
    assert after["duration_seconds"] == pytest.approx(before["duration_seconds"], abs=0.01)


def test_a_trimmed_take_is_brought_to_the_target_loudness_too() -> None:
    """The gain comes from the analysis of the whole take: trimming its silence does not move
    the loudness off the target."""
    take = padded(1.5, 2.0, gain_db=-12)
    out = process(take, figures(take), trim=True, target_lufs=-20.0)
    assert out is not None
    after = figures(out)
    assert after["loudness_lufs"] == pytest.approx(-20.0, abs=0.3), after
    assert after["leading_silence_seconds"] <= PAD_SECONDS + 0.05


def test_normalising_never_lifts_the_true_peak_past_the_ceiling() -> None:
    take = padded(0.5, 0.5)
    out = process(take, figures(take), trim=False, target_lufs=-6.0)
    assert out is not None
    after = figures(out)
    assert after["true_peak_dbfs"] <= PEAK_CEILING_DBTP + 0.1
    assert after["clipped_ratio"] == 0


def test_nothing_to_do_is_none() -> None:
    take = padded(0.5, 0.5)
    assert process(take, figures(take), trim=False, target_lufs=None) is None
    silence = padded(0, 0)[:44] + b"\0\0" * 8000
    assert process(silence, {"speech_seconds": 0.0}, trim=True, target_lufs=-16) is None
    assert process(b"not a wav", figures(take), trim=True, target_lufs=-16) is None
