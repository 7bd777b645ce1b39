"""What a play names -> the ARI media URI Asterisk plays. One seam (`MediaSource`) between the
call logic and the media package.

- `SpokenMedia` (what `ivr serve` uses): a prompt name is looked up in the prompt catalog,
  else taken as an Asterisk core sound; text goes through espeak-ng (a male and a female
  variant of each language in `ivr.media.tts.LANGUAGES`, the dialer's table; another language
  or voice answers 406, result 6117; a synthesis failure 503, result 6107); a URL is fetched
  by Asterisk's HTTP media cache.
- `CoreSoundMedia`: core sounds and URLs only, no TTS (503, result 6107).

Given `sounds` (what a request names), a prompt name that is neither in the catalog nor a
sound Asterisk has answers 400 "Media Request Failed" there and then, as the seed does, rather
than a `failed` play event later."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Protocol

from ivr.callcontrol.errors import MediaRequestFailed, TtsFailed, VoiceNotSupported
from ivr.callcontrol.models import Media
from ivr.core.errors import IvrError
from ivr.media.errors import UnknownPrompt
from ivr.media.prompts import PROMPTS_DIR, PromptCatalog
from ivr.media.tts import EspeakTts, espeak_voice
from ivr.telephony.rest import AriClient

# A name not found asks Asterisk again at most this often (seconds).
SOUNDS_REFRESH = 60.0


class CoreSounds:
    """Which sounds Asterisk has: listed over ARI once, again when a name is missing and the
    list is over a minute old (sounds are installed with Asterisk, rarely while it runs)."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self._names: frozenset[str] = frozenset()
        self._listed_at: float | None = None
        self._lock = asyncio.Lock()

    async def exists(self, name: str) -> bool:
        if name in self._names:
            return True
        async with self._lock:
            now = time.monotonic()
            if self._listed_at is None or now - self._listed_at > SOUNDS_REFRESH:
                self._names = frozenset(s["id"] for s in await self.ari.list_sounds())
                self._listed_at = now
        return name in self._names


class MediaSource(Protocol):
    async def resolve(self, media: Media, sounds: CoreSounds | None = None) -> str: ...


async def _core_sound(name: str, sounds: CoreSounds | None) -> str:
    if sounds is not None and not await sounds.exists(name):
        raise MediaRequestFailed("prompt_name", f"no prompt or sound named '{name}'")
    return f"sound:{name}"


class CoreSoundMedia:
    async def resolve(self, media: Media, sounds: CoreSounds | None = None) -> str:
        if media.prompt_name is not None:
            return await _core_sound(media.prompt_name, sounds)
        if media.url is not None:
            return f"sound:{media.url}"
        raise TtsFailed("Error doing text to speech conversion: no TTS engine is configured")


class SpokenMedia:
    def __init__(self, catalog: PromptCatalog | None, data_dir: Path, public_url: str) -> None:
        self.catalog = catalog
        self.data_dir = data_dir
        self.public_url = public_url
        self._voices: dict[str, EspeakTts] = {}  # espeak-ng voice -> its engine and cache

    @classmethod
    def for_settings(cls, data_dir: Path, public_url: str,
                     prompts_dir: Path = PROMPTS_DIR) -> SpokenMedia:
        return cls(PromptCatalog(prompts_dir, data_dir, public_url), data_dir, public_url)

    def tts(self, language: str, voice: str) -> EspeakTts:
        name = espeak_voice(language, voice)
        if name is None:
            raise VoiceNotSupported("Voice not supported for text-to-speech conversion",
                                    details=f"no {voice} voice for language '{language}'",
                                    param="language")
        tts = self._voices.get(name)
        if tts is None:
            tts = self._voices[name] = EspeakTts(self.data_dir, self.public_url, name)
        return tts

    async def resolve(self, media: Media, sounds: CoreSounds | None = None) -> str:
        if media.prompt_name is not None:
            if self.catalog is not None:
                try:
                    return self.catalog.media(media.prompt_name)
                except UnknownPrompt:
                    pass
            return await _core_sound(media.prompt_name, sounds)
        if media.url is not None:
            return f"sound:{media.url}"
        assert media.text is not None and media.language is not None
        tts = self.tts(media.language, media.voice or "")
        try:
            return await tts.synthesize(media.text)
        except IvrError as exc:
            raise TtsFailed("Error doing text to speech conversion") from exc
