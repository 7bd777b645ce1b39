"""The engine's claim on the CPU, and the audio tools' release of it.

On a machine Asterisk keeps busy (hundreds of media threads), a caller's key press reaches the
next prompt through the engine's event loop, and that thread then waits for the CPU like any
other: at 400 calls on two cores it was ready and not running for 12-25 s of each 45 s step
(bench/README.md). The engine needs little CPU (about a tenth of Asterisk's per call) but needs
it at once, so `ivr serve` asks the kernel for more weight: a lower nice value for its threads
and, under the kernel's autogroup scheduling (groups by session), for its session's group too.
Without the privilege (root or CAP_SYS_NICE) the engine runs as before and says so once.

Audio tools (sox, ffmpeg, espeak-ng) are bulk work: they run at the default priority, in a
session of their own, so the claim never reaches them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_AUTOGROUP = Path("/proc/self/autogroup")
_AUTOGROUP_ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")


def claim(nice: int) -> None:
    """Run this process's threads (those started after this call) at `nice`, and its session's
    autogroup too where the kernel groups by session. 0 asks for nothing."""
    if nice == 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        log.warning("the engine runs at the default CPU priority: nice %d was refused (%s); it "
                    "needs root or CAP_SYS_NICE (systemd: Nice=%d, or CPUWeight= on the "
                    "engine's unit); IVR_NICE=0 stops asking", nice, exc.strerror, nice)
        return
    grouped = ""
    if _autogroup_enabled():
        try:
            _AUTOGROUP.write_text(str(nice))
            grouped = " (and its session's autogroup)"
        except OSError as exc:
            log.warning("nice %d for the engine's threads, but not for its session's autogroup "
                        "(%s): other sessions' threads still come first", nice, exc.strerror)
    log.info("CPU priority: nice %d%s", nice, grouped)


def _autogroup_enabled() -> bool:
    try:
        return _AUTOGROUP_ENABLED.read_text().strip() == "1" and _AUTOGROUP.exists()
    except OSError:
        return False


def at_default_priority(command: list[str]) -> list[str]:
    """`command` prefixed to run at nice 0 when the calling thread runs above it. Pair it with
    `start_new_session=True`, which leaves the claimed autogroup."""
    raised = -os.getpriority(os.PRIO_PROCESS, 0)
    return ["nice", "-n", str(raised), *command] if raised > 0 else command
