"""`make bench`: load steps over real SIP (the engine and Asterisk alone, side by side), the API
against a bare handler, ARI event routing, and media conversion. Prints a table and writes
bench/results/bench-TIMESTAMP.json.

    python -m bench.run [--steps 50,100,200,400] [--more] [--skip api,events,media,calls]
                        [--caller sipp|loadgen]

Steps go on past the listed ones (N += 200) while every system that passed the last step
still passes and the time budget allows (--more); the knee is the largest N each system held
with no call or take lost. The caller is SIPp in a network namespace of its own (bench/sipp.py)
or, with --caller loadgen, Asterisk calling itself (dialplan/loadgen.conf)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

import ivr.app  # noqa: F401  (first: the recorder package imports in this order)
from bench import api, calls, events, faults, media, sipp
from bench.engine import EngineProcess
from ivr.cli import asterisk_config
from ivr.core import db
from ivr.provision import asterisk as provision
from ivr.provision.postgres import ensure_server
from ivr.recorder.service import RecorderService
from ivr.settings import REPO_ROOT, Settings

RESULTS = REPO_ROOT / "bench" / "results"
SPEECH = REPO_ROOT / "tests" / "data" / "speech-fox.wav"
PROMPTS = REPO_ROOT / "prompts" / "en"
BUDGET = 22 * 60  # seconds: no new load step starts after this (make bench: 25 min in all)
STEP_SECONDS = 75  # what one load step takes at most, start to verdict


def say(line: str) -> None:
    print(line, flush=True)


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3]}


@contextlib.asynccontextmanager
async def speech_server() -> AsyncIterator[tuple[str, float]]:
    """Serves the caller's voice; cacheable, so Asterisk fetches it once."""
    data = SPEECH.read_bytes()
    name = f"speech-{hashlib.sha256(data).hexdigest()[:12]}.wav"

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="audio/wav",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})

    app = web.Application()
    app.router.add_get(f"/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = api.free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/{name}", calls.wav_seconds(data)
    finally:
        await runner.cleanup()


class Vr:
    """The MyVox API of the engine under test, as a developer."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http, self.base_url = http, base_url
        self.auth: dict[str, str] = {}

    async def __call__(self, action: str, **params: str) -> dict[str, Any]:
        form = {"action": action, "reply": "json", **self.auth, **params}
        async with self.http.post(f"{self.base_url}/vr", data=form) as resp:
            tree = dict(orjson.loads(await resp.read())["MyVoxapi"])
        if tree.get("status") != "success":
            raise RuntimeError(f"{action} failed: {tree}")
        return tree


async def set_up_recorder(vr: Vr, service: RecorderService) -> str:
    """A developer and a voice recorder with a number of its own; returns the number."""
    # A valid US number (exchange 2-9); dialled as its digits, which reach its E.164 form.
    number = "1737" + secrets.choice("23456789") + "".join(
        secrets.choice("0123456789") for _ in range(6))
    await service.add_number(number, None, "US", None)
    username, password = "bench" + secrets.token_hex(4), secrets.token_urlsafe(16)
    vr.auth = {"username": username, "password": password}
    await vr("CreateDeveloper")
    tree = await vr("CreateVoiceRecorder")
    vr.auth["voice_recorder_key"] = tree["voice_recorder"]["voice_recorder_key"]
    info = tree["voice_recorder"]["phone_number_list"]["phone_number_info"]
    return str((info[0] if isinstance(info, list) else info)["phone_number"]).lstrip("+")


async def main(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    settings = Settings.load(env_file=REPO_ROOT / ".env")
    skip = set(args.skip.split(",")) if args.skip else set()
    out: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                           "machine": machine()}
    say(f"machine: {out['machine']}")
    lock_path = settings.asterisk_root.parent / "engine-tests.lock"

    if args.faults:
        skip |= {"media", "events"}
    say("media: WAV -> MP3 ...")
    out["media"] = None if "media" in skip else await asyncio.to_thread(media.run, SPEECH)
    say("events: ARI event routing ...")
    out["events"] = None if "events" in skip else await events.run()

    say("Asterisk and PostgreSQL ...")
    # The load generator pair is in the benchmark's configuration only (issue #20); held for
    # the whole run, so that a test suite starting meanwhile, which wants Asterisk without it,
    # waits instead of restarting Asterisk under a step. Not under the engine lock: a suite
    # holds Asterisk (in_use) while it waits for that lock.
    # SIPp's network namespace first: Asterisk's `sipp` transport binds the host's end of it.
    asterisk_held = contextlib.ExitStack()
    use_sipp = args.caller == "sipp" and not args.faults and "calls" not in skip
    namespace = asterisk_held.enter_context(sipp.namespace()) if use_sipp else None
    cfg = dataclasses.replace(asterisk_config(settings), loadgen=True,
                              sipp=sipp.ADDRESSES if use_sipp else ())
    out["caller"] = "sipp" if use_sipp else "loadgen"
    info = await asyncio.to_thread(asterisk_held.enter_context, provision.held(cfg, progress=say))
    caller = None
    if namespace is not None:
        caller = sipp.SippCaller.prepare(
            namespace, SPEECH, calls.TAKES, sipp.script_seconds(calls.SCRIPT),
            {name: PROMPTS / f"{name}.wav" for name in ("review_menu", "recording_saved")},
            settings.network.sip_port)
        asterisk_held.callback(caller.close)
    await asyncio.to_thread(ensure_server, settings.database_url, REPO_ROOT / ".local/postgres",
                            say)
    database = f"ivr_bench_{os.getpid()}"
    database_url = db.with_database(settings.database_url, database)
    data_dir = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    engine = EngineProcess(database_url, data_dir, settings.public_url,
                           RESULTS / f"engine-{stamp}.log")
    await engine.migrate()
    pool = await db.create_pool(database_url, min_size=1, max_size=4)
    try:
        async with aiohttp.ClientSession() as http, speech_server() as (speech_url, speech_s):
            from ivr.telephony.rest import AriClient, basic_auth

            async with aiohttp.ClientSession(
                    headers=basic_auth(settings.ari_user, settings.ari_password),
                    timeout=aiohttp.ClientTimeout(total=30)) as ari_http:
                vr = Vr(http, settings.public_url)
                async with calls.engine_lock(lock_path, say), engine.running():
                    number = await set_up_recorder(
                        vr, RecorderService(pool, data_dir, open_signup=True))
                load = calls.Load(
                    AriClient(ari_http, settings.ari_url), http, pool, lock_path, info.pid,
                    engine, settings.public_url, database, data_dir, speech_url, speech_s,
                    number, vr, say, caller)
                out["speech_seconds"] = round(speech_s, 2)
                if args.faults:
                    say("faults: one at a time, in a steady load ...")
                    out["faults"] = await faults.run(
                        load, database_url, settings.ari_url, args.fault_calls, 3_000_000, say,
                        tuple(args.fault_list.split(",")))
                else:
                    out["load"] = [] if "calls" in skip else await run_steps(
                        load, args, t0, settings)
                    if "api" not in skip:
                        out["api"] = await run_api(load, vr, database_url, lock_path)
    finally:
        await pool.close()
        await db.drop_database(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)
        asterisk_held.close()
    if out.get("load"):
        out["knee"] = knee(out["load"])
    out["seconds"] = round(time.monotonic() - t0)
    path = RESULTS / f"{'faults' if args.faults else 'bench'}-{stamp}.json"
    path.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print()
    print(faults.table(out["faults"]) if args.faults else table(out))
    say(f"\nresults: {path.relative_to(REPO_ROOT)} ({out['seconds']} s)")
    return 0


async def run_steps(load: calls.Load, args: argparse.Namespace, t0: float,
                    settings: Settings) -> list[Any]:
    steps = [int(n) for n in args.steps.split(",")]
    results: list[Any] = []
    passing = {"baseline", "engine"}
    k = 0
    while k < len(steps) or (args.more and passing):
        if k >= len(steps):
            n = steps[-1] + 200
            steps.append(n)
        n = steps[k]
        if time.monotonic() - t0 + 3 * STEP_SECONDS > BUDGET:
            say(f"time budget reached: no step at N={n}")
            break
        say(f"step N={n}:")
        systems = [s for s in args.systems.split(",") if s != "loaded"]
        by_system: dict[str, calls.StepResult] = {}
        for system in systems:
            if k >= len(args.steps.split(",")) and system not in passing:
                continue
            first = 1_000_000 + k * 20_000 + (0 if system == "baseline" else 10_000)
            step = (load.baseline_step if system == "baseline" else load.engine_step)
            by_system[system] = result = await step(n, first)
            report(system, result)
            if not result.ok:
                passing.discard(system)
            results.append(calls.as_json(result))
            await asyncio.sleep(3)  # let Asterisk settle between steps
        engine, baseline = by_system.get("engine"), by_system.get("baseline")
        if engine is not None and ("loaded" in args.systems.split(",") or (
                args.control and baseline is not None
                and engine.recordings_complete < baseline.recordings_complete)):
            # The engine fell short: would Asterisk alone, given only the engine's CPU use,
            # have fallen as short?
            result = await load.loaded_step(n, 1_000_000 + k * 20_000 + 5_000, engine,
                                            settings.nice)
            report("loaded", result)
            results.append(calls.as_json(result))
            await asyncio.sleep(3)
        k += 1
    return results


def report(system: str, result: calls.StepResult) -> None:
    wire = result.wire_latency_ms
    say(f"  {system}: {result.completed}/{result.calls} completed, "
        f"{result.recordings_complete}/{result.calls * calls.TAKES} takes complete, CPU/call "
        f"{result.cpu_per_call_ms} ms, latency {result.latency_ms or '-'}, key event delay "
        f"{result.key_event_delay_ms or '-'}"
        + (f", on the wire {wire}" if wire else ""))


def knee(load: list[dict[str, Any]]) -> dict[str, Any]:
    """Per system, the smallest N of a step that lost a call or a take, the largest N below it
    of a step that lost none (None: none held), and engine / baseline of the largest held."""
    out: dict[str, Any] = {}
    for system in ("baseline", "engine"):
        steps = [r for r in load if r["system"] == system]
        lost = min((r["calls"] for r in steps if not r["ok"]), default=None)
        # Below the first loss only: a larger step that passed after it was luck.
        held = [r["calls"] for r in steps if r["ok"] and (lost is None or r["calls"] < lost)]
        out[system] = {"held": max(held) if held else None, "first_lost": lost}
    engine, baseline = out["engine"]["held"], out["baseline"]["held"]
    out["ratio"] = round(engine / baseline, 2) if engine and baseline else None
    return out


async def run_api(load: calls.Load, vr: Vr, database_url: str, lock_path: Path) -> Any:
    say("api: wrk, 64 connections ...")
    async with calls.engine_lock(lock_path, say), load.engine.running():
        lk = (await vr("CreateRecordingList"))["recording_list"]["recording_list_key"]
        keys = [(await vr("CreateRecording", recording_list_key=lk))["recording"]
                ["recording_key"] for _ in range(calls.TAKES)]
        tree = await vr("StartRecordingSession", recording_list_key=lk,
                        recording_keys=",".join(keys))
        return await api.run(load.engine_url, database_url, vr.auth,
                             str(tree["recording_session_key"]), lk)


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _cpu(cpu: dict[str, float], part: str) -> str:
    if part in cpu:
        return _fmt(cpu[part])
    burnt = cpu.get(f"burn_{part}")
    return "-" if burnt is None else f"burn {burnt}"


def _wire(w: dict[str, Any] | None) -> str:
    if not w or not w.get("count"):
        return "-"
    return f"{_fmt(w.get('p50'))} / {_fmt(w.get('p95'))} / {_fmt(w.get('p99'))}"


def table(out: dict[str, Any]) -> str:
    lines = ["Load over real SIP (2 takes per call; CPU in ms per call; latency = key press -> "
             "next prompt, ms; key event p50 / p99 = Asterisk's timestamp on a key press -> the "
             "event reaching its call, ms; take s p10 = the 10th percentile of the seconds each "
             f"take holds, for {out.get('speech_seconds', '?')} s of speech: a take starting "
             "late holds less; loaded = the baseline beside burners taking the CPU the engine "
             "and Postgres took in the engine's step, shown as `burn` in their columns; wire # "
             "/ 1 = key press -> the next prompt's first sound read off the wire, after # (the "
             "review menu, 40 ms of it its leading silence) and after 1 (recording saved), p50 / "
             "p95 / p99 ms; caller CPU = SIPp's, in its own namespace)",
             f"caller: {out.get('caller', 'loadgen')}",
             "| N | system | calls ok/failed | takes complete | Asterisk CPU | engine CPU | "
             "Postgres CPU | caller CPU | engine RSS MB (peak) | p50 | p95 | p99 | "
             "wire # | wire 1 | key event p50 / p99 | take s p10, 1st / 2nd |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in out.get("load") or []:
        cpu = r["cpu_per_call_ms"]
        lat = r["latency_ms"] or {}
        delay = r.get("key_event_delay_ms") or {}
        key_event = (f"{_fmt(delay.get('p50'))} / {_fmt(delay.get('p99'))}"
                     if delay.get("count") else "-")
        rss = f"{r['engine_rss_mb']} ({r['engine_rss_peak_mb']})" if r["system"] == "engine" \
            else "-"
        p10 = " / ".join(str(x) for x in r.get("take_seconds_p10") or []) or "-"
        wire = " | ".join(_wire(((r.get("wire_latency_ms") or {}).get("by_key") or {}).get(key))
                          for key in ("#", "1"))
        lines.append(
            f"| {r['calls']} | {r['system']} | {r['completed']}/{r['failed']} | "
            f"{r['recordings_complete']}/{r['calls'] * calls.TAKES} | {_fmt(cpu.get('asterisk'))}"
            f" | {_cpu(cpu, 'engine')} | {_cpu(cpu, 'postgres')} | {_fmt(cpu.get('sipp'))} | "
            f"{rss} | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p95'))} | {_fmt(lat.get('p99'))} | "
            f"{wire} | {key_event} | {p10} |")
    if out.get("knee"):
        k = out["knee"]
        lines += ["", "Knee: the largest N each system held with no call or take lost "
                  f"(stepped up to the first N it lost): baseline {_fmt(k['baseline']['held'])} "
                  f"(lost at {_fmt(k['baseline']['first_lost'])}), engine "
                  f"{_fmt(k['engine']['held'])} (lost at {_fmt(k['engine']['first_lost'])}); "
                  f"engine / baseline {_fmt(k['ratio'])}"]
    if out.get("api"):
        lines += ["", "API at 64 connections (wrk, 10 s each)",
                  "| request | server | req/s | p50 ms | p90 ms | p99 ms | errors |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for action, by in out["api"].items():
            for system, r in by.items():
                lines.append(f"| {action} | {system} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} |"
                             f" {_fmt(r['p90_ms'])} | {_fmt(r['p99_ms'])} | {r['errors']} |")
    if out.get("events"):
        lines += ["", "ARI event routing (loopback websocket -> EventStream -> Router -> Call)",
                  "| phase | events | events/s | delay p50 ms | p99 ms | max ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for phase, r in out["events"].items():
            label = "flood" if phase == "flood" else f"paced at {r['rate']:g}/s"
            lines.append(f"| {label} | {r['events']} | {_fmt(r['events_per_s'])} | "
                         f"{r['delay_p50_ms']} | {r['delay_p99_ms']} | {r['delay_max_ms']} |")
    if out.get("media"):
        m = out["media"]
        lines += ["", f"WAV -> MP3 ({m['audio_seconds']} s of 8 kHz speech, median of "
                  f"{media.RUNS})", "| converter | wall s | x real time |", "|---|---:|---:|"]
        for name, r in m.items():
            if isinstance(r, dict) and "wall_s" in r:
                lines.append(f"| {name} | {r['wall_s']} | {r['x_realtime']} |")
        if m.get("take_checks"):
            lines += ["", "Take checks (CPU ms, median; analysis of every take, processing of kept "
                      "ones)", "| audio | seconds | analyse ms | per s | process ms | per s |",
                      "|---|---:|---:|---:|---:|---:|"]
            for name, r in m["take_checks"].items():
                lines.append(f"| {name} | {r['audio_seconds']} | {r['analyse_ms']} | "
                             f"{r['analyse_ms_per_s']} | {r['process_ms']} | "
                             f"{r['process_ms_per_s']} |")
    return "\n".join(lines)


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="50,100,200,400")
    parser.add_argument("--more", action="store_true",
                        help="step on past the listed N while something still passes")
    parser.add_argument("--skip", default="", help="comma-separated: calls,api,events,media")
    parser.add_argument("--systems", default="baseline,engine",
                        help="which load systems to step (development: engine alone); "
                             "`loaded` (with engine) always runs the control")
    parser.add_argument("--faults", action="store_true",
                        help="the fault run (bench/faults.py) instead of the load steps")
    parser.add_argument("--fault-list", default=",".join(faults.FAULTS),
                        help="which faults (the fault run), comma-separated")
    parser.add_argument("--fault-calls", type=int, default=20,
                        help="calls in progress when each fault strikes (the fault run)")
    parser.add_argument("--caller", choices=("sipp", "loadgen"), default="sipp",
                        help="who calls: SIPp in a namespace of its own (bench/sipp.py), or "
                             "Asterisk itself through the loadgen pair (dialplan/loadgen.conf)")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="no control step where the engine falls short of the baseline")
    args = parser.parse_args()
    systems = set(args.systems.split(","))
    if systems - {"baseline", "engine", "loaded"}:
        parser.error(f"unknown system(s) {sorted(systems - {'baseline', 'engine', 'loaded'})}")
    if "loaded" in systems and "engine" not in systems:
        parser.error("`loaded` burns what the engine's step used: list engine too")
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
