"""CPU seconds and memory of processes, read from /proc: what a load step cost each part."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime (and, with `children`, that of waited-for children) in seconds; 0 for a
    process that is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def postgres_backends(database: str) -> list[int]:
    """Server processes serving `database` (their title names it: `postgres: ... USER DB ...`)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


def _kind(thread_name: str) -> str:
    """What a thread of the engine does, by its name: the event loop (the process's own
    name), take analysis (`take-quality_N`), or the default executor (`asyncio_N`: file
    writes with fsync, reads)."""
    if thread_name.startswith("take-quality"):
        return "take_quality"
    if thread_name.startswith("asyncio_"):
        return "executor"
    return "loop"


def threads(pid: int) -> dict[int, tuple[str, float, float]]:
    """Per thread of `pid`: its kind (`_kind`), user and kernel CPU seconds."""
    found = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        found[int(tid)] = (_kind(name), int(fields[11]) / TICK, int(fields[12]) / TICK)
    return found


@dataclass
class CpuSnapshot:
    asterisk: float
    engine: float
    postgres: dict[int, float]
    engine_threads: dict[int, tuple[str, float, float]]


def snapshot(asterisk_pid: int, engine_pid: int | None, database: str) -> CpuSnapshot:
    return CpuSnapshot(
        cpu_seconds(asterisk_pid),
        cpu_seconds(engine_pid, children=True) if engine_pid else 0.0,
        {pid: cpu_seconds(pid) for pid in postgres_backends(database)},
        threads(engine_pid) if engine_pid else {},
    )


def engine_split(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """The engine's CPU seconds between two snapshots by kind of thread, and how much of it
    was spent in the kernel (`kernel`): where a regression lives, before any profiler."""
    split: dict[str, float] = {}
    kernel = 0.0
    for tid, (kind, user, system) in after.engine_threads.items():
        _, user0, system0 = before.engine_threads.get(tid, (kind, 0.0, 0.0))
        split[kind] = split.get(kind, 0.0) + (user - user0) + (system - system0)
        kernel += system - system0
    return {**split, "kernel": kernel}


def used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each part used between two snapshots (backends that started meanwhile count
    whole; those that ended meanwhile are lost, which a connection pool makes rare)."""
    pg = sum(t - before.postgres.get(pid, 0.0) for pid, t in after.postgres.items())
    return {"asterisk": after.asterisk - before.asterisk, "engine": after.engine - before.engine,
            "postgres": pg}
