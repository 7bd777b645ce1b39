"""The periodic retention job: every `interval` seconds it runs a feature's sweep in bounded
batches (each batch one short transaction) until a batch comes back short. What expires and
how it is deleted is the feature's (the recorder's audio: ivr/recorder/retention.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

# One batch: at most `limit` items; returns (items handled, files deleted).
Sweep = Callable[[int], Awaitable[tuple[int, int]]]


@dataclass
class RetentionStats:
    runs: int = 0
    items: int = 0
    files: int = 0
    last_error: str = ""


class RetentionJob:
    def __init__(self, sweep: Sweep, *, interval: float, batch_size: int = 200,
                 max_batches: int = 10_000, name: str = "retention") -> None:
        self.sweep = sweep
        self.name = name
        self.interval = interval
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.stats = RetentionStats()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> tuple[int, int]:
        """One pass over everything due; returns (items, files) it deleted."""
        items = files = 0
        for batch in range(1, self.max_batches + 1):
            done, deleted = await self.sweep(self.batch_size)
            items, files = items + done, files + deleted
            if done:
                log.info("%s: batch %d: %d items, %d files (%d items so far)", self.name,
                         batch, done, deleted, items)
            if done < self.batch_size:
                break
        self.stats.runs += 1
        self.stats.items += items
        self.stats.files += files
        return items, files

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                self.stats.last_error = ""
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.stats.last_error = str(exc) or type(exc).__name__
                log.warning("%s: pass failed, next in %.0fs: %s", self.name, self.interval,
                            exc)
            await asyncio.sleep(self.interval)
