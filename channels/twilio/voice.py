"""Twilio Voice: the same IVR flow as SIP, carried over webhooks and TwiML.

Twilio asks this server what to do at each step of a call (a webhook, signed
with the account's auth token, checked by :class:`TwilioWebhook`); the answer
is TwiML made with the official ``twilio`` package: ``<Say language="zh-CN">``
for prompts, ``<Gather input="speech dtmf">`` for keys and speech (Twilio
recognises the speech), ``<Record>`` for voice messages, and ``<Enqueue>``
with a wait URL for the queue's announcements. The IVR's state for each call
(its :class:`ivr.engine.Session`) stays on this server between webhooks,
keyed by CallSid; the call itself is stored by the call actions before any
answer goes back (DESIGN rule 3).

Routes (all POST, all signed)::

    /channels/twilio/voice            the call arrives
    /channels/twilio/voice/input      keys, speech, a recording, a timeout, the queue's end
    /channels/twilio/voice/wait       the queue's wait URL (announcements, key to leave)
    /channels/twilio/voice/leave      a key pressed while waiting: leave the queue
    /channels/twilio/voice/status     status callback: the call ended

    /channels/twilio/voice/tone.wav   the tone played before the caller speaks (GET)
    /channels/twilio/voice/music.wav  hold music, as long as the wait between announcements (GET)

Options (``[channel_options.twilio_voice]``): ``auth_token`` (required),
``public_url`` (the URL Twilio calls; default: the server's public URL),
``speech_languages`` (languages Twilio should recognise; default both),
``voices`` (the ``<Say>`` voice and language per locale; by default Amazon
Polly's Mandarin voice ``Polly.Zhiyu`` in ``cmn-CN`` and ``Polly.Joanna`` in
``en-US``: without a voice, ``<Say language="zh-CN">`` is read by a voice that
speaks no Chinese).

A speech prompt ends with the tone (``<Play>`` of ``tone.wav`` inside the
``<Gather>``), as the prompt promises. Calls beyond ``voice.max_calls`` at
once hear ``voice.lines_busy`` and are hung up; they are counted (outcome
``busy``).

A caller in the queue hears the position and expected wait, then hold music
(``<Play>`` of ``music.wav`` inside the wait URL's ``<Gather>``) until the next
announcement. When an agent takes the call, the wait URL answers ``<Leave>``
and the call goes on with ``<Say>`` "connecting" and ``<Dial>`` to the agent's
leg (``agent_sip``: a SIP URI template with ``{user}``, the signed leg user of
:func:`callcenter.actions.calls.leg_user`); a dial that does not connect puts
the caller back in the queue, in their place, with an apology.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDict
from pydantic import Field, field_validator
from twilio.twiml.voice_response import VoiceResponse

from callcenter.actions.calls import CallStart, hold_music_seconds, leg_user, start_call
from callcenter.channel import (
    Access,
    Channel,
    ChannelOptions,
    DeliveryError,
    OutboundMessage,
    SendResult,
)
from callcenter.domain.errors import InvalidInput
from callcenter.runtime import Runtime
from ivr.audio import hold_music
from ivr.categories import category_phrases
from ivr.engine import Engine, Reply, Say, Session, Turn
from ivr.setup import build_engine, place_names
from ivr.tts import tone

from .webhooks import TwilioWebhook

log = logging.getLogger(__name__)

BASE = "/channels/twilio/voice"
DEFAULT_VOICES = {
    "zh-CN": {"voice": "Polly.Zhiyu", "language": "cmn-CN"},  # Amazon Polly's Mandarin voice
    "en": {"voice": "Polly.Joanna", "language": "en-US"},
}
# Twilio's speech recognition language codes
SPEECH_LANGUAGE = {"zh-CN": "cmn-Hans-CN", "en": "en-US"}


@dataclass
class CallState:
    session: Session
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: Turn | None = None  # a turn decided while the caller waited in the queue
    last_twiml: str = ""


class TwilioVoiceOptions(ChannelOptions):
    """``[channel_options.twilio_voice]`` (docs/channels/twilio.md)."""

    auth_token: str = ""  # the account's token, to check Twilio's signatures
    public_url: str | None = None  # default: the server's public_url
    speech_languages: list[str] = Field(default_factory=lambda: ["zh-CN", "en"])
    voices: dict[str, dict[str, str]] = Field(default_factory=dict)  # per locale
    # where <Dial><Sip> reaches an agent's leg: "{user}" is the call's signed leg user
    agent_sip: str = "sip:{user}@127.0.0.1:5060"

    @field_validator("voices")
    @classmethod
    def _voice_and_language(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for locale, chosen in value.items():
            if not chosen.get("language"):
                raise ValueError(f"voices.{locale} needs a voice and a language")
        return value


class TwilioVoice(Channel):
    name = "twilio_voice"
    identity_kind = "phone"  # callers are known by their number
    text_capable = False  # notices to callers go by SMS
    Options = TwilioVoiceOptions
    config: TwilioVoiceOptions

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        public = self.config.public_url or rt.settings.effective_public_url
        self.webhook = TwilioWebhook(self.config.auth_token, public)
        self.public_url = public.rstrip("/")
        self.speech_languages = set(self.config.speech_languages)
        self.voices = {**DEFAULT_VOICES, **self.config.voices}
        self.calls: dict[str, CallState] = {}
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.rt, lambda locale: locale in self.speech_languages)
        return self._engine

    async def initialize(self) -> None:
        _ = self.engine  # a bad flow file stops the start, not the first call

    def setup_web(self, app: web.Application) -> None:
        app.router.add_post(BASE, self.incoming)
        app.router.add_post(f"{BASE}/input", self.input)
        app.router.add_post(f"{BASE}/wait", self.wait)
        app.router.add_post(f"{BASE}/leave", self.leave)
        app.router.add_post(f"{BASE}/status", self.status)
        app.router.add_get(f"{BASE}/tone.wav", self.tone)
        app.router.add_get(f"{BASE}/music.wav", self.music)

    async def music(self, request: web.Request) -> web.Response:
        """Hold music for the time between two queue announcements."""
        return _wav(hold_music(hold_music_seconds(self.rt)))

    async def tone(self, request: web.Request) -> web.Response:
        """The tone before the caller speaks: a 1 kHz beep of a quarter second."""
        return _wav(tone())

    def _say(self, verb: Any, say: Say) -> None:
        chosen = self.voices.get(say.locale, {})
        attrs = {"language": chosen.get("language", say.locale)}
        if chosen.get("voice"):
            attrs["voice"] = chosen["voice"]
        verb.say(say.text, **attrs)

    def access(self) -> list[Access]:
        return [
            Access(f"POST {BASE}/*", "signed", "X-Twilio-Signature"),
            Access(f"GET {BASE}/tone.wav", "everyone"),
            Access(f"GET {BASE}/music.wav", "everyone"),
        ]

    async def send(self, message: OutboundMessage) -> SendResult:
        raise DeliveryError("a voice channel cannot deliver text", permanent=True, code="voice")

    # --- webhooks ---------------------------------------------------------------------------

    async def _form(self, request: web.Request) -> MultiDict[str]:
        form = await self.webhook.verified_form(request)
        sid = form.get("CallSid", "")
        if not sid or len(sid) > 64:
            raise InvalidInput("missing_field", field="CallSid")
        return form

    async def _handle(self, request: web.Request, work: Any) -> web.Response:
        form = await self._form(request)
        twiml = await work(form)
        return web.Response(text=twiml, content_type="text/xml")

    async def incoming(self, request: web.Request) -> web.Response:
        async def work(form: MultiDict[str]) -> str:
            sid = form["CallSid"]
            info = await start_call(
                self.rt, CallStart(self.name, sid, form.get("From"), form.get("To"))
            )
            state = self.calls.get(sid)
            if state is not None and state.last_twiml:
                return state.last_twiml  # a retried webhook: the same answer
            if info.duplicate and state is None:
                response = VoiceResponse()
                response.hangup()
                return str(response)
            if len(self.calls) >= self.rt.settings.voice.max_calls:
                return await self._busy(info)
            state = self.calls[sid] = CallState(Session(info, locale=info.locale))
            async with state.lock:
                turn = await self.engine.start(state.session)
                return self._respond(sid, state, turn)

        return await self._handle(request, work)

    async def _busy(self, info: Any) -> str:
        """Over the cap of simultaneous calls: the caller is told, the call counted."""
        session = Session(info, locale=info.locale, finished=True)
        response = VoiceResponse()
        self._say(response, self.engine.lines_busy(session))
        response.hangup()
        await self.engine.end(session, outcome="busy")
        return str(response)

    async def input(self, request: web.Request) -> web.Response:
        async def work(form: MultiDict[str]) -> str:
            sid = form["CallSid"]
            state = self._state(sid)
            if state is None:
                return _hangup()
            async with state.lock:
                if request.query.get("queued"):
                    # the caller left the queue: say what was decided meanwhile
                    if state.pending is not None and form.get("QueueResult") == "leave":
                        turn, state.pending = state.pending, None
                        return self._respond(sid, state, turn)
                    return _hangup()
                reply = self._reply(form, request)
                if request.query.get("bridged"):  # the dial to the agent is over
                    reply = Reply(lost=form.get("DialCallStatus") != "completed")
                turn = await self.engine.resume(state.session, reply)
                return self._respond(sid, state, turn)

        return await self._handle(request, work)

    async def wait(self, request: web.Request) -> web.Response:
        """Played to a caller in the queue, again and again until they leave it."""

        async def work(form: MultiDict[str]) -> str:
            state = self._state(form["CallSid"])
            if state is None:
                return _hangup()
            async with state.lock:
                turn = await self.engine.resume(state.session, Reply(timed_out=True))
                if turn.expect.kind != "hold":
                    state.pending = turn  # said after the caller leaves the queue
                    response = VoiceResponse()
                    response.leave()
                    return str(response)
                response = VoiceResponse()
                gather = response.gather(
                    input="dtmf",
                    num_digits=1,
                    timeout=1,  # the music fills the time until the next announcement
                    action=self._url("leave", form["CallSid"]),
                    method="POST",
                )
                for say in turn.says:
                    self._say(gather, say)
                gather.play(f"{self.public_url}{BASE}/music.wav")
                return str(response)

        return await self._handle(request, work)

    async def leave(self, request: web.Request) -> web.Response:
        async def work(form: MultiDict[str]) -> str:
            state = self._state(form["CallSid"])
            response = VoiceResponse()
            if state is None:
                return str(response)
            async with state.lock:
                node = self.engine.flow.node(state.session.node)
                key = form.get("Digits", "")[:1]
                if node.type == "queue" and key and key == node.callback_digit:
                    state.pending = await self.engine.resume(state.session, Reply(digits=key))
                    response.leave()
                # any other key: back to the wait music (Twilio asks the wait URL again)
            return str(response)

        return await self._handle(request, work)

    async def status(self, request: web.Request) -> web.Response:
        async def work(form: MultiDict[str]) -> str:
            sid = form["CallSid"]
            if form.get("CallStatus") in ("completed", "busy", "failed", "no-answer", "canceled"):
                state = self.calls.pop(sid, None)
                if state is not None:
                    async with state.lock:
                        await self.engine.end(state.session)
            return str(VoiceResponse())

        return await self._handle(request, work)

    # --- between the engine and TwiML ---------------------------------------------------------

    def _state(self, sid: str) -> CallState | None:
        return self.calls.get(sid)

    def _url(self, what: str, sid: str, **extra: str) -> str:
        query = "&".join([f"call={sid}", *(f"{k}={v}" for k, v in extra.items())])
        return f"{self.public_url}{BASE}/{what}?{query}"

    @staticmethod
    def _reply(form: MultiDict[str], request: web.Request) -> Reply:
        digits = form.get("Digits", "")
        if digits and form.get("FinishedOnKey") == "#":
            digits += "#"
        speech = form.get("SpeechResult")
        recording = form.get("RecordingUrl")
        confidence: float | None = None
        try:
            confidence = float(form["Confidence"]) if form.get("Confidence") else None
        except ValueError:
            raise InvalidInput("invalid_field", field="Confidence") from None
        seconds: float | None = None
        if form.get("RecordingDuration"):
            try:
                seconds = float(form["RecordingDuration"])
            except ValueError:
                raise InvalidInput("invalid_field", field="RecordingDuration") from None
        timed_out = bool(request.query.get("timeout")) and not digits and not speech
        return Reply(
            digits=digits,
            timed_out=timed_out,
            transcript=speech,
            confidence=confidence,
            recording=recording,
            seconds=seconds,
        )

    def _respond(self, call_sid: str, state: CallState, turn: Turn) -> str:
        response = VoiceResponse()
        expect = turn.expect
        action = self._url("input", call_sid)
        if expect.kind in ("digits", "speech"):
            options: dict[str, Any] = {
                "action": action,
                "method": "POST",
                "timeout": max(1, int(expect.timeout)),
            }
            if expect.kind == "speech":
                options["input"] = "speech dtmf"
                options["language"] = SPEECH_LANGUAGE[expect.language]
                options["speech_timeout"] = "auto"
                options["finish_on_key"] = "#"
                options["num_digits"] = 1
                if expect.grammar == "categories":
                    hints = category_phrases(self.rt, expect.language)
                    hints += place_names(self.rt, expect.language)
                    options["hints"] = ",".join(hints)
            else:
                options["input"] = "dtmf"
                options["num_digits"] = expect.max_digits
                options["finish_on_key"] = expect.terminator or ""
            gather = response.gather(**options)
            for say in turn.says:
                self._say(gather, say)
            if expect.kind == "speech":  # "after the tone": the tone, then the caller speaks
                gather.play(f"{self.public_url}{BASE}/tone.wav")
            response.redirect(self._url("input", call_sid, timeout="1"), method="POST")
        else:
            for say in turn.says:
                self._say(response, say)
            if expect.kind == "record":
                response.record(
                    action=action,
                    method="POST",
                    max_length=int(expect.max_seconds),
                    finish_on_key="#",
                    play_beep=True,
                )
                response.redirect(self._url("input", call_sid, timeout="1"), method="POST")
            elif expect.kind == "bridge":
                conversation = state.session.call.conversation_id
                agent = state.session.vars.get("agent_id")
                dial = response.dial(
                    action=self._url("input", call_sid, bridged="1"),
                    method="POST",
                    answer_on_bridge=True,
                )
                user = leg_user(self.rt, conversation, int(agent)) if agent else "agent-none"
                dial.sip(self.config.agent_sip.format(user=user))
            elif expect.kind == "hold":
                response.enqueue(
                    self.rt.settings.voice.queue,
                    wait_url=self._url("wait", call_sid),
                    wait_url_method="POST",
                    action=self._url("input", call_sid, queued="1"),
                    method="POST",
                )
            else:
                response.hangup()
        state.last_twiml = str(response)
        return state.last_twiml


def _wav(samples: bytes) -> web.Response:
    """8 kHz 16-bit mono samples as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples)
    return web.Response(body=out.getvalue(), content_type="audio/wav")


def _hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
