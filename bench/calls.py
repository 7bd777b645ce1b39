"""Load over real SIP: Asterisk calls itself through the loadgen pair (asterisk-conf/pjsip.conf).
Each caller (dialplan/loadgen.conf) makes two takes of a record/review loop: it waits for the
beep, talks (a speech file), keys #, then 1 (keep). The callee is either the engine (a recorder's
number: the caller is identified by its caller id, a session keyed to it) or the same loop as
plain dialplan (dialplan/bench-baseline.conf). A take counts as complete when its audio is at
least as long as the speech, less a small tolerance: a take that started late lost words.

A step places N calls at N/10 calls per second, holding the test suite's engine lock (SIP calls
reach the configured Stasis app), and measures what each part spent: CPU seconds of Asterisk,
of the engine and of its Postgres backends, the engine's memory, and the engine's key press ->
next prompt histogram (its /metrics) before and after.

The control ("loaded"): the baseline again, beside CPU burners (bench/burn.py) taking what the
engine and its Postgres backends took in the engine's step, each at its priority. Where the
engine falls short of the baseline, it tells how much of that is the CPU the engine used and
how much the way it drives Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import math
import signal
import sys
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import procstat
from bench.engine import EngineProcess
from bench.sipp import SippCaller
from ivr.core.errors import IvrError
from ivr.recorder.models import ORIGINAL, take_path
from ivr.telephony.rest import AriClient, AriHttpError

TAKES = 2
# The caller's script (seconds), fitted to the prompts both callees play: from the answer to
# the beep ~7.8 s (welcome, "recording number", the number, "record after the tone", beep),
# from "1" to the next beep ~7.2 s, from the last "1" to the callee's hang-up ~5.2 s.
SCRIPT = {"LOADGEN_WAIT": "9", "LOADGEN_REVIEW": "1.5", "LOADGEN_NEXT": "8.5",
          "LOADGEN_HOLD": "10", "LOADGEN_DTMF": "1", "LOADGEN_TAKES": str(TAKES)}
TOLERANCE = 0.25  # seconds a complete take may fall short of the speech (DTMF edge, framing)
BASELINE_NUMBER = "bench-baseline"
METRIC = "ivr_keypress_to_prompt_seconds"
ARI_METRIC = "ivr_ari_requests"  # by operation (ivr/telephony/rest.py)
EVENT_METRIC = "ivr_key_event_delay_seconds"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Burn:
    """A burner's part: `share` of one core at nice `nice` (bench/burn.py)."""

    part: str  # whose CPU it stands for: "engine" or "postgres"
    share: float
    nice: int


@contextlib.asynccontextmanager
async def burners(burns: list[Burn]) -> AsyncIterator[dict[str, list[int]]]:
    """Start the burners (each share split over processes of at most one core, each in a
    session of its own); yields their pids by part, stops them on the way out."""
    procs: dict[str, list[asyncio.subprocess.Process]] = {}
    try:
        for burn in burns:
            count = max(1, math.ceil(burn.share))
            for _ in range(count):
                procs.setdefault(burn.part, []).append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.burn", f"{burn.share / count:.4f}",
                    str(burn.nice), start_new_session=True, stdin=asyncio.subprocess.DEVNULL))
        yield {part: [p.pid for p in ps] for part, ps in procs.items()}
    finally:
        for ps in procs.values():
            for proc in ps:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
        for ps in procs.values():
            for proc in ps:
                await proc.wait()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / float(w.getframerate())


# --- the engine lock ------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def engine_lock(path: Path, progress: Progress) -> AsyncIterator[None]:
    """The lock real-call test sessions hold (tests/telephony_harness.py `engine_lock`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("  waiting: a test session holds the Stasis app (engine lock) ...")
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the histogram on /metrics --------------------------------------------------------------
async def scrape_histograms(http: aiohttp.ClientSession, base_url: str, headers: dict[str, str]
                            ) -> dict[str, dict[Any, float]] | None:
    """metric -> le -> cumulative count, for the key press histograms (METRIC, EVENT_METRIC),
    and ARI_METRIC -> operation -> requests; None when there is no /metrics."""
    try:
        async with http.get(f"{base_url}/metrics", headers=headers) as resp:
            if resp.status != 200:
                return None
            text = await resp.text()
    except aiohttp.ClientError:
        return None
    found: dict[str, dict[Any, float]] = {}
    ari = found.setdefault(ARI_METRIC, {})
    prefix = f'{ARI_METRIC}_total{{operation="'
    for line in text.splitlines():
        if line.startswith(prefix):
            operation, value = line[len(prefix):].split('"} ', 1)
            ari[operation] = float(value)
    for metric in (METRIC, EVENT_METRIC):
        buckets = found.setdefault(metric, {})
        prefix = f"{metric}_bucket{{"
        for line in text.splitlines():
            if line.startswith(prefix):
                labels, value = line[len(prefix):].rsplit("} ", 1)
                le = labels.split('le="', 1)[1].split('"', 1)[0]
                buckets[float("inf") if le == "+Inf" else float(le)] = float(value)
    return found if found[METRIC] else None


def _of(metric: str, before: dict[str, dict[float, float]] | None,
        after: dict[str, dict[float, float]] | None
        ) -> tuple[dict[float, float] | None, dict[float, float] | None]:
    return ((before or {}).get(metric), (after or {}).get(metric) or None)


def percentiles(before: dict[float, float] | None, after: dict[float, float] | None,
                qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, Any]:
    """Percentiles (ms) of what was observed between two scrapes, interpolated within buckets."""
    if after is None:
        return {"count": None, **{f"p{round(q * 100)}": None for q in qs}}
    edges = sorted(after)
    counts = [after[e] - (before or {}).get(e, 0.0) for e in edges]
    total = counts[-1] if counts else 0.0
    out: dict[str, Any] = {"count": int(total)}
    for q in qs:
        key = f"p{round(q * 100)}"
        if total <= 0:
            out[key] = None
            continue
        rank, lower, below = q * total, 0.0, 0.0
        value = None
        for edge, cum in zip(edges, counts, strict=True):
            if cum >= rank:
                if edge == float("inf"):
                    value = lower
                else:
                    share = (rank - below) / (cum - below) if cum > below else 1.0
                    value = lower + (edge - lower) * share
                break
            lower, below = edge, cum
        out[key] = None if value is None else round(value * 1000, 1)
    return out


# --- one step ---------------------------------------------------------------------------------
@dataclass
class StepResult:
    system: str  # "engine", "baseline" or "loaded" (the baseline beside CPU burners)
    calls: int
    cps: float
    completed: int = 0
    failed: int = 0
    originate_errors: int = 0
    leftover_hung_up: int = 0
    recordings: int = 0
    recordings_complete: int = 0
    peak_channels: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_per_call_ms: dict[str, float] = field(default_factory=dict)
    engine_rss_mb: float = 0.0
    engine_rss_peak_mb: float = 0.0
    latency_ms: dict[str, Any] = field(default_factory=dict)
    # Asterisk's timestamp on a key press event -> the event reaching its call (engine only).
    key_event_delay_ms: dict[str, Any] = field(default_factory=dict)
    # The engine's CPU per call by kind of thread (procstat.engine_split), and the ARI
    # requests it sent per call, by operation (engine only).
    engine_cpu_split_ms: dict[str, float] = field(default_factory=dict)
    ari_requests_per_call: dict[str, float] = field(default_factory=dict)
    short_takes: list[float] = field(default_factory=list)
    # Per take of the script (first, second): how many fell short, and the median and 10th
    # percentile of how much of the speech each take holds, in seconds. A take falls short when
    # the recording starts after the caller began to speak: the margin a system leaves shows
    # here before any take is lost.
    short_by_take: list[int] = field(default_factory=list)
    take_seconds_p50: list[float] = field(default_factory=list)
    take_seconds_p10: list[float] = field(default_factory=list)
    # Who called: "loadgen" (Asterisk calling itself) or "sipp" (bench/sipp.py); with SIPp, the
    # calls whose dialogue failed (no answer, a hang-up during the script, none at its end), the
    # last lines of its error log, and key press -> next prompt read off the wire (bench/wire.py).
    caller: str = "loadgen"
    caller_failed: int = 0
    caller_errors: list[str] = field(default_factory=list)
    wire_latency_ms: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.recordings_complete == self.calls * TAKES


@dataclass
class Load:
    """What every step needs: Asterisk, the engine under test and its database."""

    ari: AriClient
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    lock_path: Path
    asterisk_pid: int
    engine: EngineProcess
    engine_url: str
    database: str
    data_dir: Path
    speech_url: str
    speech_seconds: float
    number: str
    vr: Callable[..., Awaitable[dict[str, Any]]]
    progress: Progress
    sipp: SippCaller | None = None  # the caller: SIPp, or (None) Asterisk calling itself

    async def _place(self, endpoint: str, caller_ids: list[str], cps: float,
                     tag: str) -> tuple[list[str], int]:
        """Originate one call per caller id at `cps`; returns the channel ids and the number
        of originations Asterisk refused."""
        variables = {**SCRIPT, "LOADGEN_PLAY": self.speech_url}
        ids: list[str] = []
        errors = 0
        start = time.monotonic()
        pending = []

        async def one(channel_id: str, caller_id: str) -> bool:
            try:
                await self.ari.originate(
                    channel_id, endpoint, context="ivr-loadgen-caller", extension="s",
                    priority=1, caller_id=caller_id, timeout=30, variables=variables)
                return True
            except (IvrError, aiohttp.ClientError, TimeoutError):
                return False

        for i, caller_id in enumerate(caller_ids):
            delay = start + i / cps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            channel_id = f"bench-{tag}-{i}"
            ids.append(channel_id)
            pending.append(asyncio.ensure_future(one(channel_id, caller_id)))
        for ok in await asyncio.gather(*pending):
            errors += 0 if ok else 1
        return ids, errors

    async def _wait_done(self, ids: list[str], deadline: float, result: StepResult,
                         engine_pid: int) -> None:
        """Until every caller channel is gone (or the deadline: those left are hung up)."""
        mine = set(ids)
        while True:
            channels = await self.ari.list_channels()
            live = [c["id"] for c in channels if c["id"] in mine]
            result.peak_channels = max(result.peak_channels, len(channels))
            rss = procstat.rss_mb(engine_pid)
            result.engine_rss_peak_mb = max(result.engine_rss_peak_mb, rss)
            if not live:
                return
            if time.monotonic() > deadline:
                self.progress(f"  {len(live)} call(s) still up at the deadline: hanging up")
                result.leftover_hung_up = len(live)
                for channel_id in live:
                    with contextlib.suppress(AriHttpError):
                        await self.ari.hangup(channel_id)
                return
            await asyncio.sleep(2)

    async def _sipp_calls(self, number: str, caller_ids: list[str], cps: float,
                          result: StepResult, engine_pid: int) -> Any:
        """The step's calls placed by SIPp, Asterisk's channels and the engine's memory sampled
        meanwhile; calls still up in Asterisk once SIPp is done are hung up."""
        assert self.sipp is not None
        placing = asyncio.ensure_future(self.sipp.run(
            number, caller_ids, cps, len(caller_ids) / cps + 100))
        while True:
            channels = await self.ari.list_channels()
            result.peak_channels = max(result.peak_channels, len(channels))
            result.engine_rss_peak_mb = max(result.engine_rss_peak_mb,
                                            procstat.rss_mb(engine_pid))
            if placing.done():
                break
            await asyncio.wait([placing], timeout=2)
        left = [c["id"] for c in channels if str(c.get("name", "")).startswith("PJSIP/sipp-")]
        if left:
            self.progress(f"  {len(left)} SIPp call(s) still up in Asterisk: hanging up")
            result.leftover_hung_up = len(left)
            for channel_id in left:
                with contextlib.suppress(AriHttpError):
                    await self.ari.hangup(channel_id)
        return placing.result()

    async def _run(self, system: str, number: str, caller_ids: list[str], tag: str,
                   prepare: Callable[[], Awaitable[Any]] | None = None,
                   burns: list[Burn] | None = None) -> tuple[StepResult, Any]:
        """One step, with the engine running (for the baseline too: Asterisk fetches the same
        prompt files from it, once, into its media cache); `prepare` runs first, unmeasured;
        `burns` run beside the calls, from the first to the last (their CPU is measured)."""
        n = len(caller_ids)
        cps = n / 10
        result = StepResult(system, n, cps)
        async with engine_lock(self.lock_path, self.progress), self.engine.running() as pid:
            prepared = await prepare() if prepare is not None else None
            self.progress(f"  {system}: {n} calls at {cps:g}/s ...")
            hist_before = await scrape_histograms(self.http, self.engine_url, self.engine.monitor)
            async with burners(burns or []) as burning:
                before = procstat.snapshot(self.asterisk_pid, pid, self.database)
                started = time.monotonic()
                caller = None
                if self.sipp is None:
                    ids, result.originate_errors = await self._place(
                        f"PJSIP/{number}@loadgen-out", caller_ids, cps, tag)
                    # The script takes ~34 s per call; anything still up 60 s after the last
                    # call was placed is stuck.
                    await self._wait_done(ids, time.monotonic() + 60, result, pid)
                else:
                    caller = await self._sipp_calls(number, caller_ids, cps, result, pid)
                result.seconds = round(time.monotonic() - started, 1)
                after = procstat.snapshot(self.asterisk_pid, pid, self.database)
                burnt = {part: sum(procstat.cpu_seconds(p) for p in pids)
                         for part, pids in burning.items()}
            hist_after = await scrape_histograms(self.http, self.engine_url, self.engine.monitor)
            result.engine_rss_mb = round(procstat.rss_mb(pid), 1)
            if system == "engine":
                await asyncio.sleep(2)  # the last takes' rows are written after the hang-up
        used = procstat.used(before, after)
        if caller is not None:  # SIPp and its capture ran in processes of their own
            result.caller = "sipp"
            used.update(sipp=caller.cpu_seconds, capture=caller.capture.get("cpu_seconds", 0.0))
            result.caller_failed, result.caller_errors = caller.failed, caller.errors
            result.wire_latency_ms = caller.wire_latency_ms
            if caller.errors:
                self.progress("  SIPp errors (last lines): " + " | ".join(caller.errors))
        if system != "engine":
            used.pop("engine")  # idle: the engine does no work in a baseline step
            used.pop("postgres")
            result.engine_rss_mb = result.engine_rss_peak_mb = 0.0
            # The burners started just before the first snapshot: their whole CPU is the step's.
            used.update({f"burn_{part}": seconds for part, seconds in burnt.items()})
        result.cpu = {k: round(v, 2) for k, v in used.items()}
        result.cpu_per_call_ms = {k: round(v * 1000 / n, 1) for k, v in used.items()}
        result.engine_rss_peak_mb = round(result.engine_rss_peak_mb, 1)
        if system == "engine":
            result.latency_ms = percentiles(*_of(METRIC, hist_before, hist_after))
            result.key_event_delay_ms = percentiles(*_of(EVENT_METRIC, hist_before, hist_after))
            result.engine_cpu_split_ms = {
                k: round(v * 1000 / n, 1) for k, v in procstat.engine_split(before, after).items()}
            sent = (hist_after or {}).get(ARI_METRIC, {})
            sent_before = (hist_before or {}).get(ARI_METRIC, {})
            result.ari_requests_per_call = {
                op: round((count - sent_before.get(op, 0.0)) / n, 2)
                for op, count in sorted(sent.items(), key=lambda kv: -kv[1])
                if count > sent_before.get(op, 0.0)}
            self.progress("  engine CPU ms/call by thread: " + ", ".join(
                f"{k} {v}" for k, v in result.engine_cpu_split_ms.items()))
            self.progress(f"  ARI requests/call: {sum(result.ari_requests_per_call.values()):.1f} ("
                          + ", ".join(f"{op} {v}" for op, v in
                                      result.ari_requests_per_call.items()) + ")")
        return result, prepared

    def _judge(self, result: StepResult, durations: list[list[float]]) -> None:
        """`durations`: per call, the seconds of each take it left."""
        need = self.speech_seconds - TOLERANCE
        for takes in durations:
            result.recordings += len(takes)
            complete = sum(1 for d in takes if d >= need)
            result.recordings_complete += complete
            result.short_takes.extend(round(d, 2) for d in takes if d < need)
            if len(takes) == TAKES:
                result.completed += 1
        # With SIPp, a call whose dialogue failed is lost too (whichever calls those were).
        result.failed = max(result.calls - result.completed, result.caller_failed)
        result.completed = result.calls - result.failed
        result.short_takes = sorted(result.short_takes)[:20]
        for index in range(TAKES):
            nth = sorted(takes[index] for takes in durations if len(takes) > index)
            result.short_by_take.append(sum(1 for d in nth if d < need))
            result.take_seconds_p50.append(round(nth[len(nth) // 2], 2) if nth else 0.0)
            result.take_seconds_p10.append(round(nth[len(nth) // 10], 2) if nth else 0.0)

    # --- the engine ---------------------------------------------------------------------------
    async def engine_step(self, n: int, first_caller: int) -> StepResult:
        caller_ids = [f"1555{first_caller + i:07d}" for i in range(n)]

        async def prepare() -> list[str]:
            self.progress(f"  engine: creating {n} sessions over the API ...")
            return await self._sessions(caller_ids)

        result, sessions = await self._run("engine", self.number,
                                           caller_ids, f"e{first_caller}", prepare)
        self._judge(result, await self._engine_takes(sessions))
        return result

    async def _sessions(self, caller_ids: list[str]) -> list[str]:
        gate = asyncio.Semaphore(16)

        async def one(caller_id: str) -> str:
            async with gate:
                lk = (await self.vr("CreateRecordingList"))["recording_list"][
                    "recording_list_key"]
                keys = []
                for _ in range(TAKES):
                    tree = await self.vr("CreateRecording", recording_list_key=lk)
                    keys.append(tree["recording"]["recording_key"])
                tree = await self.vr("StartRecordingSession", recording_list_key=lk,
                                     recording_keys=",".join(keys), caller_id=caller_id)
                return str(tree["recording_session_key"])

        return list(await asyncio.gather(*(one(c) for c in caller_ids)))

    async def _engine_takes(self, session_keys: list[str]) -> list[list[float]]:
        """Per session, the length of each accepted take, read from the engine's own WAV."""
        rows = await self.pool.fetch(
            "SELECT s.session_key, r.play_key, t.take_number"
            "  FROM recording_sessions s"
            "  JOIN session_recordings sr ON sr.session_id = s.id"
            "  JOIN recordings r ON r.id = sr.recording_id"
            "  JOIN takes t ON t.id = r.accepted_take_id"
            " WHERE s.session_key = ANY($1::text[])"
            " ORDER BY t.id", session_keys)  # each session's takes in the order recorded
        by_session: dict[str, list[float]] = {k: [] for k in session_keys}
        for row in rows:
            # The take as recorded (a kept take is trimmed for listening: what the caller said
            # reached the engine is what counts here).
            path = take_path(self.data_dir, row["play_key"], row["take_number"], ORIGINAL)
            if not path.exists():
                path = take_path(self.data_dir, row["play_key"], row["take_number"], "wav")
            try:
                seconds = wav_seconds(await asyncio.to_thread(path.read_bytes))
            except (OSError, wave.Error, EOFError):
                seconds = 0.0
            by_session[row["session_key"]].append(seconds)
        return list(by_session.values())

    # --- Asterisk alone -----------------------------------------------------------------------
    async def baseline_step(self, n: int, first_caller: int) -> StepResult:
        caller_ids = [f"1555{first_caller + i:07d}" for i in range(n)]
        result, _ = await self._run("baseline", BASELINE_NUMBER,
                                    caller_ids, f"b{first_caller}")
        self._judge(result, await self._baseline_takes(caller_ids))
        return result

    async def loaded_step(self, n: int, first_caller: int, engine: StepResult,
                          engine_nice: int) -> StepResult:
        """The baseline beside burners taking the CPU the engine's step `engine` took: the
        engine's share of a core at its nice, its Postgres backends' at the default."""
        caller_ids = [f"1555{first_caller + i:07d}" for i in range(n)]
        seconds = engine.seconds or 1.0
        burns = [Burn(part, engine.cpu.get(part, 0.0) / seconds, nice)
                 for part, nice in (("engine", engine_nice), ("postgres", 0))
                 if engine.cpu.get(part, 0.0) > 0]
        self.progress("  loaded: burning " + ", ".join(
            f"{b.share:.2f} of a core at nice {b.nice} ({b.part})" for b in burns))
        result, _ = await self._run("loaded", BASELINE_NUMBER,
                                    caller_ids, f"l{first_caller}", burns=burns)
        self._judge(result, await self._baseline_takes(caller_ids))
        return result

    async def _baseline_takes(self, caller_ids: list[str]) -> list[list[float]]:
        gate = asyncio.Semaphore(16)

        async def take(name: str) -> float | None:
            async with gate:
                try:
                    data = await self.ari.stored_recording_file(name)
                except IvrError:
                    return None
                with contextlib.suppress(IvrError):
                    await self.ari.delete_stored_recording(name)
            try:
                return wav_seconds(data)
            except (wave.Error, EOFError):
                return 0.0

        async def call(caller_id: str) -> list[float]:
            found = await asyncio.gather(
                *(take(f"bench-{caller_id}-{i}") for i in range(1, TAKES + 1)))
            return [d for d in found if d is not None]

        return list(await asyncio.gather(*(call(c) for c in caller_ids)))


def as_json(result: StepResult) -> dict[str, Any]:
    out = dict(result.__dict__)
    out["ok"] = result.ok
    return out


__all__ = ["Burn", "Load", "StepResult", "as_json", "burners"]
