"""Answering-machine detection (Asterisk's AMD() through dialplan/ivr-amd.conf): a person gets
the message at once; a machine gets it after its greeting and beep (after_beep) or not at all
(skip_machine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg

from ivr.dialer.flow import Speech
from ivr.dialer.models import Content, Destination, JobSpec
from ivr.dialer.service import Dialer
from ivr.media.transcode import wav_seconds
from ivr.media.tts import tts_dir
from ivr.settings import Settings
from ivr.telephony.call import Call
from tests.dialer.conftest import Account, StartWorker, eventually, job_done, long_number
from tests.telephony_harness import Engine

GREETING = ("Hello, you have reached Alex Morgan. I cannot take your call right now. Please "
            "leave a message after the tone.")
MESSAGE = "Your appointment is tomorrow at nine."


async def test_machine_hears_the_message_after_the_beep_or_not_at_all(
    engine: Engine, account: Account, dialer: Dialer, start_worker: StartWorker,
    pool: asyncpg.Pool, settings: Settings,
) -> None:
    speech = Speech(settings.data_dir, engine.url)
    greeting, hello, message = await asyncio.gather(
        speech.media(Content.tts(GREETING)), speech.media(Content.tts("Hello?")),
        speech.media(Content.tts(MESSAGE)))
    message_seconds = wav_seconds(tts_dir(settings.data_dir) / message.rsplit("/", 1)[1])
    heard: dict[str, float] = {}

    def machine(key: str) -> Callable[[Call], Awaitable[None]]:
        async def flow(call: Call) -> None:
            await call.answer()
            await asyncio.sleep(0.4)
            try:
                await call.play(greeting, "sound:beep")
                heard[f"{key}-greeting-end"] = time.monotonic()
                await call.wait_gone(30)
            finally:
                heard[f"{key}-end"] = time.monotonic()
        return flow

    async def person(call: Call) -> None:
        await call.answer()
        await asyncio.sleep(0.6)
        await call.play(hello)
        await call.wait_gone(30)

    to_machine, to_skipper, to_person = long_number(), long_number(), long_number()
    engine.routes.add(machine("after"), number=to_machine)
    engine.routes.add(machine("skip"), number=to_skipper)
    engine.routes.add(person, number=to_person)
    after = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts(MESSAGE), amd="after_beep",
        destinations=[Destination(to_machine), Destination(to_person)]))
    skip = await dialer.create_job(account.made.account, JobSpec(
        kind="broadcast", content=Content.tts(MESSAGE), amd="skip_machine",
        destinations=[Destination(to_skipper)]))
    await start_worker(dialer_cps=10)
    for job in (after, skip):
        await eventually(lambda j=job: job_done(pool, j.job_id), timeout=40)  # type: ignore[misc]
    rows = {r["number"]: r for r in await pool.fetch(
        "SELECT number, outcome, amd FROM dialer_calls WHERE job_id = ANY($1::uuid[])",
        [after.job_id, skip.job_id])}
    assert (rows[to_person]["outcome"], rows[to_person]["amd"]) == ("answered", "HUMAN")
    assert (rows[to_machine]["outcome"], rows[to_machine]["amd"]) == ("answered", "MACHINE")
    assert (rows[to_skipper]["outcome"], rows[to_skipper]["amd"]) == (
        "machine_skipped", "MACHINE")
    # after_beep: the whole message played once the greeting and its beep had ended ...
    assert heard["after-end"] - heard["after-greeting-end"] >= message_seconds - 0.3
    # ... skip_machine: the dialer hung up on the greeting, playing nothing.
    assert "skip-end" in heard and "skip-greeting-end" not in heard
