"""Worker threads named for the operating system too (`top -H`, /proc/PID/task/*/comm), so
the CPU of the event loop, of take analysis and of file writes can be told apart from outside
the process; Python 3.11 names threads only for itself."""

from __future__ import annotations

import asyncio
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_PR_SET_NAME = 15  # prctl(2); Linux keeps 15 bytes of it

_prctl: Any
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: names stay Python's own
    _prctl = None


def name_native() -> None:
    """Give the calling thread its Python name at the OS level too (a pool's `initializer`)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def pool(prefix: str, workers: int | None = None) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix,
                              initializer=name_native)


def name_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio's default executor (to_thread: file writes with fsync, reads), named `asyncio_N`
    as asyncio names it, for the OS too."""
    loop.set_default_executor(pool("asyncio"))
