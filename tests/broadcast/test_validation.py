"""Every result code of seed 003 a request can earn, with its HTTP status and the seed's
response shape; 401 without valid credentials."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import create_app
from ivr.broadcast import audio
from ivr.broadcast.errors import MESSAGES
from ivr.dialer.accounts import Accounts, NewAccount
from ivr.settings import Settings
from tests.broadcast.conftest import auth

JOBS = "/voice-broadcast/v1/jobs"
TTS = {"tts_text": "Hello, this is a test", "voice": "MAN", "language": "en-GB"}


def job(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_job_id": "1234567", "destinations": [
        {"number": "35699000001", "custom_id": "x1"}], "voice_content": dict(TTS)}
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def vc(**changes: Any) -> dict[str, Any]:
    return {**TTS, **changes}


CASES: list[tuple[str, Any, int, str]] = [
    ("not json", b"{oops", -80, MESSAGES[-80]),
    ("not an object", b"[1, 2]", -80, MESSAGES[-80]),
    ("both audio and tts", job(voice_content={"tts_text": "Hello there",
                                              "audio_file_url": "http://h/a.mp3"}), -81,
     MESSAGES[-81]),
    ("unknown parameter", job(colour="red"), -82, "colour is not allowed"),
    ("unknown voice_content parameter", job(voice_content=vc(speed=2)), -82,
     "speed is not allowed"),
    ("unknown destination parameter", job(destinations=[{"number": "35699000001", "x": 1}]),
     -82, "x is not allowed"),
    ("destinations not an array", job(destinations="35699000001"), -83, MESSAGES[-83]),
    ("destination without number", job(destinations=[{"phone": "35699000001"}]), -84,
     MESSAGES[-84]),
    ("number too short", job(destinations=[{"number": "123456"}]), -85, MESSAGES[-85]),
    ("number too long", job(destinations=[{"number": "1234567890123456"}]), -85, MESSAGES[-85]),
    ("too many destinations", job(destinations=[{"number": f"3569900000{i}"} for i in range(4)]),
     -86, "There can only be 3 destination numbers"),
    ("no valid numbers", job(destinations=[{"number": "call me"}]), -87, MESSAGES[-87]),
    ("empty destinations", job(destinations=[]), -87, MESSAGES[-87]),
    ("destinations missing", job(destinations=...), -88, MESSAGES[-88]),
    ("no tts_text nor audio", job(voice_content={"voice": "MAN"}), -89, MESSAGES[-89]),
    ("tts property with audio", job(voice_content={"audio_file_url": "http://h/a.mp3",
                                                   "voice": "MAN"}), -90, MESSAGES[-90]),
    ("audio property with tts", job(voice_content=vc(audio_file_url="")), -91, MESSAGES[-91]),
    ("sender too short", job(sender_id="12345"), -92,
     "The 'sender_id' number 12345 should at least have 7 digits and a maximum of 15 digits"),
    ("menu response not boolean", job(enable_menu_response="yes"), -93, MESSAGES[-93]),
    ("tts too short", job(voice_content=vc(tts_text="Hi")), -95,
     "The 'tts_text' should at least have 7 characters and a maximum of 500"),
    ("tts too long", job(voice_content=vc(tts_text="word " * 120)), -95,
     "The 'tts_text' should at least have 7 characters and a maximum of 500"),
    ("bad voice", job(voice_content=vc(voice="ROBOT")), -96, MESSAGES[-96]),
    ("bad language", job(voice_content=vc(language="xx-XX")), -97, MESSAGES[-97]),
    ("voice_content missing", job(voice_content=...), -98, MESSAGES[-98]),
    ("job id too short", job(client_job_id="123"), -99, MESSAGES[-99]),
    ("bad callback url", job(callback_url="ftp://example.com/cb"), -101,
     "There was a problem with your job: 'callback_url' must be an http or https URL"),
    ("custom id twice", job(destinations=[{"number": "35699000001", "custom_id": "same"},
                                          {"number": "35699000002", "custom_id": "same"}]),
     -102, "Custom ID same is not unique"),
    ("ring timeout too small", job(ring_timeout=10), -103, "ring_timeout should be bigger than 10"),
    ("retry interval not integer", job(retry_interval="60"), -104,
     "retry_interval should be integer"),
    ("audio url not http", job(voice_content={"audio_file_url": "ftp://h/a.mp3"}), -111,
     MESSAGES[-111]),
    # The seed's names (job_id, tts_voice, tts_lang) are aliases: checked as the field is.
    ("job_id too short", job(client_job_id=..., job_id="123"), -99, MESSAGES[-99]),
    ("job_id and client_job_id differ", job(job_id="7654321"), -101,
     "There was a problem with your job: 'job_id' is another name of 'client_job_id': "
     "give one of them, or both with the same value"),
    ("tts_voice and voice differ", job(voice_content=vc(tts_voice="WOMAN")), -101,
     "There was a problem with your job: 'tts_voice' is another name of 'voice': "
     "give one of them, or both with the same value"),
    ("bad tts_voice", job(voice_content={"tts_text": "Hello there", "tts_voice": "ROBOT"}),
     -96, MESSAGES[-96]),
    ("bad tts_lang", job(voice_content={"tts_text": "Hello there", "tts_lang": "xx-XX"}),
     -97, MESSAGES[-97]),
    ("tts_lang with audio", job(voice_content={"audio_file_url": "http://h/a.mp3",
                                                "tts_lang": "en-GB"}), -90, MESSAGES[-90]),
]


@pytest.fixture
async def client(api: TestClient, full: NewAccount) -> TestClient:
    return api


async def post(client: TestClient, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None
    resp = await client.post(JOBS, data=data, json=None if data is not None else body,
                             headers={**headers, "Content-Type": "application/json"})
    return resp.status, await resp.json()


def assert_refused(status: int, body: dict[str, Any], code: int, description: str) -> None:
    assert status == 403, body
    assert body["result_info"] == {"status_code": code, "description": description}
    assert len(body["api_job_id"]) == 36  # every answer names a job id, as the seed's


@pytest.mark.parametrize(("name", "body", "code", "description"), CASES,
                         ids=[c[0] for c in CASES])
async def test_request_validation_codes(client: TestClient, full: NewAccount,
                                        pool: asyncpg.Pool, name: str, body: Any, code: int,
                                        description: str) -> None:
    jobs_before = await pool.fetchval("SELECT count(*) FROM dialer_jobs")
    status, answer = await post(client, body, auth(full))
    assert_refused(status, answer, code, description)
    if isinstance(body, dict) and "client_job_id" in body and code != -99:
        assert answer["client_job_id"] == body["client_job_id"]
    assert await pool.fetchval("SELECT count(*) FROM dialer_jobs") == jobs_before


async def test_every_destination_on_the_do_not_call_list(client: TestClient, full: NewAccount,
                                                         pool: asyncpg.Pool) -> None:
    account = await Accounts(pool).get(full.account_id)
    assert account is not None
    await Accounts(pool).add_dnc(account, ["35699000001"])
    status, answer = await post(client, job(), auth(full))
    assert_refused(status, answer, -101, "There was a problem with your job: "
                   "every destination is on the do-not-call list")


@pytest.mark.parametrize("same", [False, True])
async def test_the_seeds_field_names_are_accepted(client: TestClient, full: NewAccount,
                                                  pool: asyncpg.Pool, same: bool) -> None:
    """job_id, tts_voice and tts_lang (alone, or beside today's names with the same value)."""
    body = job(client_job_id=..., job_id="job-7654321", voice_content={
        "tts_text": "Hello, this is a test", "tts_voice": "WOMAN", "tts_lang": "de-DE"})
    if same:
        body["client_job_id"] = "job-7654321"
        body["voice_content"].update(voice="WOMAN", language="de-DE")
    status, answer = await post(client, body, auth(full))
    assert status == 200, answer
    assert answer["client_job_id"] == "job-7654321"
    row = await pool.fetchrow("SELECT client_job_id, content, meta FROM dialer_jobs"
                              " WHERE id = $1", uuid.UUID(answer["api_job_id"]))
    assert row["client_job_id"] == "job-7654321"
    content, meta = orjson.loads(row["content"]), orjson.loads(row["meta"])
    assert (content["voice"], content["language"]) == ("female", "de-DE")
    assert (meta["tts_voice"], meta["tts_lang"]) == ("WOMAN", "de-DE")


@pytest.mark.parametrize(("destinations", "code", "description"), [
    ([{"number": "35699111111"}, {"number": "35699000002"}], -122, MESSAGES[-122]),
    ([{"number": "35699000002"}], -123,
     "Only the personal mobile phone number 35699111111 can used when using a TEST Account"),
])
async def test_test_account_limits(client: TestClient, trial: NewAccount,
                                   destinations: list[dict[str, str]], code: int,
                                   description: str) -> None:
    status, answer = await post(client, job(destinations=destinations), auth(trial))
    assert_refused(status, answer, code, description)


async def test_test_account_may_call_its_own_number(client: TestClient, trial: NewAccount,
                                                    pool: asyncpg.Pool) -> None:
    status, answer = await post(client, job(destinations=[{"number": "35699111111"}]),
                                auth(trial))
    assert status == 200 and answer["result_info"]["status_code"] == 0


@pytest.mark.parametrize(("headers"), [
    {}, {"Authorization": "Bearer abc"}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3Ondyb25n"},  # unknown id:wrong
])
async def test_bad_credentials_are_401(client: TestClient, full: NewAccount,
                                       headers: dict[str, str]) -> None:
    status, answer = await post(client, job(), headers)
    assert status == 401
    assert answer == {"result_info": {"status_code": -50, "description": "Not authorized"}}


async def test_wrong_secret_is_401(client: TestClient, full: NewAccount) -> None:
    bad = dataclasses.replace(full, secret="not-the-secret")
    status, answer = await post(client, job(), auth(bad))
    assert status == 401 and answer["result_info"]["status_code"] == -50


# --- audio files ------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "code"), [
    ("/missing.mp3", -106),
    ("/hello world.mp3", -107),
    ("/hello.ogg", -107),
    ("/corrupt.wav", -108),
    ("/empty.wav", -110),
])
async def test_audio_file_codes(client: TestClient, full: NewAccount, files: str, path: str,
                                code: int) -> None:
    body = job(voice_content={"audio_file_url": files + path})
    status, answer = await post(client, body, auth(full))
    assert_refused(status, answer, code, MESSAGES[code])


async def test_audio_file_that_cannot_be_reached(client: TestClient, full: NewAccount) -> None:
    body = job(voice_content={"audio_file_url": "http://127.0.0.1:9/hello.mp3"})
    status, answer = await post(client, body, auth(full))
    assert_refused(status, answer, -106, MESSAGES[-106])


async def test_audio_file_too_large(client: TestClient, full: NewAccount, files: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "MAX_BYTES", 1000)
    body = job(voice_content={"audio_file_url": f"{files}/hello.wav"})
    status, answer = await post(client, body, auth(full))
    assert_refused(status, answer, -109, MESSAGES[-109])


@pytest.mark.parametrize("name", ["hello.wav", "hello.mp3"])
async def test_audio_file_job_is_converted_for_asterisk(client: TestClient, full: NewAccount,
                                                        files: str, pool: asyncpg.Pool,
                                                        name: str) -> None:
    body = job(voice_content={"audio_file_url": f"{files}/{name}"})
    status, answer = await post(client, body, auth(full))
    assert status == 200, answer
    content = await pool.fetchval("SELECT content->>'audio' FROM dialer_jobs WHERE id = $1",
                                  uuid.UUID(answer["api_job_id"]))
    resp = await client.get(f"/media/tts/{content}.wav")  # what Asterisk will fetch
    wav = await resp.read()
    assert resp.status == 200
    assert wav[:4] == b"RIFF" and int.from_bytes(wav[24:28], "little") == 8000


# --- queries ----------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "code"), [
    ("/voice-broadcast/v1/messages/123", -121),
    ("/voice-broadcast/v1/messages/1234567890123456789a", -121),
    ("/voice-broadcast/v1/messages/12345678901234567890", -120),
    ("/voice-broadcast/v1/jobs/abc", -126),
    (f"/voice-broadcast/v1/jobs/{uuid.uuid4()}", -125),
    ("/voice-broadcast/v1/jobs/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", -125),
])
async def test_query_codes(client: TestClient, full: NewAccount, path: str, code: int) -> None:
    resp = await client.get(path, headers=auth(full))
    answer = await resp.json()
    assert resp.status == 403
    assert answer["result_info"] == {"status_code": code, "description": MESSAGES[code]}


async def test_another_accounts_job_is_not_found(client: TestClient, full: NewAccount,
                                                 trial: NewAccount, pool: asyncpg.Pool) -> None:
    status, made = await post(client, job(), auth(full))
    assert status == 200
    resp = await client.get(f"{JOBS}/{made['api_job_id']}", headers=auth(trial))
    assert resp.status == 403 and (await resp.json())["result_info"]["status_code"] == -125
    message_id = made["results"]["35699000001"]["message_id"]
    resp = await client.get(f"/voice-broadcast/v1/messages/{message_id}", headers=auth(trial))
    assert resp.status == 403 and (await resp.json())["result_info"]["status_code"] == -120


# --- limits of this installation --------------------------------------------------------
@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(dataclasses.replace(settings, dialer_max_queued=1,
                                         dialer_trunk="no-such-trunk"), with_telephony=False)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def test_server_too_busy(limited: TestClient, full: NewAccount) -> None:
    body = job(destinations=[{"number": "35699000001"}, {"number": "35699000002"}])
    status, answer = await post(limited, body, auth(full))
    assert_refused(status, answer, -105, MESSAGES[-105])


async def test_unknown_trunk_is_no_service(limited: TestClient, full: NewAccount,
                                           asterisk: object) -> None:
    status, answer = await post(limited, job(), auth(full))
    assert_refused(status, answer, -112, MESSAGES[-112])
