"""Call-control and dialer calls in the developer's console call log (issue #22 item 1): an
application and a dialer account made for a developer (`--developer`) place real calls through
Asterisk (one answered, one refused busy); the developer's Calls list shows them beside the
recorder calls, the busy ones failed with their code and cause, each call's page its timeline
and webhooks; an unlinked account's calls, another developer and ids that are not one stay
out; an unknown developer is refused when making an application or an account, with nothing
written."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from ivr.callcontrol.service import CallControl
from ivr.core.errors import InvalidParameter
from ivr.dialer.accounts import Accounts
from ivr.dialer.models import Content, Destination, JobSpec
from ivr.settings import Settings
from ivr.telephony.call import Call
from tests.callcontrol.conftest import VoiceApp, Webhooks, control, voice, webhooks  # noqa: F401
from tests.console.conftest import Browser, Dev, sign_in
from tests.console.test_dialer import dialer_of, far, people, start_worker  # noqa: F401
from tests.dialer.conftest import People, StartWorker
from tests.telephony_harness import Engine

pytestmark = pytest.mark.asterisk

ROWS = ("return Array.from(document.querySelectorAll('#calls tbody tr')).map(r =>"
        " [r.dataset.callId, ...Array.from(r.cells).map(c => c.textContent.trim())])")


async def test_callcontrol_and_dialer_calls_in_the_call_log(
        engine: Engine, engine_browser: Browser, make_developer: Any, pool: asyncpg.Pool,
        settings: Settings, control: CallControl, voice: Any,  # noqa: F811
        webhooks: Webhooks, people: People, start_worker: StartWorker) -> None:  # noqa: F811
    b = engine_browser
    dev: Dev = await make_developer()

    # Call control: the developer's application calls a number that answers and one busy.
    async def answers(call: Call) -> None:
        await call.answer()
        await call.wait_gone(1.0)

    async def busy(call: Call) -> None:
        await call.ari.ring(call.id)
        await asyncio.sleep(0.2)
        await call.hangup("busy")

    own = engine.routes.add(answers, "callcontrol")
    creds = await control.create_application(webhook_url=webhooks.url, numbers=[own],
                                             name="Support line", developer=dev.username)
    webhooks.secrets.append(creds.webhook_secret)
    app = VoiceApp(creds, own, voice)
    cc_answered, cc_busy = engine.routes.add(answers), engine.routes.add(busy)
    voice_ids = {}
    for to in (cc_answered, cc_busy):
        status, body = await app.request("POST", "/voice/v1/call",
                                         {"from": own, "to": to, "timeout": 3})
        assert status == 200, body
        voice_ids[to] = str(body["voice_id"])
    # The dialer: a job of the developer's account and one of an account of nobody's.
    accounts, dialer = Accounts(pool), dialer_of(pool, settings)
    mine = await accounts.create(name="Reminders", developer=dev.username)
    nobodys = await accounts.create(name="Operator's own")
    d_answered, d_busy, d_other = people.answers(hold=0.3), people.busy(), people.busy()
    job = await dialer.create_job(mine.account, JobSpec(
        kind="broadcast", content=Content.tts("Your appointment is tomorrow"),
        destinations=[Destination(d_answered), Destination(d_busy)], ring_timeout=3,
        client_job_id="remind-1"))
    other_job = await dialer.create_job(nobodys.account, JobSpec(
        kind="broadcast", content=Content.tts("Hello"), destinations=[Destination(d_other)],
        ring_timeout=3))
    await start_worker(dialer_cps=5, dialer_channels=10)
    for voice_id in voice_ids.values():
        await webhooks.wait(voice_id, "disconnected")
    for account, made in ((mine.account, job), (nobodys.account, other_job)):
        for _ in range(150):
            status_ = await dialer.job(account, made.job_id)
            if status_ is not None and status_.job.state == "done":
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"job {made.job_id} did not finish")

    await sign_in(b, dev, "/console/calls")
    await b.wait("return document.querySelectorAll('#calls tbody tr').length === 4")
    rows = {r[3]: r for r in await b.js(ROWS)}  # by the number dialled
    assert set(rows) == {cc_answered, cc_busy, d_answered, d_busy}, rows  # not d_other
    assert rows[cc_busy][0] == f"cc-{voice_ids[cc_busy]}"
    assert rows[cc_busy][4].startswith("failed") and "call_busy" in rows[cc_busy][4]
    assert rows[cc_busy][6] == "app Support line" and rows[cc_busy][7] == "outbound"
    assert rows[cc_answered][4] == "completed", rows[cc_answered]
    assert rows[d_busy][4].startswith("failed") and "call_busy" in rows[d_busy][4]
    assert rows[d_busy][6] == "dialer job remind-1"
    assert rows[d_answered][4] == "completed", rows[d_answered]
    await b.screenshot("console-calls-mixed")

    # Failed only: the two busy calls; the error list has them with their code too.
    await b.get("/console/calls?state=failed")
    await b.wait("return document.querySelectorAll('#calls tbody tr').length === 2")
    assert {r[3] for r in await b.js(ROWS)} == {cc_busy, d_busy}
    await b.get("/console/errors?kind=flow")
    assert (await b.text("#errors")).count("call_busy") >= 2

    # The dialer call's page: why it failed, linked to the code's page; its timeline.
    await b.get(f"/console/calls/{rows[d_busy][0]}")
    await b.wait("return document.getElementById('live-status').textContent === 'call over'")
    assert await b.text("#failure-code") == "call_busy"
    assert "Q.850 17" in await b.text("#failure-reason")
    assert "dialer job remind-1" in await b.text("#call-owner")
    timeline = await b.text("#call-timeline")
    assert "Call placed" in timeline and "Failed: call_busy" in timeline, timeline
    await b.submit("#failure-help")
    assert b.path == "/console/errors/codes/call_busy"
    # The call-control call's page: its webhooks (ringing, disconnected) in the timeline.
    await b.get(f"/console/calls/cc-{voice_ids[cc_busy]}")
    await b.wait("return document.getElementById('live-status').textContent === 'call over'")
    assert await b.text("#failure-code") == "call_busy"
    await b.wait("return document.getElementById('call-timeline').textContent"
                 ".includes('Webhook voice.disconnected')")
    await b.screenshot("console-call-callcontrol")

    # Ids that are not one, and another developer: "no such call", for page and stream.
    for bad in ("cc-not-a-uuid", "dialer-12x", f"dialer-{2**62}"):
        status = await b.js("return fetch(arguments[0]).then(r => r.status)",
                            f"/console/calls/{bad}")
        assert status == 404, bad
    await b._run(b.driver.delete_all_cookies)
    stranger: Dev = await make_developer()
    await sign_in(b, stranger, f"/console/calls/{rows[d_busy][0]}")
    assert "there is no call" in await b.text("main")
    assert await b.js("return fetch(arguments[0]).then(r => r.status)",
                      f"/console/calls/cc-{voice_ids[cc_busy]}/events") == 404


async def test_an_unknown_developer_is_refused_with_nothing_written(
        pool: asyncpg.Pool, control: CallControl, webhooks: Webhooks) -> None:  # noqa: F811
    apps = await pool.fetchval("SELECT count(*) FROM cc_applications")
    accounts = await pool.fetchval("SELECT count(*) FROM dialer_accounts")
    with pytest.raises(InvalidParameter, match="there is no developer 'nobody-here'"):
        await control.create_application(webhook_url=webhooks.url, numbers=["5550177"],
                                         developer="nobody-here")
    with pytest.raises(InvalidParameter, match="there is no developer 'nobody-here'"):
        await Accounts(pool).create(name="x", developer="nobody-here")
    assert await pool.fetchval("SELECT count(*) FROM cc_applications") == apps
    assert await pool.fetchval("SELECT count(*) FROM dialer_accounts") == accounts
