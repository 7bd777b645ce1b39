"""Audio links that expire: `…/{play_key}/recording.wav?expires=<unix>&signature=<hex>`, the
signature an HMAC-SHA256 over the play key and the expiry with the server's media key (the one
in the data folder, so every process sharing it accepts the same links). A recorder with
`link_ttl_seconds` hands out only such links and refuses its plain ones."""

from __future__ import annotations

import functools
import hmac
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.core.errors import Forbidden
from ivr.media.signing import media_key, sign

SIGNATURE_LENGTH = 32  # hex characters: 128 bits


class LinkRefused(Forbidden):
    """An audio link that expired, was altered, or is plain where only signed ones count."""

    error_id = "link_refused"


@functools.lru_cache(maxsize=32)
def _key(data_dir: Path) -> bytes:
    # Read once per data folder: handlers build links on every request.
    return media_key(data_dir)


def link_signature(key: bytes, play_key: str, expires: int) -> str:
    return sign(key, f"audio-link:{play_key}:{expires}", SIGNATURE_LENGTH)


def check_link(key: bytes, play_key: str, expires: str, signature: str,
               now: float | None = None) -> str | None:
    """None when the link is good, else why it is refused."""
    if not expires.isdigit() or len(expires) > 12:
        return "the link's expiry is malformed"
    if not hmac.compare_digest(signature, link_signature(key, play_key, int(expires))):
        return "the link's signature does not match"
    if int(expires) < (time.time() if now is None else now):
        return "the link has expired"
    return None


@dataclass(frozen=True, slots=True)
class AudioLinks:
    """How a recording's wav_url / mp3_url is written: plain, or signed to expire."""

    base_url: str
    key: bytes

    @classmethod
    def for_settings(cls, data_dir: Path, public_url: str) -> AudioLinks:
        return cls(public_url.rstrip("/"), _key(data_dir))

    def url(self, play_key: str, ext: str, ttl_seconds: int | None = None,
            now: float | None = None) -> str:
        plain = f"{self.base_url}/{play_key}/recording.{ext}"
        if ttl_seconds is None:
            return plain
        expires = int(time.time() if now is None else now) + ttl_seconds
        return f"{plain}?expires={expires}&signature={link_signature(self.key, play_key, expires)}"
