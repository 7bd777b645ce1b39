"""An account's sound files (action 1): an uploaded WAV is checked (a real RIFF/WAVE with audio,
not too long), converted once to the 8 kHz mono 16-bit PCM Asterisk's `wav` format plays, and
kept under a random token (<data>/campaigns/sounds/<token>.wav).

The client's filename is only a key in the database, never a path: a name cannot reach the
file system. A send (action 0) copies the audio into the dialer's own content store, so saving
a name again or deleting it changes calls sent from then on, never calls already queued; the
old audio is removed once the change has committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.campaigns import errors as e
from ivr.campaigns.errors import CampaignError
from ivr.core.files import private_dir, write_private
from ivr.media.errors import MediaError
from ivr.media.transcode import WavInfo, to_telephone_wav, wav_info

log = logging.getLogger(__name__)

MAX_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Sound:
    filename: str
    token: str
    seconds: float
    bytes: int


def sounds_dir(data_dir: Path) -> Path:
    return data_dir / "campaigns" / "sounds"


class SoundStore:
    def __init__(self, data_dir: Path) -> None:
        self.dir = sounds_dir(data_dir)

    def path(self, token: str) -> Path:
        return self.dir / f"{token}.wav"

    async def convert(self, data: bytes) -> tuple[str, WavInfo]:
        """Check `data` is a WAV with audio and write its telephone copy; returns the new
        token and the upload's facts. The caller records it (or calls `discard`)."""
        await asyncio.to_thread(private_dir, self.dir)
        token = secrets.token_hex(16)
        upload = self.dir / f".{token}.upload.wav"
        try:
            await asyncio.to_thread(write_private, upload, data, fsync=False)
            try:
                info = await asyncio.to_thread(wav_info, upload)
            except MediaError as exc:
                raise CampaignError(e.WAV_INVALID, f"Wav format invalid: {_reason(exc)}") from None
            if not (1 <= info.channels <= 8 and 2000 <= info.rate <= 192_000
                    and info.data_bytes > 0 and info.byte_rate > 0):
                raise CampaignError(e.WAV_INVALID, "Wav format invalid: no playable audio "
                                    f"({info.channels} channels at {info.rate} Hz, "
                                    f"{info.data_bytes} bytes of audio)")
            if info.seconds > MAX_SECONDS:
                raise CampaignError(e.WAV_INVALID, f"Wav format invalid: longer than "
                                    f"{MAX_SECONDS:.0f} seconds")
            try:
                await to_telephone_wav(upload, self.path(token))
            except MediaError as exc:
                log.info("sound upload not convertible: %s", exc)
                raise CampaignError(e.WAV_INVALID, "Wav format invalid: its audio encoding "
                                    "cannot be converted (use PCM, A-law or mu-law)") from None
            return token, info
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(upload.unlink)

    def discard(self, token: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(token))

    # --- the database side (run on the caller's connection, inside its transaction) --------
    async def record(self, conn: Any, account_pk: int, name: str, token: str,
                     info: WavInfo) -> str | None:
        """Name `token` `name`; returns the token it replaced, if any."""
        # Two uploads of one new name at once: the lock makes the second see the first's row.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                           f"campaign-sound:{account_pk}:{name}")
        old = await conn.fetchval(
            "SELECT token FROM campaign_sounds WHERE account_pk = $1 AND filename = $2",
            account_pk, name)
        await conn.execute(
            "INSERT INTO campaign_sounds (account_pk, filename, token, seconds, bytes)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_pk, filename) DO UPDATE"
            " SET token = EXCLUDED.token, seconds = EXCLUDED.seconds, bytes = EXCLUDED.bytes,"
            "     updated_at = now()",
            account_pk, name, token, round(info.seconds, 3), info.data_bytes)
        return None if old is None else str(old)

    async def forget(self, conn: Any, account_pk: int, name: str) -> str:
        token = await conn.fetchval(
            "DELETE FROM campaign_sounds WHERE account_pk = $1 AND filename = $2 RETURNING token",
            account_pk, name)
        if token is None:
            raise CampaignError(e.SOUND_NOT_FOUND, f"no sound file named {name!r}")
        return str(token)

    async def tokens(self, conn: Any, account_pk: int, names: set[str]) -> dict[str, str]:
        """name -> token for every name; a missing one is an error naming it."""
        if not names:
            return {}
        rows = await conn.fetch(
            "SELECT filename, token FROM campaign_sounds WHERE account_pk = $1"
            " AND filename = ANY($2::text[])", account_pk, sorted(names))
        found = {r["filename"]: r["token"] for r in rows}
        missing = sorted(names - found.keys())
        if missing:
            raise CampaignError(e.SOUND_NOT_FOUND, f"no sound file named {missing[0]!r} "
                                "(upload it with action 1 first)")
        return found


def _reason(exc: MediaError) -> str:
    # wav_info names the temporary file; the client only needs the reason.
    rest = exc.message.split(" ", 1)[1] if " " in exc.message else exc.message
    return f"the file {rest}"
