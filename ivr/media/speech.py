"""The espeak-ng + sox commands behind both the default prompt set (built offline) and runtime
TTS: one definition, so a name spoken during a call sounds like the prompts around it."""

from __future__ import annotations

from pathlib import Path

VOICE = "en-us"
# Words per minute: a little slower than espeak-ng's 175, for clarity over a phone line.
SPEED = 160
# Part of every TTS cache key: change it when the commands below change.
PIPELINE = "espeak-ng s160 | sox 8k mono s16 norm-3 v1"


def espeak_command(voice: str, out: Path) -> list[str]:
    """espeak-ng reading the text from stdin (never from argv: a text starting with '-' would
    be taken for an option), writing a 22.05 kHz WAV."""
    return ["espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(out), "--stdin"]


def telephone_wav_command(src: Path, dst: Path, *, normalize: bool = True) -> list[str]:
    """sox to 8 kHz mono 16-bit PCM (normalised to -3 dBFS for synthesized speech). `-D` (no
    dither) and `-R` (repeatable) keep the output byte-identical from run to run."""
    command = ["sox", "-D", "-R", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
               "-t", "wav", str(dst)]
    return [*command, "norm", "-3"] if normalize else command
