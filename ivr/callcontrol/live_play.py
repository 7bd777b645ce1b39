"""LiveCall, what it plays: prompts and menus (keys collected), and asr prompts whose answer
is recorded and recognised."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import uuid
import wave
from typing import Any

from ivr.callcontrol.errors import CallStateMismatch, PlayInBridge, RequestPending
from ivr.callcontrol.live_recording import RecordingPart
from ivr.callcontrol.models import PlayRequest
from ivr.core.errors import IvrError
from ivr.telephony.rest import AriHttpError

log = logging.getLogger(__name__)


# The longest answer an asr play listens to.
MAX_SPEECH_SECONDS = 20


def _pcm(wav: bytes) -> tuple[bytes, int]:
    """The samples and rate of a 16-bit mono WAV (what Asterisk's wav format writes)."""
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


class PlayPart(RecordingPart):
    def check_can_play(self) -> None:
        if self.bridged:
            raise PlayInBridge("Call is in bridged mode, can't play media")
        if self.state != "connected":
            raise CallStateMismatch("Call is not connected yet")
        if self.playing:
            raise RequestPending("Play request pending", 6114)

    def play(self, request: PlayRequest, media: str) -> str:
        self.check_can_play()
        return self._start_play(request, media)

    def _start_play(self, request: PlayRequest, media: str) -> str:
        play_id = str(uuid.uuid4())
        self._play_task = self.spawn(self._play(play_id, request, media), "play")
        return play_id

    async def _play(self, play_id: str, request: PlayRequest, media: str) -> None:
        def event(playstate: str, **fields: Any) -> None:
            if request.prompt_ref is not None:
                fields["prompt_ref"] = request.prompt_ref
            self.emit(playstate, key="playstate", play_id=play_id, **fields)

        self.call.flush_digits()
        try:
            playback = await self.call.play(media, barge_in=request.dtmf)
        except AriHttpError as exc:
            log.info("[%s] play failed: %s", self.call.id, exc.message)
            event("failed", msg="Media Request Failed")
            return
        if playback.failed:
            event("failed", msg="Media Request Failed")
            return
        if request.asr:
            await self._listen(play_id, request)
            return
        if not request.dtmf:
            event("playfinished")
            return
        digits = await self.call.collect_digits(
            request.max_digits, timeout=request.menu_timeout, terminators="#",
            inter_digit_timeout=3,
        )
        if digits:
            event("digitcollected", digit=digits)
        else:
            event("menutimeout")

    async def _listen(self, play_id: str, request: PlayRequest) -> None:
        """After an `asr` prompt: record what the caller says (8 kHz), framed by Asterisk's
        talk detection (TALK_DETECT: talking starts; `recognizer_timeout` of silence ends it),
        then recognise it off the event loop. `timeout` when nobody spoke within
        `start_timeout`; `unrecognized` when the engine matched nothing."""
        asr_id = str(uuid.uuid4())
        name = f"ccr-{uuid.uuid4().hex}"
        ari, cid = self.tel.ari, self.call.id

        def event(state: str, reason: str, phrase: str | None = None) -> None:
            fields: dict[str, Any] = {"result": {"reason": reason}, "asr_id": asr_id,
                                      "play_id": play_id}
            if phrase is not None:
                fields["recognised_phrase"] = phrase
            if request.prompt_ref is not None:
                fields["prompt_ref"] = request.prompt_ref
            self.emit(state, **fields)

        started, finished = asyncio.Event(), asyncio.Event()
        self._talk = (started, finished)
        await ari.set_variable(cid, "TALK_DETECT(set)", str(request.recognizer_timeout * 1000))
        take = asyncio.ensure_future(self.call.record(
            name, fmt="wav", max_duration=request.start_timeout + MAX_SPEECH_SECONDS,
            terminate_on="none"))
        heard: str | None = None
        try:
            try:
                await asyncio.wait_for(started.wait(), request.start_timeout)
            except TimeoutError:
                event("timeout", "InitialSilenceTimeout")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), MAX_SPEECH_SECONDS)
            with contextlib.suppress(AriHttpError):
                await ari.stop_live_recording(name)
            await take
            audio = await ari.stored_recording_file(name)
            assert self.recognizer is not None  # checked before the play was accepted
            heard = await asyncio.to_thread(self.recognizer.recognize, *_pcm(audio),
                                            request.asr_phrases)
            log.info("[%s] asr %s: %s", cid, asr_id, "recognised" if heard else "no match")
            if heard:
                event("recognized", "RecognizedSpeech", heard)
            else:
                event("unrecognized", "NoMatch", "")
        finally:
            self._talk = None
            if not take.done():
                with contextlib.suppress(IvrError):
                    await ari.cancel_live_recording(name)
                take.cancel()
            with contextlib.suppress(IvrError):
                await ari.set_variable(cid, "TALK_DETECT(remove)", "")
            with contextlib.suppress(IvrError):
                await ari.delete_stored_recording(name)

    async def _stop_play(self) -> None:
        task = self._play_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Call.play's playback may still be sounding: stop whatever plays on the channel.
        self._play_task = None
