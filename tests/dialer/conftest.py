"""Dialer fixtures: accounts, test destinations (numbers of 7-15 digits that route back into the
engine over the `ivr-loopback` trunk, each with a flow playing the called person: answer,
busy, no answer), dialer workers attached to the engine's real telephony worker with the
pace a test asks for, and a postback receiver that checks every signature."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pytest

from ivr.delivery.signing import EVENT_TYPE_HEADER
from ivr.dialer.accounts import Accounts, NewAccount
from ivr.dialer.flow import Speech, Telephone
from ivr.dialer.kinds import load_hooks
from ivr.dialer.service import Dialer
from ivr.dialer.worker import DialerWorker
from ivr.settings import Settings
from ivr.telephony.call import Call
from tests.receiver import SignedReceiver, serving
from tests.telephony_harness import Engine

_numbers = itertools.count(1)


def long_number() -> str:
    """A fresh 11-digit test number (the seed wants 7-15 digits)."""
    return f"3569{next(_numbers):07d}"


@dataclass
class Arrival:
    number: str
    caller_id: str
    at: float
    ended: float | None = None
    channel_id: str = ""


@dataclass
class Far:
    """What the called people saw: every call that arrived, per number."""

    arrivals: list[Arrival] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def to(self, number: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.number == number]

    async def note(self, arrival: Arrival) -> None:
        async with self.changed:
            self.arrivals.append(arrival)
            self.changed.notify_all()

    async def wait_count(self, n: int, timeout: float) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.arrivals) >= n),
                                   timeout)


class People:
    """Test destinations: `answers()`, `busy()`, `no_answer()` each give a new number."""

    def __init__(self, engine: Engine, far: Far) -> None:
        self.engine = engine
        self.far = far

    def _add(self, flow: Callable[[Call, Arrival], Awaitable[None]]) -> str:
        number = long_number()

        async def run(call: Call) -> None:
            arrival = Arrival(number, call.caller_id, time.monotonic(), channel_id=call.id)
            await self.far.note(arrival)
            try:
                await flow(call, arrival)
            finally:
                arrival.ended = time.monotonic()

        self.engine.routes.add(run, "dialer-test", number=number)
        return number

    def answers(self, hold: float = 1.0, press: str | None = None) -> str:
        async def flow(call: Call, arrival: Arrival) -> None:
            await call.answer()
            if press:
                await asyncio.sleep(0.6)
                await call.send_dtmf(press)
            await call.wait_gone(hold)

        return self._add(flow)

    def busy(self) -> str:
        async def flow(call: Call, arrival: Arrival) -> None:
            await call.hangup("busy")

        return self._add(flow)

    def no_answer(self) -> str:
        async def flow(call: Call, arrival: Arrival) -> None:
            await call.wait_gone(60)

        return self._add(flow)

    def busy_then_answers(self) -> str:
        seen = 0

        async def flow(call: Call, arrival: Arrival) -> None:
            nonlocal seen
            seen += 1
            if seen == 1:
                await call.hangup("busy")
                return
            await call.answer()
            await call.wait_gone(1.0)

        return self._add(flow)


@pytest.fixture
async def far() -> Far:
    return Far()


@pytest.fixture
async def people(engine: Engine, far: Far) -> People:
    return People(engine, far)


@dataclass
class Account:
    made: NewAccount

    @property
    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.made.account_id}:{self.made.secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def account(pool: asyncpg.Pool, postbacks: Postbacks) -> Account:
    made = await Accounts(pool).create(name="test")
    postbacks.secrets.append(made.webhook_secret)
    return Account(made)


@pytest.fixture
def dialer(pool: asyncpg.Pool, settings: Settings) -> Dialer:
    return Dialer(pool, settings, load_hooks(settings))


StartWorker = Callable[..., Awaitable[DialerWorker]]


@pytest.fixture
async def start_worker(engine: Engine, pool: asyncpg.Pool, settings: Settings
                       ) -> AsyncIterator[StartWorker]:
    """Workers on the engine's telephony (its ARI client, router and Stasis app) with the
    pace given; stopped, and anything a test left queued dropped, at the end."""
    workers: list[DialerWorker] = []

    async def start(**overrides: Any) -> DialerWorker:
        s = dataclasses.replace(settings, public_url=engine.url, **overrides)
        tel = Telephone(engine.tel.ari, engine.tel.runner.router, engine.tel.runner.app,
                        s.dialer_trunk, Speech(s.data_dir, engine.url))
        engine.tel.runner.resync_hooks.append(tel.resync)  # as in `ivr serve`
        worker = DialerWorker(pool, s, tel, load_hooks(s))
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        await worker.stop(5)
        engine.tel.runner.resync_hooks.remove(worker.tel.resync)
    await drop_queued(pool)


async def drop_queued(pool: asyncpg.Pool) -> None:
    """No call a test left queued may be dialled later by another test's `ivr serve`."""
    await pool.execute("UPDATE dialer_calls SET state = 'cancelled' WHERE state = 'queued'")


class Postbacks(SignedReceiver[tuple[str, dict[str, Any]]]):
    """Receives postbacks at /pb, each with its X-IVR-Event-Type (a call's or a job's);
    every one must carry a valid signature."""

    def __init__(self) -> None:
        super().__init__(lambda request, body: (request.headers.get(EVENT_TYPE_HEADER, ""),
                                                orjson.loads(body)))

    def of(self, message_id: str) -> list[dict[str, Any]]:
        """The entries of per-call postbacks for this call."""
        return [d for t, p in self.got if t == "broadcast.call"
                for d in p["data"] if d["message_id"] == message_id]

    def jobs(self, api_job_id: str) -> list[dict[str, Any]]:
        """The job postbacks of this job."""
        return [p for t, p in self.got if t == "broadcast.job" and p["api_job_id"] == api_job_id]

    async def wait_job(self, api_job_id: str, timeout: float = 30) -> dict[str, Any]:
        await self.wait_until(lambda: bool(self.jobs(api_job_id)), timeout,
                              lambda: f"no job postback for {api_job_id}")
        return self.jobs(api_job_id)[0]

    async def wait_for(self, message_ids: list[str], timeout: float = 30
                       ) -> dict[str, dict[str, Any]]:
        await self.wait_until(
            lambda: all(self.of(m) for m in message_ids), timeout,
            lambda: f"no postback for {[m for m in message_ids if not self.of(m)]}")
        return {m: self.of(m)[0] for m in message_ids}


@pytest.fixture(scope="session")
async def postbacks() -> AsyncIterator[Postbacks]:
    hooks = Postbacks()
    async with serving(hooks, "/pb") as base:
        hooks.url = f"{base}/pb"
        yield hooks


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30,
                     every: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def job_done(pool: asyncpg.Pool, job_id: object) -> bool:
    return bool(await pool.fetchval(
        "SELECT finished_at IS NOT NULL FROM dialer_jobs WHERE id = $1", job_id))
