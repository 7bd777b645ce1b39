"""200 destinations at 10 calls per second with at most 12 channels: call start times keep to
the pace, and the channels in use (as the dialer recorded them and as the called side saw
them) never exceed the cap. Each call lasts ~1.4 s, so the pace alone would want ~14 at once:
the cap is reached and holds."""

from __future__ import annotations

import asyncpg

from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from tests.dialer.conftest import (
    Account,
    Far,
    People,
    StartWorker,
    eventually,
    job_done,
)

CALLS = 200
CPS = 10
CAP = 12


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                   key=lambda x: (x[0], x[1]))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


async def test_200_calls_keep_to_the_pace_and_the_cap(
    people: People, far: Far, account: Account, dialer: Dialer, start_worker: StartWorker,
    pool: asyncpg.Pool,
) -> None:
    numbers = [people.answers(hold=1.2) for _ in range(CALLS)]
    created = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello from the pace test"),
        destinations=[Destination(n) for n in numbers]))
    await start_worker(dialer_cps=CPS, dialer_channels=CAP)
    await eventually(lambda: job_done(pool, created.job_id), timeout=90, every=0.5)

    rows = await pool.fetch(
        "SELECT number, outcome, extract(epoch FROM started_at) AS s,"
        " extract(epoch FROM hang_at) AS e FROM dialer_calls WHERE job_id = $1"
        " ORDER BY started_at", created.job_id)
    assert [r["outcome"] for r in rows] == ["answered"] * CALLS
    starts = [float(r["s"]) for r in rows]
    # Never more than CPS calls started within any second ...
    for i in range(len(starts) - CPS):
        assert starts[i + CPS] - starts[i] >= 1.0 - 0.005, (i, starts[i + CPS] - starts[i])
    # ... and no far fewer than the cap allows (12 at once, ~1.4 s each).
    rate = (CALLS - 1) / (starts[-1] - starts[0])
    assert rate > 4, rate
    dialing = most_at_once([(float(r["s"]), float(r["e"])) for r in rows])
    assert dialing == CAP  # reached, never passed
    # The called side: every number exactly once, never more than CAP calls at once.
    assert sorted(a.number for a in far.arrivals) == sorted(numbers)
    spans = [(a.at, a.ended) for a in far.arrivals if a.ended is not None]
    assert len(spans) == CALLS
    peak = most_at_once(spans)
    assert peak <= CAP
    print(f"pace test: {rate:.2f} calls/s, {dialing} dialling / {peak} connected at most")
