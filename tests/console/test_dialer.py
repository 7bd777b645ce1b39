"""The console's dialer section in a real browser: a dialer account signs in (and a wrong
secret is refused), sees its jobs newest first with counts and progress, pages through a big
job's calls, pauses / resumes / cancels a job from its page, never reaches another account's
job, and watches a real job's progress (calls placed through Asterisk to test destinations
that answer, are busy, do not answer) change on the page without a reload."""

from __future__ import annotations

import asyncio
import html
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from ivr.dialer.accounts import Accounts, NewAccount
from ivr.dialer.kinds import load_hooks
from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from ivr.settings import Settings
from tests.console.conftest import Browser
from tests.dialer import conftest as dialer_fixtures
from tests.dialer.conftest import Far, People, StartWorker, long_number
from tests.telephony_harness import Engine

# The dialer's own fixtures: test destinations, what they saw, workers on the engine.
far = dialer_fixtures.far
people = dialer_fixtures.people
start_worker = dialer_fixtures.start_worker

JOBS = "/console/dialer/jobs"
ROWS = "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))" \
       ".map(r => Array.from(r.cells).map(c => c.textContent.trim().replace(/\\s+/g, ' ')))"


def hours_excluding_now() -> tuple[int, int]:
    """A one-minute calling window twelve hours away: no worker ever starts these calls."""
    now = datetime.now(UTC)
    start = (now.hour * 60 + now.minute + 720) % 1439
    return start, start + 1


def when(value: datetime | None) -> str:
    """A time as the pages show it (UTC, to the second)."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def dialer_of(pool: asyncpg.Pool, settings: Settings) -> Dialer:
    return Dialer(pool, settings, load_hooks(settings))


async def quiet_account(pool: asyncpg.Pool, name: str) -> NewAccount:
    return await Accounts(pool).create(name=name, hours=hours_excluding_now())


async def sign_in(b: Browser, made: NewAccount, start: str = JOBS) -> None:
    await b.get(start)
    assert b.path.startswith("/console/dialer/signin?next="), b.path
    await b.fill("#dialer-signin [name=account_id]", made.account_id)
    await b.fill("#dialer-signin [name=secret]", made.secret)
    await b.submit("#dialer-signin button[type=submit]")
    await b.wait("return !location.pathname.startsWith('/console/dialer/signin')")


async def test_dialer_sign_in_jobs_pages_and_controls(
        browser: Browser, api: TestClient, pool: asyncpg.Pool, settings: Settings) -> None:
    b = browser
    made = await quiet_account(pool, "Clinic reminders")
    dialer = dialer_of(pool, settings)
    older = await dialer.create_job(made.account, JobSpec(
        kind="campaign", content=Content.tts("Your appointment is tomorrow"),
        destinations=[Destination(long_number()) for _ in range(3)], client_job_id="menu-7"))
    big = await dialer.create_job(made.account, JobSpec(
        kind="broadcast", content=Content.tts("Web server one is down", voice="female"),
        destinations=[Destination(long_number(), custom_id=f"p-{i:02d}") for i in range(60)],
        client_job_id="outage-42", sender_id="35699000000"))

    # Signed out: to the dialer's own sign-in page; a wrong secret is refused.
    await b.get(JOBS)
    assert b.path.startswith("/console/dialer/signin?next=")
    await b.fill("#dialer-signin [name=account_id]", made.account_id)
    await b.fill("#dialer-signin [name=secret]", made.secret + "x")
    await b.submit("#dialer-signin button[type=submit]")
    await b.wait("return document.getElementById('flash')")
    assert "unknown account or wrong secret" in await b.text("#flash.error")
    assert b.path.startswith("/console/dialer/signin")
    assert b.driver.get_cookie("ivr_console_dialer") is None
    await b.fill("#dialer-signin [name=account_id]", made.account_id)
    await b.fill("#dialer-signin [name=secret]", made.secret)
    await b.submit("#dialer-signin button[type=submit]")
    await b.wait("return location.pathname === arguments[0]", JOBS)
    cookie = b.driver.get_cookie("ivr_console_dialer")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console/dialer"
    assert b.driver.get_cookie("ivr_console") is None  # no developer sign-in came with it
    async with pool.acquire() as conn:  # only the token's digest is stored
        assert not await conn.fetchval(
            "SELECT count(*) FROM console_dialer_sessions WHERE token_hash::text LIKE $1",
            f"%{cookie['value']}%")
        assert await conn.fetchval("SELECT count(*) FROM console_dialer_sessions"
                                   " WHERE account_pk = $1", made.account.pk) == 1

    # The jobs, newest first, with kind, client job id, state, counts and progress.
    rows = await b.js(ROWS, "#jobs")
    assert [r[1:4] for r in rows] == [["broadcast", "outage-42", "active"],
                                      ["campaign", "menu-7", "active"]]
    assert rows[0][4] == "queued 60" and rows[1][4] == "queued 3"
    assert rows[0][6].startswith("0%") and "of 60" in rows[0][6]
    ids = await b.js("return Array.from(document.querySelectorAll('#jobs tbody tr'))"
                     ".map(r => r.dataset.jobId)")
    assert ids == [str(big.job_id), str(older.job_id)]
    await b.screenshot("console-dialer-jobs")

    # A big job's calls, 50 a page, in the order given.
    await b.submit("#jobs tbody tr:first-child a")
    assert b.path == f"{JOBS}/{big.job_id}"
    await b.wait("return document.getElementById('live-status').textContent === 'live'")
    assert await b.text("#client-job-id") == "outage-42"
    assert await b.text("#job-state") == "active"
    assert await b.text("[data-count=queued]") == "60"
    assert await b.text("#job-percent") == "0%"
    calls = await b.js(ROWS, "#calls")
    assert len(calls) == 50
    assert [c[1] for c in calls[:2]] == ["p-00", "p-01"]
    assert calls[0][0] == big.calls[0].number and calls[0][2] == big.calls[0].message_id
    assert calls[0][3:5] == ["queued", "0"]
    assert "page 1 of 2" in await b.text(".pager")
    await b.submit(".pager a[rel=next]")
    calls = await b.js(ROWS, "#calls")
    assert [c[1] for c in calls] == [f"p-{i:02d}" for i in range(50, 60)]

    # Pause, resume, cancel from the page (POST + CSRF), each through the Dialer.
    await b.submit("#pause-job button")
    await b.wait("return document.querySelector('#flash.ok')")
    assert "paused" in await b.text("#flash")
    assert b.path == f"{JOBS}/{big.job_id}"
    assert await b.text("#job-state") == "paused"
    assert await b.js("return document.querySelector('#pause-job button').disabled")
    status = await dialer.job(made.account, big.job_id)
    assert status is not None and status.job.state == "paused"
    await b.submit("#resume-job button")
    await b.wait("return document.querySelector('#flash.ok')")
    assert await b.text("#job-state") == "active"
    status = await dialer.job(made.account, big.job_id)
    assert status is not None and status.job.state == "active"
    await b.js("window.confirm = () => true")
    await b.submit("#cancel-job button")
    await b.wait("return document.querySelector('#flash.ok')")
    assert "60 queued calls dropped" in await b.text("#flash")
    await b.wait("return document.getElementById('live-status').textContent === 'finished'")
    assert await b.text("#job-state") == "cancelled"
    assert await b.text("[data-count=cancelled]") == "60"
    assert await b.text("#job-percent") == "100%"
    assert await b.js("return Array.from(document.querySelectorAll('.controls button'))"
                      ".every(x => x.disabled)")
    status = await dialer.job(made.account, big.job_id)
    assert status is not None and status.job.state == "cancelled"
    assert status.counts == {"cancelled": 60}

    # A control the job's state does not allow: the page says why, nothing changes.
    await b.js("const f = document.getElementById('resume-job');"
               "f.querySelector('button').disabled = false;")
    await b.submit("#resume-job button")
    await b.wait("return document.querySelector('#flash.error')")
    assert "only a paused job can be resumed; this one is cancelled" in await b.text("#flash")
    status = await dialer.job(made.account, big.job_id)
    assert status is not None and status.job.state == "cancelled"

    # Bad input: a clear error page with its status.
    api_cookies = {"ivr_console_dialer": cookie["value"]}
    for path, code, text in (
            (f"{JOBS}/{big.job_id}?page=3", 400, "page 3 is past the last page (2)"),
            (f"{JOBS}/{big.job_id}?page=abc", 400, "'abc' is not a page number"),
            (f"{JOBS}/{big.job_id}?page=0", 400, "'0' is not a page number"),
            (f"{JOBS}/{big.job_id}?state=ringing", 400, "'ringing' is not a call state"),
            (f"{JOBS}/not-a-job", 404, "there is no job 'not-a-job'"),
            (f"{JOBS}/{uuid.uuid4()}", 404, "there is no job"),
            (f"{JOBS}?page=2", 400, "page 2 is past the last page (1)"),
            ("/console/dialer/nothing-here", 404, "there is no console page")):
        await b.get(path)
        assert text in await b.text("main .error-text"), path
        assert await b.text("main a") == "Back to your jobs"
        resp = await api.get(path, cookies=api_cookies)
        assert resp.status == code, path
        assert resp.content_type == "text/html" and text in html.unescape(await resp.text())
    # The filter by state and its pages.
    await b.get(f"{JOBS}/{older.job_id}?state=queued")
    assert len(await b.js(ROWS, "#calls")) == 3

    # CSRF: a tampered token is refused and changes nothing; the cookie alone is not enough.
    await b.js("document.querySelector('#pause-job [name=csrf_token]').value = 'x';"
               "document.querySelector('#pause-job button').disabled = false;")
    await b.submit("#pause-job button")
    await b.wait("return document.title.startsWith('Request refused')")
    assert "did not come from the console" in await b.text("main")
    for headers, data in (({}, {}), ({}, {"csrf_token": "guess"}),
                          ({"X-CSRF-Token": "guess"}, {})):
        resp = await api.post(f"{JOBS}/{older.job_id}/pause", data=data, headers=headers,
                              cookies=api_cookies)
        assert resp.status == 403, await resp.text()
    status = await dialer.job(made.account, older.job_id)
    assert status is not None and status.job.state == "active"
    # The sign-in form is protected too (double-submit cookie).
    resp = await api.post("/console/dialer/signin", data={
        "account_id": made.account_id, "secret": made.secret})
    assert resp.status == 403 and "ivr_console_dialer" not in resp.cookies
    # `next` never leaves the dialer section.
    await b.submit("form.signout button")
    await b.wait("return location.pathname === '/console/dialer/signin'")
    await b.get("/console/dialer/signin?next=//evil.example/x")
    assert await b.js("return document.querySelector('#dialer-signin [name=next]').value") \
        == JOBS
    # Signing out ended the sign-in on the server: the copied cookie no longer works.
    resp = await api.get(JOBS, cookies=api_cookies, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/dialer/signin")


async def test_another_accounts_job_is_not_found(
        browser: Browser, api: TestClient, pool: asyncpg.Pool, settings: Settings) -> None:
    b = browser
    alice, bob = await quiet_account(pool, "alice"), await quiet_account(pool, "bob")
    dialer = dialer_of(pool, settings)
    hers = await dialer.create_job(alice.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello"),
        destinations=[Destination(long_number(), custom_id="secret-patient")],
        client_job_id="alice-only"))
    await sign_in(b, bob)
    assert "alice-only" not in await b.text("main")
    assert "No jobs yet" in await b.text("main")
    await b.get(f"{JOBS}/{hers.job_id}")
    assert await b.text("h1") == "Not found"
    assert f"there is no job {hers.job_id} in this account" in await b.text("main")
    assert "secret-patient" not in await b.text("body")
    # The same answer without a browser, for the page, its stream and its controls.
    cookie = b.driver.get_cookie("ivr_console_dialer")
    assert cookie is not None
    for path in (f"{JOBS}/{hers.job_id}", f"{JOBS}/{hers.job_id}/events"):
        resp = await api.get(path, cookies={"ivr_console_dialer": cookie["value"]})
        assert resp.status == 404 and "no job" in await resp.text()
    # Bob's own (valid) CSRF token does not let him pause or cancel Alice's job.
    for action in ("pause", "cancel"):
        await b.js(
            "const f = document.createElement('form'); f.method = 'post';"
            "f.action = arguments[0]; const i = document.createElement('input');"
            "i.name = 'csrf_token'; i.value = document.body.dataset.csrf; f.appendChild(i);"
            "document.body.appendChild(f); window.__ivrOldPage = true; f.submit();",
            f"{JOBS}/{hers.job_id}/{action}")
        await b.wait("return !window.__ivrOldPage && document.readyState === 'complete'")
        assert await b.text("h1") == "Not found"
    status = await dialer.job(alice.account, hers.job_id)
    assert status is not None and status.job.state == "active"
    assert status.counts == {"queued": 1}
    # A developer's sign-in is no dialer sign-in (and the other way round).
    resp = await api.get(JOBS, cookies={"ivr_console": cookie["value"]},
                         allow_redirects=False)
    assert resp.status == 303
    resp = await api.get("/console/recorders", cookies={"ivr_console_dialer": cookie["value"]},
                         allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/signin")


@pytest.mark.asterisk
async def test_job_progress_is_live_with_real_calls(
        engine: Engine, engine_browser: Browser, people: People, far: Far,
        start_worker: StartWorker, pool: asyncpg.Pool, settings: Settings) -> None:
    b = engine_browser
    made = await Accounts(pool).create(name="Operations team")
    dialer = dialer_of(pool, settings)
    # The slowest (no answer, rings out) last, so the job sits part-done for a while.
    answered = [people.answers(hold=0.3) for _ in range(3)]
    presser, busy, silent = people.answers(hold=2.0, press="7"), people.busy(), \
        people.no_answer()
    numbers = [*answered, presser, busy, silent]
    created = await dialer.create_job(made.account, JobSpec(
        kind="broadcast", content=Content.tts("Web server one is down"),
        destinations=[Destination(n, custom_id=f"ops-{i}") for i, n in enumerate(numbers)],
        enable_menu_response=True, ring_timeout=3, client_job_id="outage-7"))
    by_number = {c.number: c.message_id for c in created.calls}
    job_path = f"{JOBS}/{created.job_id}"

    await sign_in(b, made, start=job_path)
    assert b.path == job_path
    await b.wait("return document.getElementById('live-status').textContent === 'live'")
    assert await b.text("#job-percent") == "0%"
    # Paused from the page before any worker runs: a worker started now dials nobody.
    await b.submit("#pause-job button")
    assert await b.text("#job-state") == "paused"
    await start_worker(dialer_cps=3, dialer_channels=10)
    await asyncio.sleep(1.0)  # three pacing slots at 3 calls/s, none used
    assert far.arrivals == []
    assert await b.text("[data-count=queued]") == "6"

    await b.submit("#resume-job button")
    assert await b.text("#job-state") == "active"
    # From here on the page is never reloaded: the marker would be gone.
    await b.js("window.__samePage = true; window.__seen = [];"
               "const live = document.getElementById('job-live');"
               "window.__watch = setInterval(() => { const p = live.dataset.progress;"
               " if (window.__seen[window.__seen.length - 1] !== p) window.__seen.push(p); },"
               " 30);")
    # Part-way: some calls settled, the one that rings out still dialing.
    await b.wait("const p = Number(document.getElementById('job-live').dataset.progress);"
                 "return p > 0 && p < 1", timeout=30)
    await b.screenshot("console-dialer-job")
    await b.wait("return document.getElementById('live-status').textContent === 'finished'",
                 timeout=45)
    assert await b.js("return window.__samePage === true")
    seen = [float(p) for p in await b.js("clearInterval(window.__watch); return window.__seen")]
    assert seen[-1] == 1.0
    assert any(0 < p < 1 for p in seen), seen  # progress was seen part-way, not only at 0 or 1
    assert seen == sorted(seen), seen
    assert int(await b.js("return document.getElementById('job-live').dataset.updates")) >= 3
    assert await b.text("#job-state") == "done"
    assert await b.text("#job-percent") == "100%"
    assert await b.text("[data-count=done]") == "6"
    assert await b.text("[data-count=queued]") == "0"
    outcomes = await b.text("#job-outcomes")
    assert "answered 4" in outcomes and "busy 1" in outcomes and "no answer 1" in outcomes
    assert await b.js("return Array.from(document.querySelectorAll('.controls button'))"
                      ".every(x => x.disabled)")
    assert await b.text("#job-finished") != "—"

    # Each call's row was updated in place: state, attempts, outcome, cause, key, times;
    # what it shows is what the dialer recorded.
    rows = {r[0]: r for r in await b.js(ROWS, "#calls")}
    for n in numbers:
        record = await dialer.call(made.account, by_number[n])
        assert record is not None and record.state == "done"
        cause = f"{record.cause_name} ({record.cause})" if record.cause_name else ""
        assert rows[n][3:8] == ["done", str(record.attempts), record.outcome, cause,
                                record.keypress or ""], (rows[n], record)
        hang = when(record.hang_at) + (f" {record.duration} s" if record.duration else "")
        assert rows[n][8:11] == [when(record.ring_at), when(record.answer_at), hang], \
            (rows[n], record)
    for n in answered:
        assert rows[n][5] == "answered" and rows[n][9] and rows[n][10], rows[n]
    assert rows[presser][5] == "answered" and rows[presser][7] == "7", rows[presser]
    assert rows[busy][5:7] == ["busy", "USER_BUSY (17)"], rows[busy]
    assert rows[busy][9] == ""  # never answered
    assert rows[silent][5] == "no_answer" and rows[silent][9] == "", rows[silent]

    status = await dialer.job(made.account, created.job_id)
    assert status is not None and status.job.state == "done"
    assert status.outcomes == {"answered": 4, "busy": 1, "no_answer": 1}
    assert sorted(a.number for a in far.arrivals) == sorted(numbers)
    await b.screenshot("console-dialer-job-done")
