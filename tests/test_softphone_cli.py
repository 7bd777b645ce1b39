"""`ivr softphone call` refuses what it cannot do before it places a call; its keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ivr.settings import REPO_ROOT
from ivr.telephony.softphone import PAUSE, parse_keys


def softphone_call(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", "softphone", "call", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)


def test_keys_are_keys_and_pauses() -> None:
    assert parse_keys("1w,#a*") == ["1", PAUSE, PAUSE, "#", "A", "*"]


def test_what_is_not_a_key_is_refused_before_a_call() -> None:
    done = softphone_call("9999", "--keys", "12x#")
    assert done.returncode == 1
    assert done.stderr.strip() == "ivr: --keys: 'x' is not a key (0-9 * # A-D) or a pause (w or ,)"
    assert "calling" not in done.stdout


def test_a_missing_microphone_file_is_refused(tmp_path: Path) -> None:
    done = softphone_call("9999", "--say", str(tmp_path / "none.wav"))
    assert done.returncode == 1
    assert "--say: no such file" in done.stderr
    done = softphone_call("9999", "--record", str(tmp_path / "no" / "heard.wav"))
    assert done.returncode == 1
    assert "--record: no such folder" in done.stderr
