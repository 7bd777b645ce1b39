"""Action 1: a base64 WAV saved (checked, converted to 8 kHz mono), replaced, used by a send,
deleted; what is not a WAV is refused with nothing stored."""

from __future__ import annotations

import base64
from pathlib import Path

import asyncpg

from ivr.campaigns.sounds import sounds_dir
from ivr.media.process import run_tool
from ivr.media.transcode import wav_info
from ivr.settings import Settings
from tests.campaigns.conftest import Client, snapshot
from tests.telephony_harness import DATA


def upload_xml(name: str, data: bytes, fileaction: str = "save") -> str:
    encoded = base64.encodebytes(data).decode()  # with line breaks, as VoiceShot's example
    return (f'<campaign action="1"><file xmlns:dt="urn:schemas-microsoft-com:datatypes" '
            f'dt:dt="bin.base64" filename="{name}" fileaction="{fileaction}">{encoded}'
            f"</file></campaign>")


async def token_of(pool: asyncpg.Pool, client: Client, name: str) -> str | None:
    return await pool.fetchval(
        "SELECT token FROM campaign_sounds WHERE account_pk = $1 AND filename = $2",
        client.new.account.pk, name)


async def test_upload_replace_use_delete(quiet: Client, pool: asyncpg.Pool, settings: Settings,
                                         tmp_path: Path) -> None:
    # A 16 kHz stereo upload is stored as 8 kHz mono 16-bit PCM.
    wide = tmp_path / "wide.wav"
    await run_tool(["sox", str(DATA / "speech-short.wav"), "-r", "16000", "-c", "2",
                    str(wide)])
    reply = await quiet.post(upload_xml("Hello.wav", wide.read_bytes()))
    assert (reply.status, reply.errorid, reply.root.attrib["action"]) == (200, 0, "1")
    saved = reply.root.find("file")
    assert saved is not None and saved.attrib["filename"] == "hello.wav"
    assert abs(float(saved.attrib["seconds"]) - 1.71) < 0.05
    first = await token_of(pool, quiet, "hello.wav")
    assert first is not None
    stored = sounds_dir(settings.data_dir) / f"{first}.wav"
    info = wav_info(stored)
    assert info.telephone_ready and abs(info.seconds - 1.71) < 0.05

    # Saving the name again replaces the audio; the old file is removed.
    reply = await quiet.post(upload_xml("hello.wav", (DATA / "speech-fox.wav").read_bytes()))
    assert reply.errorid == 0
    second = await token_of(pool, quiet, "hello.wav")
    assert second not in (None, first) and not stored.exists()
    assert abs(wav_info(sounds_dir(settings.data_dir) / f"{second}.wav").seconds - 4.27) < 0.05

    # A send plays it: alone (the file itself) and after a TTS prompt (one joined WAV).
    reply = await quiet.post(
        '<campaign menuid="1-1234" action="0"><phonenumbers>'
        '<phonenumber number="8185550100" callid="file-only"><prompts>'
        '<prompt promptid="1" filename="HELLO.wav"/></prompts></phonenumber>'
        '<phonenumber number="8185550117" callid="mixed"><prompts>'
        '<prompt promptid="1" tts="Hello."/><prompt promptid="2" filename="hello.wav"/>'
        "</prompts></phonenumber></phonenumbers></campaign>")
    assert reply.errorid == 0, reply.comment
    contents = await pool.fetch(
        "SELECT c.callid, coalesce(d.content, j.content) AS content FROM campaign_calls c"
        " JOIN dialer_calls d USING (message_id) JOIN dialer_jobs j ON j.id = d.job_id"
        " WHERE c.menu_pk = $1 ORDER BY c.callid", quiet.menu_pk)
    assert [r["callid"] for r in contents] == ["file-only", "mixed"]
    assert all('"audio"' in r["content"] for r in contents)
    assert contents[0]["content"] != contents[1]["content"]
    assert not list((settings.data_dir / "campaigns" / "work").glob("*.wav"))  # temp joined

    # Delete: the name and its audio go; deleting again says there is no such file.
    reply = await quiet.post('<campaign action="1"><file filename="hello.wav" '
                             'fileaction="delete"/></campaign>')
    assert (reply.status, reply.errorid) == (200, 0)
    assert await token_of(pool, quiet, "hello.wav") is None
    assert not (sounds_dir(settings.data_dir) / f"{second}.wav").exists()
    reply = await quiet.post('<campaign action="1"><file filename="hello.wav" '
                             'fileaction="delete"/></campaign>')
    assert (reply.status, reply.errorid) == (404, 23)


async def test_not_a_wav_is_refused(quiet: Client, pool: asyncpg.Pool,
                                    settings: Settings) -> None:
    real = (DATA / "speech-short.wav").read_bytes()
    before = await snapshot(pool, settings)
    for data, words in ((b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a WAV"),
                        (real[:44], "no playable audio"),  # the header only
                        (real[:12] + b"data" + real[16:], "before its format"),
                        (real[:20] + b"\x55\x00" + real[22:], "cannot be converted")):
        reply = await quiet.post(upload_xml("bad.wav", data))
        assert (reply.status, reply.errorid) == (400, 21), reply.comment
        assert words in reply.comment
    assert await snapshot(pool, settings) == before


async def test_a_saved_sound_is_fetched_back(quiet: Client, pool: asyncpg.Pool,
                                             settings: Settings) -> None:
    """fileaction="get" answers the stored sound (the 8 kHz copy calls play) as base64 in a
    <file> shaped like the upload, which posted back as it is saves it again."""
    reply = await quiet.post(upload_xml("Hello.wav", (DATA / "speech-short.wav").read_bytes()))
    assert reply.errorid == 0, reply.comment
    token = await token_of(pool, quiet, "hello.wav")
    stored = (sounds_dir(settings.data_dir) / f"{token}.wav").read_bytes()

    before = await snapshot(pool, settings)
    reply = await quiet.post('<campaign action="1"><file filename="HELLO.wav" '
                             'fileaction="get"/></campaign>')
    assert (reply.status, reply.errorid, reply.root.attrib["action"]) == (200, 0, "1")
    got = reply.root.find("file")
    assert got is not None and got.text is not None
    attrs = {k.rsplit("}", 1)[-1]: v for k, v in got.attrib.items()}  # dt:dt, namespaced
    assert attrs == {"dt": "bin.base64", "filename": "hello.wav", "fileaction": "get",
                     "seconds": got.attrib["seconds"]}
    assert abs(float(got.attrib["seconds"]) - 1.71) < 0.05
    assert base64.b64decode(got.text) == stored
    assert await snapshot(pool, settings) == before  # a read writes nothing

    # The answer's <file>, renamed and posted back with fileaction="save", is a new copy.
    again = (f'<campaign action="1"><file xmlns:dt="urn:schemas-microsoft-com:datatypes" '
             f'dt:dt="bin.base64" filename="copy.wav" fileaction="save">{got.text}</file>'
             "</campaign>")
    reply = await quiet.post(again)
    assert reply.errorid == 0, reply.comment
    copy = await token_of(pool, quiet, "copy.wav")
    assert (sounds_dir(settings.data_dir) / f"{copy}.wav").read_bytes() == stored

    # The seed's own word ("receives") is taken too; content, or an unknown name, is not.
    reply = await quiet.post('<campaign action="1"><file filename="copy.wav" '
                             'fileaction="receive"/></campaign>')
    received = reply.root.find("file")
    assert reply.errorid == 0 and received is not None and received.text is not None
    assert base64.b64decode(received.text) == stored
    reply = await quiet.post('<campaign action="1"><file filename="none.wav" '
                             'fileaction="get"/></campaign>')
    assert (reply.status, reply.errorid) == (404, 23)
    reply = await quiet.post('<campaign action="1"><file filename="copy.wav" '
                             'fileaction="get">UklGRg==</file></campaign>')
    assert (reply.status, reply.errorid) == (400, 20)

