"""SIP calls with pyVoIP: the hotline as a SIP user agent (see docs/channels/sip.md).

The ``sip`` channel answers calls, plays the IVR's prompts, reads RFC 2833
keys, records callers and transcribes them, and reports everything through
the call actions. Two modes:

- ``register``: registers with a PBX or registrar (``server``, ``server_port``,
  ``username``, ``password``) and takes the calls it routes here;
- ``direct``: no registrar; SIP clients call ``sip:<user>@<host>:<port>``.

Each call runs in its own thread (pyVoIP's model); the IVR engine's decisions
run on the server's event loop, audio work and recognition never do.
Voice cannot carry text: :meth:`SipChannel.send` refuses outbound messages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from callcenter.actions.calls import read_leg_user
from callcenter.channel import (
    Access,
    Channel,
    ChannelOptions,
    DeliveryError,
    OutboundMessage,
    SendResult,
)
from callcenter.runtime import Runtime
from ivr.setup import build_engine, build_prompts, build_recognizers
from ivr.stt import Recognizers
from ivr.tts import check_tools

from .bridge import AgentLeg, AgentLegs
from .mediation import MediationCall
from .runner import CallContext, CallRunner
from .stack import CallAudio, HotlinePhone

log = logging.getLogger(__name__)


class SipOptions(ChannelOptions):
    """``[channel_options.sip]`` (docs/channels/sip.md)."""

    mode: Literal["direct", "register"] = "direct"
    host: str = "127.0.0.1"  # written into the SDP: an explicit IPv4 address
    port: int = Field(default=5060, ge=1, le=65535)
    server: str | None = None  # the PBX to register with (default: host)
    server_port: int | None = Field(default=None, ge=1, le=65535)  # default: port
    username: str = "hotline"
    password: str = ""
    # calls to this user go to the mediation line (a party joining by telephone), not the IVR
    mediation_user: str = "mediation"
    rtp_low: int = Field(default=10000, ge=1024, le=65535)
    rtp_high: int = Field(default=20000, ge=1024, le=65535)

    @field_validator("host")
    @classmethod
    def _an_ipv4_address(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"must be an IP address, not {value!r}: it is written into the SDP"
            ) from None
        if address.is_unspecified or address.version != 4:
            raise ValueError("must be an explicit IPv4 address")
        return value


class SipChannel(Channel):
    name = "sip"
    identity_kind = "phone"  # callers are known by their number
    text_capable = False  # notices to callers go by SMS
    listens = True  # the SIP port: only the serving process opens it
    Options = SipOptions
    config: SipOptions
    strings_dir = Path(__file__).parent / "strings"

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        config = self.config
        self.mode = config.mode
        self.host = config.host
        self.port = config.port
        self.server = config.server or self.host
        self.server_port = config.server_port or self.port
        self.username = config.username
        self.password = config.password
        self.rtp_low = config.rtp_low
        self.rtp_high = config.rtp_high
        self.phone: HotlinePhone | None = None
        self.recognizers = Recognizers()
        self.threads: set[threading.Thread] = set()
        self.context: CallContext | None = None
        self.legs = AgentLegs()

    def access(self) -> list[Access]:
        if self.mode == "register":  # registered with a PBX: calls come through it
            return [
                Access(f"udp {self.host}:{self.port}", "sip", f"{self.server}:{self.server_port}")
            ]
        return [Access(f"udp {self.host}:{self.port}", "sip")]

    async def initialize(self) -> None:
        check_tools()
        self.recognizers = await asyncio.to_thread(build_recognizers, self.rt)
        engine = build_engine(self.rt, self.recognizers.available)
        self.context = CallContext(
            loop=asyncio.get_running_loop(),
            engine=engine,
            prompts=build_prompts(self.rt),
            recognizers=self.recognizers,
            recordings=Path(self.rt.settings.data_dir) / "recordings",
            channel=self.name,
            no_media_seconds=self.rt.settings.voice.no_media_seconds,
            media_gap_seconds=self.rt.settings.voice.media_gap_seconds,
            legs=self.legs,
            record_calls=self.rt.settings.voice.record_calls,
        )
        self.phone = HotlinePhone(
            self.server,
            self.server_port,
            self.username,
            self.password,
            myIP=self.host,
            callCallback=self._on_call,
            sipPort=self.port,
            rtpPortLow=self.rtp_low,
            rtpPortHigh=self.rtp_high,
            register=self.mode == "register",
        )
        await asyncio.to_thread(self.phone.start)
        log.info("SIP %s mode on %s:%s", self.mode, self.host, self.port)

    def _on_call(self, call: Any) -> None:
        """pyVoIP calls this in a thread of its own for every new call."""
        assert self.context is not None
        thread = threading.current_thread()
        self.threads.add(thread)
        headers = call.request.headers
        caller = headers.get("From", {}).get("number") or headers.get("From", {}).get("caller")
        called = headers.get("To", {}).get("number")
        if (called or "").startswith(("agent-", "listen-")):
            try:
                self._agent_leg(call, called or "")
            finally:
                if self.phone is not None:
                    self.phone.sip.forget(call.call_id)  # type: ignore[attr-defined]
                self.threads.discard(thread)
            return
        runner = CallRunner(self.context, CallAudio(call), call.call_id, caller, called)
        try:
            if len(self.threads) > self.rt.settings.voice.max_calls:
                engine = self.context.engine
                runner.busy(call.answer, call.hangup, engine.lines_busy)
            elif called and called == self.config.mediation_user:
                MediationCall(self.rt, runner).run(call.answer, call.hangup)
            else:
                runner.run(call.answer, call.hangup)
        finally:
            if self.phone is not None:
                self.phone.sip.forget(call.call_id)  # type: ignore[attr-defined]
            self.threads.discard(thread)

    def _agent_leg(self, call: Any, user: str) -> None:
        """An agent's softphone calls in to be bridged to the call they took (bridge.py)."""
        found = read_leg_user(self.rt, user)
        if found is None:
            log.warning("SIP: a call to %r, not a leg this hotline signed: refused", user[:80])
            call.deny()
            return
        kind, conversation_id, agent_id = found
        call.answer()
        leg = AgentLeg(conversation_id, agent_id, CallAudio(call), listener=kind == "listen")
        self.legs.arrive(leg)
        log.info("SIP: %s leg of %s for conversation %s answered", kind, agent_id, conversation_id)
        while not leg.done.wait(0.1):
            if leg.audio.ended:
                break
        self.legs.leave(leg)
        if not leg.audio.ended:
            try:
                call.hangup()
            except Exception:
                log.debug("hangup of an agent leg did not work", exc_info=True)

    @property
    def active_calls(self) -> int:
        return len(self.threads)

    async def shutdown(self) -> None:
        if self.phone is not None:
            phone, self.phone = self.phone, None
            await asyncio.to_thread(phone.stop)

    async def send(self, message: OutboundMessage) -> SendResult:
        raise DeliveryError("a voice channel cannot deliver text", permanent=True, code="voice")
