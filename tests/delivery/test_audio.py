"""Audio leaving and expiring: an accepted take uploaded (PUT and multipart POST, with the auth
header, retried); the retention period deleting only expired audio, in batches; signed audio
links that expire, refuse tampering, and still answer Range requests."""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from ivr.delivery.links import AudioLinks
from ivr.delivery.retention import RetentionJob
from ivr.recorder.events import RecorderEvents
from ivr.recorder.models import take_path
from ivr.recorder.retention import AudioRetention
from ivr.settings import Settings
from ivr.telephony.rest import basic_auth
from tests.delivery.conftest import (
    DATA,
    Made,
    Receiver,
    event_of,
    eventually,
    new_session,
    store_take,
)
from tests.delivery.test_callbacks import phone_for


async def recording(app: TestClient, made: Made, list_key: str, key: str) -> dict[str, Any]:
    auth = basic_auth(made.vr.dev.username, made.vr.dev.password)
    resp = await app.get(f"/v1/recorders/{made.key}/lists/{list_key}/recordings/{key}",
                         headers=auth)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def upload_state_is(app: TestClient, made: Made, list_key: str, key: str,
                          state: str) -> bool:
    return (await recording(app, made, list_key, key)).get("upload_state") == state


async def test_an_accepted_take_is_uploaded_with_retries(
        app: TestClient, make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(
        storage="upload", audio_format="both",
        upload_url=f"{receiver.url}/put/{{recording_key}}/take-{{take}}.{{ext}}",
        upload_auth_header="Authorization: Bearer up-token-123")
    session = await new_session(made)
    rk = session["keys"][0]
    receiver.fail_first[f"/put/{rk}/take-1.wav"] = 2
    take = await store_take(phone_for(pool, fast_settings), pool, session["session_key"], rk,
                            mp3=True)
    wav = await receiver.wait(f"/put/{rk}/take-1.wav", 3)
    (mp3,) = await receiver.wait(f"/put/{rk}/take-1.mp3", 1)
    play_key = await pool.fetchval("SELECT play_key FROM recordings WHERE recording_key = $1",
                                   rk)
    for request, ext, ctype in ((wav[-1], "wav", "audio/wav"), (mp3, "mp3", "audio/mpeg")):
        stored = take_path(fast_settings.data_dir, play_key, take.number, ext).read_bytes()
        assert request.method == "PUT" and request.body == stored
        assert request.headers["Authorization"] == "Bearer up-token-123"
        assert request.headers["Content-Type"] == ctype
        assert request.headers["X-IVR-Content-SHA256"] == hashlib.sha256(stored).hexdigest()
    assert len({r.headers["X-IVR-Event-Id"] for r in wav}) == 1
    await eventually(lambda: upload_state_is(app, made, session["list_key"], rk, "uploaded"))
    sent = len(wav[-1].body) + len(mp3.body)
    assert await pool.fetchval("SELECT upload_bytes FROM takes t JOIN recordings r"
                               " ON r.accepted_take_id = t.id WHERE r.recording_key = $1",
                               rk) == sent
    metrics = await (await app.get("/metrics")).text()
    assert f"ivr_upload_bytes_total {float(sent)}" in metrics
    assert 'ivr_deliveries_total{kind="upload",outcome="retried"} 2.0' in metrics
    # Every attempt is kept for the console's inspector, the upload header's value not.
    kept = await pool.fetch(
        "SELECT a.response_status, a.request_headers::text AS sent FROM outbox_attempts a"
        " JOIN outbox o ON o.id = a.outbox_id WHERE o.subject = $1 ORDER BY a.id",
        f"take:{take.id}")
    assert [r["response_status"] for r in kept].count(500) == 2 and len(kept) == 4
    assert all(["Authorization", "[redacted]"] in orjson.loads(r["sent"])
               and "up-token-123" not in r["sent"] for r in kept)


async def test_multipart_post_upload_and_a_failed_upload_shows(
        app: TestClient, make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(storage="upload", upload_method="post",
                               upload_url=f"{receiver.url}/post/{{play_key}}")
    session = await new_session(made, 2)
    phone = phone_for(pool, fast_settings)
    first, second = session["keys"]
    await store_take(phone, pool, session["session_key"], first)
    play_keys = dict(await pool.fetch(
        "SELECT recording_key, play_key FROM recordings WHERE recording_key = ANY($1::text[])",
        session["keys"]))
    (request,) = await receiver.wait(f"/post/{play_keys[first]}", 1)
    assert request.method == "POST" and request.filename == f"{first}.wav"
    assert request.body == (DATA / "speech-short.wav").read_bytes()
    receiver.always_fail.add(f"/post/{play_keys[second]}")
    await store_take(phone, pool, session["session_key"], second)
    await eventually(lambda: upload_state_is(app, made, session["list_key"], second, "failed"))
    assert (await recording(app, made, session["list_key"], first))["upload_state"] == "uploaded"


async def test_retention_deletes_only_expired_audio_in_batches(
        app: TestClient, make_recorder: Any, receiver: Receiver, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(retention_days=1, audio_format="both",
                               callback_url=f"{receiver.url}/kept", callback_format="json")
    session = await new_session(made, 4)
    phone = phone_for(pool, fast_settings)
    for key in session["keys"]:
        await store_take(phone, pool, session["session_key"], key, mp3=True)
    old, fresh = session["keys"][:3], session["keys"][3]
    await pool.execute(
        "UPDATE takes t SET created_at = now() - interval '2 days' FROM recordings r"
        " WHERE r.id = t.recording_id AND r.recording_key = ANY($1::text[])", old)
    paths = {r["recording_key"]: take_path(fast_settings.data_dir, r["play_key"], 1, "wav")
             for r in await pool.fetch("SELECT recording_key, play_key FROM recordings"
                                       " WHERE recording_key = ANY($1::text[])",
                                       session["keys"])}
    events = RecorderEvents.for_settings(fast_settings.data_dir, fast_settings.public_url)
    job = RetentionJob(AudioRetention(pool, fast_settings.data_dir, events).sweep,
                       interval=3600, batch_size=2)
    assert await job.run_once() == (3, 6)  # two batches: 2 takes, then 1; wav + mp3 each
    assert await job.run_once() == (0, 0)
    assert all(not paths[k].exists() and not paths[k].with_suffix(".mp3").exists()
               for k in old)
    assert paths[fresh].exists() and paths[fresh].with_suffix(".mp3").exists()
    for key in old:
        rec = await recording(app, made, session["list_key"], key)
        assert rec["recording_state"] == "recorded" and rec["recording_length"] == 2
        assert rec["has_wav_file"] is False and rec["has_mp3_file"] is False
        assert "wav_url" not in rec and "mp3_url" not in rec and rec["audio_deleted_at"]
    kept = await recording(app, made, session["list_key"], fresh)
    assert kept["has_wav_file"] and "audio_deleted_at" not in kept
    resp = await app.get(urlsplit(kept["wav_url"]).path)
    assert resp.status == 200
    # created, called, started x4, recorded x4, then one audio_deleted per expired recording.
    got = await receiver.wait("/kept", 10 + len(old), timeout=10)
    deleted = [event_of(r) for r in got if event_of(r)["event_type"] == "recording.audio_deleted"]
    assert sorted(e["recording"]["recording_key"] for e in deleted) == sorted(old)
    assert all(e["recording"]["has_wav_file"] is False for e in deleted)
    metrics = await (await app.get("/metrics")).text()
    assert "ivr_retention_deleted_files_total" in metrics


async def test_signed_links_expire_refuse_tampering_and_serve_ranges(
        app: TestClient, make_recorder: Any, pool: asyncpg.Pool,
        fast_settings: Settings) -> None:
    made = await make_recorder(link_ttl_seconds=120)
    session = await new_session(made)
    rk = session["keys"][0]
    await store_take(phone_for(pool, fast_settings), pool, session["session_key"], rk)
    rec = await recording(app, made, session["list_key"], rk)
    url = urlsplit(rec["wav_url"])
    query = dict(p.split("=", 1) for p in url.query.split("&"))
    assert set(query) == {"expires", "signature"}
    assert time.time() + 100 < int(query["expires"]) <= time.time() + 121
    audio = (DATA / "speech-short.wav").read_bytes()
    resp = await app.get(f"{url.path}?{url.query}")
    assert resp.status == 200 and await resp.read() == audio
    resp = await app.get(f"{url.path}?{url.query}", headers={"Range": "bytes=100-199"})
    assert resp.status == 206 and await resp.read() == audio[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(audio)}"
    # Plain, tampered, re-dated and expired links are refused.
    refused = [
        url.path,
        f"{url.path}?expires={query['expires']}&signature={'0' * 32}",
        f"{url.path}?expires={int(query['expires']) + 3600}&signature={query['signature']}",
    ]
    links = AudioLinks.for_settings(fast_settings.data_dir, "")
    refused.append(links.url(rec["play_key"], "wav", 60, now=time.time() - 120))
    for path in refused:
        resp = await app.get(path)
        assert resp.status == 403, path
        assert (await resp.json())["error"] == "link_refused"
    resp = await app.get(refused[-1])
    assert "expired" in (await resp.json())["message"]
