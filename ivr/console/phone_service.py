"""The console phone's accounts: a short-lived SIP account per call a developer places from the
console, never their password. The row (migration 0030) says whose it is and until when; the
account itself lives in Asterisk's memory (telephony/webrtc.py) and the sweep removes it there
once it expires, so an expired one is refused by Asterisk itself, as any unknown user is."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web

from ivr.core.errors import Conflict, TelephonyError, Unavailable
from ivr.delivery.retention import RetentionJob
from ivr.recorder.models import Developer
from ivr.settings import Settings
from ivr.telephony import webrtc
from ivr.telephony.rest import AriClient

log = logging.getLogger(__name__)

LIFETIME = 300.0  # seconds an account lets a browser start calls (a call outlives it)
LIVE_PER_DEVELOPER = 5  # accounts not yet expired, per developer
SWEEP_EVERY = 2.0  # seconds: how late past its expiry an account may still be let in
KEEP_REMOVED = "1 day"  # rows of removed accounts, for the operator to look at


def ws_url(settings: Settings) -> str:
    """Where browsers reach Asterisk's websocket: wss:// on its TLS listener when the console
    is served over https (a page on https may not open ws://), else ws:// on the plain one; the
    host is ARI's when that is another host, else the console's own (Asterisk runs beside it)."""
    net = settings.network
    secure = settings.public_url.startswith("https://")
    scheme, (_, port) = ("wss", net.ari_tls_bind) if secure else ("ws", net.ari_bind)
    ari_host = urlsplit(settings.ari_url).hostname or "127.0.0.1"
    if ari_host in ("127.0.0.1", "localhost", "::1"):
        ari_host = urlsplit(settings.public_url).hostname or "127.0.0.1"
    return f"{scheme}://{ari_host}:{port}/ws"


@dataclass(frozen=True)
class PhoneAccount:
    """What the browser's SIP library needs (the password only in this answer)."""

    ws_url: str
    uri: str
    name: str
    password: str
    expires_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"ws_url": self.ws_url, "uri": self.uri, "username": self.name,
                "password": self.password, "expires_at": self.expires_at.isoformat(),
                "domain": urlsplit(self.ws_url).hostname, "ice_servers": []}


class ConsolePhone:
    def __init__(self, pool: asyncpg.Pool, ari: AriClient, settings: Settings, *,
                 lifetime: float = LIFETIME) -> None:
        self.pool, self.ari = pool, ari
        self.ws_url = ws_url(settings)
        self.secure_needed = settings.public_url.startswith("https://")
        self.tls_ready = settings.network.ari_tls
        self.media_address = settings.network.rtp_address
        self.lifetime = lifetime
        self.sweeper = RetentionJob(self.sweep, interval=SWEEP_EVERY, batch_size=50,
                                    name="console phone accounts")

    async def issue(self, developer: Developer) -> PhoneAccount:
        if self.secure_needed and not self.tls_ready:
            raise Unavailable("the console is served over https, so the phone needs Asterisk's "
                              "TLS listener (IVR_ARI_TLS_CERT / IVR_ARI_TLS_KEY), which this "
                              "server does not have")
        name = webrtc.PREFIX + secrets.token_hex(8)
        account = webrtc.WebRtcAccount(name, secrets.token_urlsafe(24),
                                       f"console {developer.username}")
        async with self.pool.acquire() as conn, conn.transaction():
            # One at a time per developer, so the limit holds under concurrent requests.
            await conn.execute("SELECT 1 FROM developers WHERE id = $1 FOR UPDATE", developer.id)
            live = await conn.fetchval(
                "SELECT count(*) FROM console_phone_accounts WHERE developer_id = $1"
                " AND removed_at IS NULL AND expires_at > now()", developer.id)
            if live >= LIVE_PER_DEVELOPER:
                raise Conflict(f"{live} phone accounts of yours are still live (at most "
                               f"{LIVE_PER_DEVELOPER}); each lasts {self.lifetime:.0f} s")
            expires_at = await conn.fetchval(
                "INSERT INTO console_phone_accounts (name, developer_id, expires_at)"
                " VALUES ($1, $2, now() + $3 * interval '1 second') RETURNING expires_at",
                name, developer.id, self.lifetime)
        try:
            await webrtc.push(self.ari, account, self.media_address)
        except TelephonyError as exc:
            await self._forget(name)
            raise Unavailable(f"Asterisk did not take the phone's account: {exc.message}"
                              ) from exc
        host = urlsplit(self.ws_url).hostname
        log.info("console phone: account %s for developer %d until %s", name, developer.id,
                 expires_at.isoformat())
        return PhoneAccount(self.ws_url, f"sip:{name}@{host}", name, account.password,
                            expires_at)

    async def _forget(self, name: str) -> None:
        """A push that failed halfway: whatever Asterisk took goes, and the row with it."""
        try:
            await webrtc.remove(self.ari, name)
        except TelephonyError as exc:
            log.warning("console phone: %s half pushed, left to the sweep: %s", name, exc)
            return
        await self.pool.execute("DELETE FROM console_phone_accounts WHERE name = $1", name)

    async def sweep(self, limit: int) -> tuple[int, int]:
        """Expired accounts out of Asterisk, then marked removed; (accounts removed, 0)."""
        names = await self.pool.fetch(
            "SELECT name FROM console_phone_accounts WHERE removed_at IS NULL"
            " AND expires_at <= now() ORDER BY expires_at LIMIT $1", limit)
        done = 0
        for row in names:
            try:
                await webrtc.remove(self.ari, row["name"])
            except TelephonyError as exc:
                log.warning("console phone: cannot remove %s from Asterisk yet: %s",
                            row["name"], exc)
                return done, 0
            await self.pool.execute("UPDATE console_phone_accounts SET removed_at = now()"
                                    " WHERE name = $1", row["name"])
            done += 1
        if len(names) < limit:
            await self.pool.execute("DELETE FROM console_phone_accounts WHERE removed_at"
                                    f" < now() - interval '{KEEP_REMOVED}'")
        return done, 0


PHONE = web.AppKey("console_phone", ConsolePhone)
