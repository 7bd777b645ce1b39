"""A call's `<prompts>` -> the dialer's Content. One TTS prompt is handed over as text (the
dialer synthesizes it); one sound file as that file; several prompts are played in order, so
they are rendered here into one 8 kHz WAV (TTS through the engine's espeak-ng pipeline, sound
files as stored) that the dialer copies into its own store at job creation."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

from ivr.campaigns import errors as e
from ivr.campaigns.errors import CampaignError
from ivr.campaigns.models import Prompt
from ivr.campaigns.sounds import SoundStore
from ivr.core.errors import IvrError
from ivr.core.files import private_dir
from ivr.dialer.models import Content
from ivr.media.process import run_tool
from ivr.media.tts import EspeakTts


class PromptAudio:
    def __init__(self, data_dir: Path, public_url: str, sounds: SoundStore) -> None:
        self.tts = EspeakTts(data_dir, public_url)
        self.sounds = sounds
        self.work = data_dir / "campaigns" / "work"

    async def content(self, prompts: tuple[Prompt, ...],
                      tokens: dict[str, str]) -> tuple[Content, Path | None]:
        """The Content for `prompts`, and a temporary file to delete once the job exists."""
        if len(prompts) == 1 and prompts[0].tts is not None:
            return Content.tts(prompts[0].tts), None
        if len(prompts) == 1 and prompts[0].filename is not None:
            return Content.audio_file(self.sounds.path(tokens[prompts[0].filename])), None
        parts = [await self._part(p, tokens) for p in prompts]
        await asyncio.to_thread(private_dir, self.work)
        out = self.work / f"{secrets.token_hex(12)}.wav"
        try:
            await run_tool(["sox", *map(str, parts), str(out)])
        except IvrError:
            with contextlib.suppress(FileNotFoundError):
                out.unlink()
            raise CampaignError(e.UNAVAILABLE, "the prompts could not be joined into one "
                                "message; try again") from None
        return Content.audio_file(out), out

    async def _part(self, prompt: Prompt, tokens: dict[str, str]) -> Path:
        if prompt.filename is not None:
            return self.sounds.path(tokens[prompt.filename])
        assert prompt.tts is not None
        try:
            await self.tts.synthesize(prompt.tts)
        except IvrError:
            raise CampaignError(e.UNAVAILABLE, f"text to speech failed for prompt "
                                f"{prompt.promptid}; try again") from None
        return self.tts.dir / f"{self.tts.digest(prompt.tts)}.wav"
