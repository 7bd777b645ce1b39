"""The default prompt set and the catalog that turns prompt names into ARI media URIs."""

from __future__ import annotations

import os
import shutil
import time
import wave
from pathlib import Path

import pytest

from ivr.core.errors import ConfigError, InvalidParameter
from ivr.media.build import build, core_sound_file
from ivr.media.errors import UnknownPrompt
from ivr.media.manifest import MANIFEST, load_manifest
from ivr.media.prompts import PROMPT_NAMES, PROMPTS_DIR, PromptCatalog, prompt_path
from ivr.settings import Settings

# The names the recorder's phone flow plays besides the customizable ones.
FLOW_NAMES = ("recording_number", "invalid_choice", "too_many_attempts", "not_found",
              "no_more_recordings", "too_short", "try_later", "playback_intro", "skipped")
PUBLIC = "http://media.example:8080"


@pytest.fixture
def catalog(tmp_path: Path) -> PromptCatalog:
    return PromptCatalog(PROMPTS_DIR, tmp_path, PUBLIC + "/")


def test_the_default_set_has_every_prompt_as_8k_mono_16bit_audio() -> None:
    entries = load_manifest(PROMPTS_DIR / "en" / MANIFEST)
    assert set(PROMPT_NAMES) | set(FLOW_NAMES) <= entries.keys()
    for name, entry in entries.items():
        assert entry.text, name
        with wave.open(str(PROMPTS_DIR / "en" / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), name
            seconds = w.getnframes() / 8000
        # Real calls play these in real time: short, and none silent.
        assert 0.5 < seconds < (13 if name == "review_menu" else 5), (name, seconds)
    assert entries["goodbye"].core_sound == "vm-goodbye"
    assert entries["recording_number"].text == "Recording number"


def test_core_prompts_name_sounds_the_asterisk_root_has(base_settings: Settings) -> None:
    entries = load_manifest(PROMPTS_DIR / "en" / MANIFEST)
    core = [e for e in entries.values() if e.source == "core"]
    assert core
    for entry in core:
        assert entry.core_sound is not None
        assert core_sound_file(base_settings.asterisk_root, "en", entry.core_sound).is_file()


def test_build_regenerates_the_committed_tts_audio_byte_for_byte(tmp_path: Path) -> None:
    shutil.copytree(PROMPTS_DIR / "en", tmp_path / "en")
    for wav in (tmp_path / "en").glob("*.wav"):
        wav.write_bytes(b"")
    lines: list[str] = []
    assert build(tmp_path, "en", None, lines.append) == 0  # core ones kept without a root
    for name, entry in load_manifest(PROMPTS_DIR / "en" / MANIFEST).items():
        built = (tmp_path / "en" / f"{name}.wav").read_bytes()
        if entry.source == "tts":
            assert built == (PROMPTS_DIR / "en" / f"{name}.wav").read_bytes(), (
                f"{name}.wav is stale: run `make prompts`")
    assert "goodbye: kept (no Asterisk root to copy core:vm-goodbye from)" in lines


@pytest.mark.parametrize("line, error", [
    ("welcome\ttts", "separated by tabs"),
    ("Welcome\ttts\tHi.", "lowercase"),
    ("welcome\tmagic\tHi.", "source must be"),
    ("welcome\tcore:../../etc/passwd\tHi.", "bad Asterisk sound name"),
    ("welcome\ttts\t ", "has no text"),
    ("welcome\ttts\tHi.\nwelcome\ttts\tHi.", "listed twice"),
])
def test_a_malformed_manifest_is_a_config_error_naming_the_line(
    tmp_path: Path, line: str, error: str
) -> None:
    (tmp_path / MANIFEST).write_text(f"name\tsource\ttext\n{line}\n")
    with pytest.raises(ConfigError, match=error):
        load_manifest(tmp_path / MANIFEST)


def test_default_media(catalog: PromptCatalog) -> None:
    assert catalog.media("goodbye") == "sound:vm-goodbye"
    assert catalog.media("invalid_choice") == "sound:pm-invalid-option"
    welcome = catalog.media("welcome")
    assert welcome.startswith(f"sound:{PUBLIC}/media/prompts/en/welcome.wav?v=")
    assert len(welcome.rsplit("=", 1)[1]) == 16
    assert catalog.text("recording_number") == "Recording number"


def test_uploaded_prompt_wins_and_a_new_upload_gets_a_new_url(
    catalog: PromptCatalog, tmp_path: Path
) -> None:
    default = catalog.media("welcome", "REC0000001")
    assert default == catalog.media("welcome")
    path = prompt_path(tmp_path, "REC0000001", "welcome")
    path.parent.mkdir(parents=True)
    path.write_bytes((PROMPTS_DIR / "en" / "skipped.wav").read_bytes())
    first = catalog.media("welcome", "REC0000001")
    assert first.startswith(f"sound:{PUBLIC}/media/uploads/REC0000001/")
    assert first.split("?")[0].endswith("/welcome.wav")
    assert catalog.media("welcome", "REC0000002") == default  # another recorder: the default
    assert catalog.media("goodbye", "REC0000001") == "sound:vm-goodbye"

    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    second = catalog.media("welcome", "REC0000001")
    assert second != first and second.split("?")[0] == first.split("?")[0]
    path.unlink()
    assert catalog.media("welcome", "REC0000001") == default


def test_unknown_names_and_bad_keys_are_clear_errors(catalog: PromptCatalog) -> None:
    with pytest.raises(UnknownPrompt, match="no prompt named 'welcom'") as caught:
        catalog.media("welcom")
    assert caught.value.http_status == 404
    with pytest.raises(InvalidParameter):
        catalog.media("welcome", "../../etc")
    with pytest.raises(ConfigError, match="missing"):
        broken = Path(catalog.data_dir) / "set"
        shutil.copytree(PROMPTS_DIR / "en", broken / "en")
        (broken / "en" / "welcome.wav").unlink()
        PromptCatalog(broken, catalog.data_dir, PUBLIC)


def test_media_is_cheap_enough_for_the_key_press_path(
    catalog: PromptCatalog, tmp_path: Path
) -> None:
    path = prompt_path(tmp_path, "REC0000001", "review_menu")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF")
    timings = []
    for i in range(2000):
        started = time.perf_counter()
        catalog.media("review_menu", "REC0000001" if i % 2 else "REC0000009")
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[int(len(timings) * 0.99)] < 0.001  # well under the 20 ms budget
