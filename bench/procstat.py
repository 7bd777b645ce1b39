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


@dataclass
class CpuSnapshot:
    asterisk: float
    engine: float
    postgres: dict[int, float]


def snapshot(asterisk_pid: int, engine_pid: int | None, database: str) -> CpuSnapshot:
    return CpuSnapshot(
        cpu_seconds(asterisk_pid),
        cpu_seconds(engine_pid, children=True) if engine_pid else 0.0,
        {pid: cpu_seconds(pid) for pid in postgres_backends(database)},
    )


def used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each part used between two snapshots (backends that started meanwhile count
    whole; those that ended meanwhile are lost, which a connection pool makes rare)."""
    pg = sum(t - before.postgres.get(pid, 0.0) for pid, t in after.postgres.items())
    return {"asterisk": after.asterisk - before.asterisk, "engine": after.engine - before.engine,
            "postgres": pg}
