"""API throughput and latency at 64 concurrent clients (Debian's wrk): GetSessionStatus and
GetRecordingList through the engine's MyVox API, against bench/bare_api.py doing the same
queries, in the same run on the same database."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sys
from typing import Any
from urllib.parse import urlencode

import aiohttp

CONNECTIONS = 64
SECONDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = round(float(m.group(1))) if m else None
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        result[f"p{pct}_ms"] = round(_ms(m.group(1), m.group(2)), 2) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        result["errors"] += sum(int(g) for g in m.groups())
    return result


async def wrk(url: str) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (`make deps` installs it)")
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return parse_wrk(out.decode(errors="replace"))


async def _check(http: aiohttp.ClientSession, url: str, myvox: bool) -> None:
    """One request first: a benchmark of error replies would measure nothing."""
    async with http.get(url) as resp:
        body = await resp.text()
        if resp.status != 200 or (myvox and '"status":"success"' not in body.replace(" ", "")):
            raise RuntimeError(f"{url.split('?')[0]} answered {resp.status}: {body[:300]}")


async def run(engine_url: str, database_url: str, auth: dict[str, str], session_key: str,
              list_key: str) -> dict[str, Any]:
    port = free_port()
    bare = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare_api", database_url, str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    common = {"reply": "json", **auth}
    urls = {
        ("GetSessionStatus", "engine"): f"{engine_url}/vr?" + urlencode(
            {"action": "GetSessionStatus", "recording_session_key": session_key, **common}),
        ("GetSessionStatus", "bare"): f"{base}/session?key={session_key}",
        ("GetRecordingList", "engine"): f"{engine_url}/vr?" + urlencode(
            {"action": "GetRecordingList", "recording_list_key": list_key, **common}),
        ("GetRecordingList", "bare"): f"{base}/list?key={list_key}",
    }
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/session?key=-"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for (_, system), url in urls.items():
                await _check(http, url, system == "engine")
        results: dict[str, Any] = {}
        for (action, system), url in urls.items():
            results.setdefault(action, {})[system] = await wrk(url)
        return results
    finally:
        bare.terminate()
        await bare.wait()
