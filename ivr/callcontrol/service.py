"""The operations the voice API and the phone side share: applications and their credentials,
routing an inbound number to its application, placing outbound calls, and finding the live
call a request is about. Built once per process (app.py) with its dependencies; the telephony
layer is attached once it is up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from ivr.callcontrol.asr import Recognizer, default_recognizer
from ivr.callcontrol.errors import (
    ApplicationNotFound,
    BadRequest,
    CallFailed,
    CallNotFound,
    CallStateMismatch,
    HeldElsewhere,
    NotAuthenticated,
    NumberNotFound,
    RecordingNotFound,
    TrunkDown,
)
from ivr.callcontrol.live import LiveCall
from ivr.callcontrol.live_call import TRUNK_DOWN, Leg, LiveCallState, Telephony, trunk_endpoint
from ivr.callcontrol.media import CoreSoundMedia, CoreSounds, MediaSource
from ivr.callcontrol.models import (
    NUMBER_RE,
    PROMPT_NAME_RE,
    URL_RE,
    Application,
    Destination,
    Media,
    OutboundRequest,
    PlayRequest,
)
from ivr.callcontrol.onconnect import bridge_on_answer
from ivr.callcontrol.store import CallControlStore, NumberTaken
from ivr.core import owners
from ivr.core.errors import Conflict, IvrError, Unavailable
from ivr.core.keys import new_pin
from ivr.core.passwords import hash_password
from ivr.core.throttle import Throttle
from ivr.core.urls import UnsafeUrl, check_literal, check_url
from ivr.media.transcode import wav_to_mp3
from ivr.provision.trunks import store as trunks
from ivr.provision.trunks.model import NAME as TRUNK_NAME
from ivr.settings import Security
from ivr.telephony import toll
from ivr.telephony.call import Call
from ivr.telephony.events import Router
from ivr.telephony.rest import AriClient, AriHttpError
from ivr.telephony.runner import Route

log = logging.getLogger(__name__)

DEFAULT_TRUNK = "ivr-loopback"
SHARED_PIN_LENGTH = 6
PIN_RE = re.compile(r"^[0-9]{4,10}$")
PIN_ATTEMPTS = 3
# Asterisk core sounds unless the prompt catalog has prompts of these names.
PIN_PROMPT = "conf-getpin"
WRONG_PIN_PROMPT = "conf-invalidpin"
GOODBYE_PROMPT = "vm-goodbye"


@dataclass(frozen=True, slots=True)
class NewApplication:
    """What creating an application hands back, once: the key and secret are not kept in
    readable form (the key) or shown again (the secret)."""

    app_id: str
    app_key: str
    webhook_secret: str
    pins: dict[str, str]  # shared number -> the PIN that reaches this application


class CallControl:
    def __init__(self, pool: asyncpg.Pool, *, media: MediaSource | None = None,
                 trunk: str = DEFAULT_TRUNK, recognizer: Recognizer | None = None,
                 throttle: Throttle | None = None, allow_private_urls: bool = False,
                 security: Security | None = None) -> None:
        self.store = CallControlStore(pool)
        self.security = security or Security()  # the toll-fraud defaults (IVR_TOLL_*)
        self.throttle = throttle or Throttle(pool)
        self.allow_private_urls = allow_private_urls  # IVR_ALLOW_PRIVATE_URLS (core/urls.py)
        self.recognizer = recognizer if recognizer is not None else default_recognizer()
        self.media: MediaSource = media or CoreSoundMedia()
        self.trunk = trunk
        self.calls: dict[uuid.UUID, LiveCall] = {}
        self._tel: Telephony | None = None
        self._nodes: list[Telephony] = []  # every media node this engine drives
        self.sounds: CoreSounds | None = None  # what requests name is checked against

    def attach(self, ari: AriClient, router: Router, stasis_app: str) -> None:
        """The engine's Asterisk (the first attached: calls out leave by it) or one more media
        node (IVR_ARI_NODES); a call is controlled on the node its channel is on."""
        tel = Telephony(ari, router, stasis_app, self.trunk)
        if self._tel is None:
            self._tel = tel
            self.sounds = CoreSounds(ari)
        self._nodes.append(tel)

    def _tel_of(self, call: Call) -> Telephony:
        return next((t for t in self._nodes if t.ari is call.ari), self.tel)

    async def close(self) -> None:
        for live in list(self.calls.values()):
            with contextlib.suppress(IvrError):
                await live.call.hangup()

    @property
    def tel(self) -> Telephony:
        if self._tel is None:
            raise Unavailable("the telephony worker is not running")
        return self._tel

    # --- applications -------------------------------------------------------------------
    async def create_application(
        self, *, webhook_url: str, numbers: list[str], shared_numbers: list[str] | None = None,
        name: str = "", greeting: str | None = None, accept_timeout: int = 10,
        trunk: str | None = None, developer: str | None = None,
    ) -> NewApplication:
        """Dedicated `numbers` route straight to the application; on `shared_numbers` the
        caller keys the PIN drawn here (returned once) first. Its calls out leave by `trunk`
        (an `ivr trunk` name), by default the engine's. Owned by `developer` (a username),
        its calls show in that developer's console."""
        shared = sorted(set(shared_numbers or []))
        if not URL_RE.match(webhook_url):
            raise BadRequest("webhook_url", "'webhook_url' must be an http or https URL")
        self.check_event_url("webhook_url", webhook_url)
        every = [*numbers, *shared]
        if not every or any(not NUMBER_RE.match(n) for n in every):
            raise BadRequest("numbers", "give one or more phone numbers")
        if set(numbers) & set(shared):
            raise BadRequest("numbers", "a number is either dedicated or shared")
        if greeting is not None and not PROMPT_NAME_RE.match(greeting):
            raise BadRequest("greeting", "'greeting' must be a prompt name")
        if not 1 <= accept_timeout <= 120:
            raise BadRequest("accept_timeout", "'accept_timeout' must be 1 to 120 seconds")
        if trunk is not None:
            if not TRUNK_NAME.fullmatch(trunk):
                raise BadRequest("trunk", "'trunk' must be the name of a trunk")
            try:
                await trunks.get(self.store.pool, trunk)
            except IvrError:
                raise BadRequest("trunk", f"no trunk {trunk!r} (`ivr trunk list` shows them)"
                                 ) from None
        async with self.store.pool.acquire() as conn:
            owner = await owners.developer_id(conn, developer)
        app_id = secrets.token_hex(12)
        app_key = secrets.token_urlsafe(32)
        secret = secrets.token_urlsafe(32)
        try:
            pins = await self.store.insert_application(
                app_id=app_id, app_key_hash=await hash_password(app_key), webhook_secret=secret,
                name=name, webhook_url=webhook_url, greeting=greeting,
                accept_timeout=accept_timeout, numbers=sorted(set(numbers)),
                shared_numbers=shared, new_pin=lambda: new_pin(SHARED_PIN_LENGTH), trunk=trunk,
                developer_id=owner,
            )
        except NumberTaken:
            raise Conflict("a number is already routed to another application") from None
        log.info("call-control application %s created for %s", app_id, ", ".join(every))
        return NewApplication(app_id, app_key, secret, pins)

    async def authenticate(self, app_id: str, app_key: str) -> Application:
        found = await self.store.application_by_app_id(app_id) if app_id.isalnum() else None
        stored = None if found is None else found[1]
        if not await self.throttle.verify(f"app:{app_id}", stored, app_key) or found is None:
            raise NotAuthenticated("Unknown application or wrong key")
        return found[0]

    # --- inbound ------------------------------------------------------------------------
    async def route_for(self, call: Call) -> Route | None:
        """The flow for a call to an application's number, or None: not ours."""
        if not call.dialed or not NUMBER_RE.match(call.dialed):
            return None
        shared = await self.store.number_kind(call.dialed)
        if shared:
            return Route("callcontrol-shared", self._shared)
        app = await self.store.application_for_number(call.dialed) if shared is False else None
        if app is None:
            return None
        return Route("callcontrol", functools.partial(self._inbound, app))

    async def _shared(self, call: Call) -> None:
        """A shared number: the caller keys the PIN of the application they want (never
        logged); three wrong tries end the call."""
        await call.answer()
        app = None
        for attempt in range(1, PIN_ATTEMPTS + 1):
            await call.play(await self.media.resolve(Media(prompt_name=PIN_PROMPT)),
                            barge_in=True)
            pin = await call.collect_digits(10, timeout=8, terminators="#",
                                            inter_digit_timeout=4)
            if PIN_RE.match(pin):
                app = await self.store.application_for_number(call.dialed, pin)
            if app is not None:
                break
            log.info("[%s] shared number %s: wrong PIN (try %d)", call.id, call.dialed, attempt)
            await call.play(await self.media.resolve(Media(prompt_name=WRONG_PIN_PROMPT)))
        if app is None:
            await call.play(await self.media.resolve(Media(prompt_name=GOODBYE_PROMPT)))
            return
        live = await self._register(app, call, "inbound", call.caller_id, call.dialed,
                                    "connected")
        try:
            await live.run_inbound(None, answered=True)
        finally:
            await live.finish()

    async def _inbound(self, app: Application, call: Call) -> None:
        greeting = None
        if app.greeting is not None:
            greeting = await self.media.resolve(Media(prompt_name=app.greeting))
        live = await self._register(app, call, "inbound", call.caller_id, call.dialed,
                                    "incomingcall")
        try:
            await live.run_inbound(greeting)
        finally:
            await live.finish()

    async def _register(self, app: Application, call: Call, direction: str, from_number: str,
                        to_number: str, state: str, owner_ref: str | None = None,
                        event_url: str | None = None) -> LiveCall:
        voice_id = uuid.uuid4()
        await self.store.insert_call(
            voice_id=voice_id, application_id=app.id, direction=direction,
            from_number=from_number, to_number=to_number, channel_id=call.id, state=state,
            owner_ref=owner_ref, event_url=event_url,
        )
        live = LiveCall(
            tel=self._tel_of(call), store=self.store, app=app, call=call,
            voice_id=voice_id, direction=direction, from_number=from_number,
            to_number=to_number, state=state, owner_ref=owner_ref, event_url=event_url,
            on_end=self._forget, recognizer=self.recognizer,
        )
        self.calls[voice_id] = live
        log.info("[%s] call-control %s call %s for application %s", call.id, direction,
                 voice_id, app.app_id)
        return live

    def _forget(self, live: LiveCallState) -> None:
        self.calls.pop(live.voice_id, None)

    # --- outbound -----------------------------------------------------------------------
    async def check_from(self, app: Application, number: str) -> None:
        """`from` must be one of the application's numbers: 404 / 6110 "Application Not
        Found" when the number is call control's but routed to other applications only (the
        seed: this service is not configured for the number), 404 / 6118 "Phone number not
        found for the service" when no application has it."""
        if number in app.numbers:
            return
        if await self.store.number_kind(number) is not None:
            raise ApplicationNotFound("Application Not Found")
        raise NumberNotFound("Phone number not found for the service")

    async def check_asr(self, play: PlayRequest | None) -> None:
        """An `asr` play needs a recognizer, and every word of its phrases in its
        dictionary."""
        if play is None or not play.asr:
            return
        if self.recognizer is None:
            raise BadRequest("asr", "speech recognition is not available on this server")
        if play.asr_phrases:
            unknown = await asyncio.to_thread(self.recognizer.unknown_words, play.asr_phrases)
            if unknown:
                raise BadRequest("asr_phrases",
                                 f"words the recognizer does not know: {', '.join(unknown)}")

    def check_event_url(self, param: str, url: str | None) -> None:
        """A URL events will be posted to: a public address (core/urls.py)."""
        if url is None:
            return
        try:
            check_literal(url, self.allow_private_urls)
        except UnsafeUrl as exc:
            raise BadRequest(param, f"'{param}': {exc}") from None

    async def resolve_media(self, media: Media) -> str:
        """What Asterisk plays for `media`; a URL is checked first (Asterisk fetches it
        itself, so this is the last check before it does: core/urls.py check_url)."""
        if media.url is not None:
            try:
                await check_url(media.url, self.allow_private_urls)
            except UnsafeUrl as exc:
                raise BadRequest("url", f"'url': {exc}") from None
        return await self.media.resolve(media, self.sounds)

    async def admit_call(self, app: Application, destinations: list[Destination]) -> None:
        """The toll-fraud guard (telephony/toll.py) for calls out to `destinations`:
        TollRefused (403, and an alert) where the application's limits do not allow them."""
        numbers = [d.value for d in destinations if not d.is_sip]
        await toll.admit(self.store.pool, self.security, "app", app.app_id, numbers,
                         await self.store.active_outbound(app.id))

    async def originate(self, app: Application, request: OutboundRequest) -> LiveCall:
        self.check_event_url("event_url", request.event_url)
        await self.check_from(app, request.from_number)
        if request.bridge_on_connect is not None:
            await self.check_from(app, request.bridge_on_connect.from_number)
        await self.check_asr(request.action_on_connect)
        media = None
        if request.action_on_connect is not None:
            media = await self.resolve_media(request.action_on_connect.media)
        await self.admit_call(app, [request.to] + ([request.bridge_on_connect.to]
                                                   if request.bridge_on_connect else []))
        tel = self.tel
        leg = Leg(tel, f"ccv-{uuid.uuid4().hex}", request.to, trunk_endpoint(app))
        live = await self._register(
            app, leg.call, "outbound", request.from_number, request.to.value, "initiated",
            owner_ref=request.owner_ref, event_url=request.event_url,
        )
        try:
            await leg.dial(request.from_number, request.timeout)
        except TrunkDown as exc:
            log.warning("outbound call %s for application %s: %s", live.voice_id, app.app_id,
                        exc.message)
            live.cause = TRUNK_DOWN
            await live.finish()
            raise
        except IvrError as exc:
            live.cause = "failed"
            await live.finish()
            raise CallFailed(f"the call could not be placed: {exc.message}") from exc
        live.spawn(live.run_outbound(leg, request.action_on_connect, media,
                                     detect_machine=request.voicemail_detection,
                                     auto_record=request.auto_record), "outbound")
        if request.bridge_on_connect is not None:
            live.spawn(bridge_on_answer(live, leg, request.bridge_on_connect), "on-connect")
        return live

    # --- lookups ------------------------------------------------------------------------
    @staticmethod
    def parse_voice_id(value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise CallNotFound("Call not found") from None

    async def live_call(self, app: Application, voice_id: str, *,
                        may_forward: bool = False) -> LiveCall:
        """The live call, or 404 (unknown, another application's) / 409 (ended); with
        `may_forward`, HeldElsewhere when another engine of the pool runs it."""
        vid = self.parse_voice_id(voice_id)
        live = self.calls.get(vid)
        if live is not None and live.app.id == app.id:
            return live
        row = await self.store.call(vid, app.id)
        if row is None:
            raise CallNotFound("Call not found")
        if row["ended_at"] is None and not await self._settle_if_lost(row):
            url = await self.store.engine_url(row["channel_id"], self.tel.app) if (
                may_forward and row["channel_id"]) else None
            if url is not None:
                raise HeldElsewhere(url, **_row_view(row))
            raise CallStateMismatch("Call is handled by another server", **_row_view(row))
        raise CallStateMismatch("Call is already disconnected", **_row_view(row))

    async def _settle_if_lost(self, row: dict[str, Any]) -> bool:
        """A call open in the database that no process here holds: if its channel is gone
        (a process died with it), record the end. True when it was gone."""
        for tel in self._nodes or [self.tel]:  # on any node of this engine
            try:
                await tel.ari.get_channel(row["channel_id"])
            except AriHttpError as exc:
                if exc.status != 404:
                    raise
                continue
            return False
        await self.store.set_call_state(row["voice_id"], "disconnected", "lost")
        return True

    async def call_view(self, app: Application, voice_id: str) -> dict[str, Any]:
        vid = self.parse_voice_id(voice_id)
        live = self.calls.get(vid)
        if live is not None and live.app.id == app.id:
            if live.state == "connected":
                state = "IVR" if live.playing else "connected"
            else:
                state = "In progress"
            return {**live.base(), "state": state, "direction": live.direction.capitalize(),
                    "channel_id": live.call.id, "bridged": live.bridged}
        row = await self.store.call(vid, app.id)
        if row is None:
            raise CallNotFound("Call not found")
        return {**_row_view(row), "state": row["state"],
                "direction": row["direction"].capitalize(), "cause": row["cause"]}

    async def recording_file(self, app: Application, recording_id: str) -> tuple[bytes, str]:
        try:
            rid = uuid.UUID(recording_id)
        except ValueError:
            raise RecordingNotFound("Recording File Not Found") from None
        row = await self.store.recording(rid, app.id)
        if row is None or row["state"] != "completed":
            raise RecordingNotFound("Recording File Not Found")
        data = None
        for tel in self._nodes or [self.tel]:  # recorded on the node the call was on
            try:
                data = await tel.ari.stored_recording_file(row["asterisk_name"])
                break
            except AriHttpError as exc:
                if exc.status != 404:
                    raise
        if data is None:
            raise RecordingNotFound("Recording File Not Found")
        if row["format"] == "mp3":
            data = await _mp3(data)
        return data, row["format"]


async def _mp3(wav: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="cc-mp3-") as folder:
        src, dst = Path(folder) / "in.wav", Path(folder) / "out.mp3"
        await asyncio.to_thread(src.write_bytes, wav)
        await wav_to_mp3(src, dst)
        return await asyncio.to_thread(dst.read_bytes)


def _row_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"voice_id": str(row["voice_id"]), "from": row["from_number"], "to": row["to_number"]}
