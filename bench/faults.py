"""`make faults`: one fault at a time in the middle of a steady load of recording calls.

Each fault gets its own N callers (the bench's load generator: two takes each, `#` then `1`
to keep, about 34 s a call), placed over 10 s; 12 s after the first, while most are talking,
the fault strikes:

- database-10s: every connection from the engine to PostgreSQL cut, new ones refused for 10 s
  (a proxy between them: the machine's PostgreSQL itself is shared, so it is not restarted);
- ari-10s: every ARI connection (REST and the event sockets) cut without a close, new ones
  refused for 10 s (a proxy again);
- engine-kill: `ivr serve` SIGKILLed and started again (a crash);
- engine-restart: SIGTERM (calls in progress drain) and started again (a deploy).

Reported per fault: calls whose two takes were accepted, accepted takes with no audio in storage
(must be 0), sessions by how they ended, failures the API shows, `/healthz` answers while the
fault lasts and the seconds until it answers 200 again. The caller side is a script on a timer:
a fault that makes the engine ask again (a take lost with the ARI link, a resumed call) leaves
the script out of step, and that call keeps fewer takes; the table says how many."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bench import calls
from tests.helpers.tcp_proxy import CuttableProxy

FAULTS = ("database-10s", "ari-10s", "engine-kill", "engine-restart")
STRIKE_AT = 12.0  # seconds after the first call is placed
OUTAGE = 10.0


@dataclass
class FaultResult:
    fault: str
    calls: int
    completed: int = 0  # both takes accepted
    takes_accepted: int = 0
    accepted_without_audio: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # the engine's calls rows
    resumed: int = 0  # calls a restarted engine took back (calls.flow recorder-resumed)
    sessions: dict[str, int] = field(default_factory=dict)  # state -> count
    failures: dict[str, int] = field(default_factory=dict)  # failure_code -> count
    healthz_during: dict[str, int] = field(default_factory=dict)  # status -> samples
    healthy_again_s: float | None = None  # from the strike until /healthz answered 200
    restart_s: float | None = None
    seconds: float = 0.0


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise SystemExit(f"the fault run needs a TCP address in {url.split('@')[-1]!r}")
    user = f"{parts.username}@" if parts.username else ""
    if parts.password:
        user = f"{parts.username}:{parts.password}@"
    return urlunsplit((parts.scheme, f"{user}{parts.hostname}:{port}", parts.path,
                       parts.query, parts.fragment))


async def _proxy(url: str, default_port: int) -> CuttableProxy:
    parts = urlsplit(url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    await proxy.start()
    return proxy


async def _watch_health(http: aiohttp.ClientSession, url: str, result: FaultResult,
                        struck: asyncio.Event, loop_start: float, until: float) -> None:
    """Samples /healthz every 0.5 s from the strike for the outage and after it, and notes
    when it first answered 200 again once the strike had begun."""
    loop = asyncio.get_running_loop()
    await struck.wait()
    seen: Counter[str] = Counter()
    result.healthz_during = seen  # filled while it runs (it is cancelled when the calls end)
    unhealthy = False
    while loop.time() < until:
        try:
            async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                status = str(r.status)
        except (aiohttp.ClientError, TimeoutError):
            status = "no answer"
        if loop.time() - loop_start <= STRIKE_AT + OUTAGE + 1:
            seen[status] += 1
        if status != "200":
            unhealthy = True
        elif unhealthy and result.healthy_again_s is None:
            result.healthy_again_s = round(loop.time() - loop_start - STRIKE_AT, 1)
        await asyncio.sleep(0.5)
    if not unhealthy:
        result.healthy_again_s = 0.0


async def run(load: calls.Load, database_url: str, ari_url: str, n: int,
              first_caller: int, progress: Callable[[str], None],
              which: tuple[str, ...] = FAULTS) -> list[dict[str, Any]]:
    unknown = set(which) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown fault(s) {sorted(unknown)}: choose from {', '.join(FAULTS)}")
    db_proxy = await _proxy(database_url, 5432)
    ari_proxy = await _proxy(ari_url, 8088)
    env = {"IVR_DATABASE_URL": _with_port(database_url, db_proxy.port),
           "IVR_ARI_URL": _with_port(ari_url, ari_proxy.port)}
    out = []
    try:
        for k, fault in enumerate(which):
            caller_ids = [f"1555{first_caller + k * 1000 + i:07d}" for i in range(n)]
            result = await _one(load, fault, caller_ids, env, db_proxy, ari_proxy, progress)
            progress(f"  {fault}: calls {result.outcomes}, {result.resumed} resumed, "
                     f"{result.completed}/{n} kept both takes, "
                     f"{result.accepted_without_audio} accepted take(s) without audio, "
                     f"sessions {result.sessions}, failures {result.failures or '-'}, "
                     f"/healthz {result.healthz_during}, healthy again after "
                     f"{result.healthy_again_s} s")
            out.append({**result.__dict__, "healthz_during": dict(result.healthz_during)})
            await asyncio.sleep(3)
    finally:
        await db_proxy.close()
        await ari_proxy.close()
    return out


async def _one(load: calls.Load, fault: str, caller_ids: list[str], env: dict[str, str],
               db_proxy: CuttableProxy, ari_proxy: CuttableProxy,
               progress: Callable[[str], None]) -> FaultResult:
    n = len(caller_ids)
    result = FaultResult(fault, n)
    loop = asyncio.get_running_loop()
    async with calls.engine_lock(load.lock_path, progress), load.engine.running(**env):
        progress(f"  {fault}: {n} calls, the fault {STRIKE_AT:g} s after the first ...")
        sessions = await load._sessions(caller_ids)
        struck = asyncio.Event()
        start = loop.time()

        async def strike() -> None:
            await asyncio.sleep(STRIKE_AT)
            struck.set()
            strikes: dict[str, Callable[[], Awaitable[Any]]] = {
                "database-10s": lambda: _cut(db_proxy),
                "ari-10s": lambda: _cut(ari_proxy),
                "engine-kill": lambda: load.engine.restart(kill=True),
                "engine-restart": lambda: load.engine.restart(kill=False),
            }
            restarted = await strikes[fault]()
            if isinstance(restarted, float):
                result.restart_s = restarted

        striking = asyncio.create_task(strike())
        watching = asyncio.create_task(_watch_health(
            load.http, load.engine_url, result, struck, start, start + STRIKE_AT + 45))
        ids, _ = await load._place(f"PJSIP/{load.number}@loadgen-out", caller_ids, n / 10,
                                   f"f{caller_ids[0]}")
        await striking
        await load._wait_done(ids, loop.time() + 120, calls.StepResult(fault, n, n / 10),
                              load.engine.proc.pid)
        await asyncio.sleep(2)  # the last takes' rows are written after the hang-up
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        result.seconds = round(loop.time() - start, 1)
    durations = await load._engine_takes(sessions)
    result.completed = sum(1 for takes in durations if len(takes) == calls.TAKES)
    result.takes_accepted = sum(len(takes) for takes in durations)
    result.accepted_without_audio = sum(1 for takes in durations for d in takes if d <= 0)
    rows = await load.pool.fetch(
        "SELECT state, failure_code FROM recording_sessions WHERE session_key = ANY($1)",
        sessions)
    result.sessions = dict(Counter(r["state"] for r in rows))
    calls_rows = await load.pool.fetch(
        "SELECT outcome, flow FROM calls WHERE caller_id = ANY($1)", caller_ids)
    result.outcomes = dict(Counter(r["outcome"] or "open" for r in calls_rows))
    result.resumed = sum(1 for r in calls_rows if r["flow"] == "recorder-resumed")
    result.failures = dict(Counter(r["failure_code"] for r in rows if r["failure_code"]))
    return result


async def _cut(proxy: CuttableProxy) -> None:
    proxy.cut(refuse_for=OUTAGE)
    await asyncio.sleep(OUTAGE)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| fault | calls | how they ended | resumed | both takes kept |"
             " accepted takes without audio | sessions | failures shown | /healthz during |"
             " healthy again (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['fault']} | {r['calls']} | {_counts(r['outcomes'])} | {r['resumed']} |"
            f" {r['completed']} | {r['accepted_without_audio']} | {_counts(r['sessions'])} |"
            f" {_counts(r['failures'])} | {_counts(r['healthz_during'])} |"
            f" {r['healthy_again_s']} |")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
