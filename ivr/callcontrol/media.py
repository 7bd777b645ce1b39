"""What a play names -> the ARI media URI Asterisk plays. One seam (`MediaSource`) between the
call logic and the media package.

- `SpokenMedia` (what `ivr serve` uses): a prompt name is looked up in the prompt catalog,
  else taken as an Asterisk core sound; text goes through espeak-ng (a male and a female
  variant of en-US; another language or voice answers 406, result 6117; a synthesis failure
  503, result 6107); a URL is fetched by Asterisk's HTTP media cache.
- `CoreSoundMedia`: core sounds and URLs only, no TTS (503, result 6107)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ivr.callcontrol.errors import TtsFailed, VoiceNotSupported
from ivr.callcontrol.models import Media
from ivr.core.errors import IvrError
from ivr.media.errors import UnknownPrompt
from ivr.media.prompts import PROMPTS_DIR, PromptCatalog
from ivr.media.tts import EspeakTts

# espeak-ng voices for the API's (language, voice) pairs.
TTS_LANGUAGES = ("en-us", "en_us", "en")
ESPEAK_VOICES = {"male": "en-us", "female": "en-us+f3"}


class MediaSource(Protocol):
    async def resolve(self, media: Media) -> str: ...


class CoreSoundMedia:
    async def resolve(self, media: Media) -> str:
        if media.prompt_name is not None:
            return f"sound:{media.prompt_name}"
        if media.url is not None:
            return f"sound:{media.url}"
        raise TtsFailed("Error doing text to speech conversion: no TTS engine is configured")


class SpokenMedia:
    def __init__(self, catalog: PromptCatalog | None, voices: dict[str, EspeakTts]) -> None:
        self.catalog = catalog
        self.voices = voices

    @classmethod
    def for_settings(cls, data_dir: Path, public_url: str,
                     prompts_dir: Path = PROMPTS_DIR) -> SpokenMedia:
        return cls(PromptCatalog(prompts_dir, data_dir, public_url),
                   {name: EspeakTts(data_dir, public_url, voice)
                    for name, voice in ESPEAK_VOICES.items()})

    async def resolve(self, media: Media) -> str:
        if media.prompt_name is not None:
            if self.catalog is not None:
                try:
                    return self.catalog.media(media.prompt_name)
                except UnknownPrompt:
                    pass
            return f"sound:{media.prompt_name}"
        if media.url is not None:
            return f"sound:{media.url}"
        assert media.text is not None and media.language is not None
        tts = self.voices.get(media.voice or "")
        if tts is None or media.language.lower() not in TTS_LANGUAGES:
            raise VoiceNotSupported("Voice not supported for text-to-speech conversion")
        try:
            return await tts.synthesize(media.text)
        except IvrError as exc:
            raise TtsFailed("Error doing text to speech conversion") from exc
