"""The engine under test: `ivr serve` in a subprocess, with the developer's settings (.env) but
a database and a data folder of its own. It owns the configured Stasis app while it runs, so it
runs only while the bench holds the engine lock: one start per step."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from ivr.settings import REPO_ROOT

# `python -m ivr` from the repository (what `make` runs is the same code).
IVR = (sys.executable, "-m", "ivr")


class EngineProcess:
    def __init__(self, database_url: str, data_dir: Path, base_url: str, log: Path) -> None:
        token = secrets.token_urlsafe(24)  # /metrics whatever .env says (docs/security.md)
        self.env = {**os.environ, "IVR_DATABASE_URL": database_url, "IVR_DATA_DIR": str(data_dir),
                    "IVR_METRICS_TOKEN": token}
        self.monitor = {"Authorization": f"Bearer {token}"}
        self.base_url = base_url
        self.log = log
        self.proc: asyncio.subprocess.Process
        self._extra: dict[str, str] = {}

    async def migrate(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *IVR, "migrate", env=self.env, cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"ivr migrate failed: {out.decode(errors='replace')[-2000:]}")

    @contextlib.asynccontextmanager
    async def running(self, **env: str) -> AsyncIterator[int]:
        """Start `ivr serve` (with `env` on top of its settings), wait until /healthz says it
        is connected to ARI, yield its pid; stop it with SIGTERM (calls in progress drain)
        afterwards. `restart` replaces it meanwhile (the fault run)."""
        self._extra = env
        await self._start()
        try:
            yield self.proc.pid
        finally:
            await self.stop()

    async def _start(self) -> None:
        # A session of its own, as a service has: its CPU claim (IVR_NICE, under autogroup
        # scheduling a claim for the whole session) then covers the engine, not the bench.
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *IVR, "serve", env={**self.env, **self._extra}, cwd=REPO_ROOT,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        await self._wait_ready(self.proc)

    async def stop(self, grace: float = 40) -> None:
        proc = self.proc
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def restart(self, *, kill: bool) -> float:
        """SIGKILL (a crash) or SIGTERM (a deploy's graceful stop) and start again; returns
        the seconds until the new one was healthy."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if kill:
            self.proc.kill()
            await self.proc.wait()
        else:
            await self.stop()
        await self._start()
        return round(loop.time() - began, 1)

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError(f"ivr serve exited ({proc.returncode}); see {self.log}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base_url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"ivr serve did not become healthy in 30 s; see {self.log}")
