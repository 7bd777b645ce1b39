"""The offline recognizer itself (pocketsphinx, no call): the project's own espeak-ng telephone
audio (8 kHz) in, phrases out. The real-call path is in test_detection.py."""

from __future__ import annotations

import array
import asyncio
import wave
from pathlib import Path

from ivr.callcontrol.asr import PocketsphinxRecognizer, jsgf, normalize, upsample_2x
from ivr.media.tts import EspeakTts

PHRASES = ["Pay my bill", "talk to an agent", "check my balance"]


async def telephone_audio(folder: Path, text: str) -> tuple[bytes, int]:
    tts = EspeakTts(folder, "http://unused")
    uri = await tts.synthesize(text)
    with wave.open(str(folder / "tts" / uri.rsplit("/", 1)[1])) as w:
        return w.readframes(w.getnframes()), w.getframerate()


async def test_grammar_mode_matches_known_phrases_only(tmp_path: Path) -> None:
    recognizer = PocketsphinxRecognizer()
    (bill, rate), (agent, _), (weather, _) = await asyncio.gather(
        telephone_audio(tmp_path, "Pay my bill."),
        telephone_audio(tmp_path, "Talk to an agent."),
        telephone_audio(tmp_path, "The weather is lovely in spring."))
    assert rate == 8000
    silence = bytes(2 * rate)
    results = await asyncio.gather(*(
        asyncio.to_thread(recognizer.recognize, pcm, rate, PHRASES)
        for pcm in (bill, agent, weather, silence)))
    # Matches come back as the application wrote them.
    assert results == ["Pay my bill", "talk to an agent", None, None]


async def test_dictionary_check_normalisation_and_upsampling() -> None:
    recognizer = PocketsphinxRecognizer()
    assert await asyncio.to_thread(recognizer.unknown_words,
                                   ["Pay my bill!", "zzyzxq now", "it's fine"]) == ["zzyzxq"]
    assert normalize("  Pay, my BILL! ") == "pay my bill"
    assert jsgf(["Pay my bill", "no"]).endswith(
        "public <phrase> = ( pay my bill ) | ( no ) ;\n")
    up = array.array("h", upsample_2x(array.array("h", [0, 100, -100]).tobytes()))
    assert list(up) == [0, 50, 100, 0, -100, -100]
