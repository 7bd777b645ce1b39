"""`ivr serve`'s CPU claim (IVR_NICE) on the real kernel: the engine's threads and its
session's autogroup get it, the audio tools it runs do not. Each case runs in a process with a
session of its own, so the test run's own scheduling is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ivr.settings import REPO_ROOT

PROBE = """
import asyncio, json, logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from ivr.core import priority
from ivr.media.process import run_tool

def autogroup():
    try:
        return open("/proc/self/autogroup").read().split()[-1]
    except OSError:
        return None

async def main(out):
    # sh reports its own nice value and session id (fields 19 and 6 of /proc/PID/stat).
    await run_tool(["sh", "-c", "awk '{print $19, $6}' /proc/$$/stat > " + out])
    thread_nice = await asyncio.to_thread(os.getpriority, os.PRIO_PROCESS, 0)
    tool_nice, tool_sid = open(out).read().split()
    print(json.dumps({"nice": os.getpriority(os.PRIO_PROCESS, 0), "thread_nice": thread_nice,
                      "autogroup": autogroup(), "sid": os.getsid(0),
                      "tool_nice": int(tool_nice), "tool_sid": int(tool_sid)}))

priority.claim(int(sys.argv[1]))
asyncio.run(main(sys.argv[2]))
"""


def probe(nice: int, tmp_path: Path) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(nice), str(tmp_path / "tool.txt")], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=60, start_new_session=True, check=True)
    return json.loads(done.stdout), done.stderr


def autogroup_enabled() -> bool:
    path = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return path.exists() and path.read_text().strip() == "1"


def test_the_engine_claims_the_cpu_and_its_audio_tools_do_not(tmp_path: Path) -> None:
    seen, log = probe(-10, tmp_path)
    if os.geteuid() != 0:
        # Without the privilege: a warning that says what to do, and nothing changed.
        assert "nice -10 was refused" in log and "IVR_NICE=0" in log
        assert seen["nice"] == seen["thread_nice"] == seen["tool_nice"] == 0
        return
    assert seen["nice"] == -10 and seen["thread_nice"] == -10
    assert "CPU priority: nice -10" in log
    if autogroup_enabled():
        assert seen["autogroup"] == "-10"
    # The tool ran at the default priority, outside the engine's session (and autogroup).
    assert seen["tool_nice"] == 0
    assert seen["tool_sid"] != seen["sid"]


def test_nice_zero_asks_for_nothing(tmp_path: Path) -> None:
    seen, log = probe(0, tmp_path)
    assert seen["nice"] == seen["thread_nice"] == seen["tool_nice"] == 0
    assert "CPU priority" not in log and "refused" not in log
    if autogroup_enabled():
        assert seen["autogroup"] == "0"
