"""The channel interface: what the core expects of every adapter.

A channel (SMS through a provider, Telegram, web chat, voice...) is a class in
its own package under ``channels/`` that subclasses :class:`Channel`, and is
named in the ``channels`` setting as ``"package.module:Class"``. Adding one
touches no core file: the composition root imports what the settings name.

Inbound, an adapter turns the provider's event into a call of a core action
(for text, :func:`callcenter.actions.intake.receive_message`, or
:meth:`callcenter.actions.inbox.Inbox.accept` when the provider wants a quick
answer) and answers the provider only after that committed. Outbound, the core's
``message.deliver`` job calls :meth:`Channel.send` with a message that is
already stored.

SMS gateways (the simulated provider, Twilio, any other) subclass
:class:`SmsChannel`, which holds what they all share: the citizen's number in
E.164 form, the :class:`~callcenter.actions.intake.Inbound` they hand to
intake, segment counting and the segment budget, and pacing per sender number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from callcenter.domain.errors import HotlineError
from callcenter.domain.pacing import SendPacer
from callcenter.domain.phone import normalize_phone
from callcenter.domain.segments import Segments, count_segments, fit

if TYPE_CHECKING:
    from aiohttp import web

    from callcenter.actions.intake import Inbound
    from callcenter.runtime import Runtime


@dataclass(frozen=True)
class OutboundMessage:
    """A stored outbound message, handed to the adapter that delivers it."""

    message_id: int
    channel: str
    to: str
    sender: str | None
    body: str
    locale: str
    kind: str
    essential: bool
    idempotency_key: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_id: str | None
    status: str = "sent"  # queued | sent | delivered
    detail: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """A send that failed. ``permanent`` failures are not retried.

    ``retry_after`` asks for the next try not before that many seconds; with
    ``count_attempt=False`` (rate limits: the provider is fine, we are too
    fast) the try does not count against the job's attempts.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        code: str | None = None,
        retry_after: float | None = None,
        count_attempt: bool = True,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        self.count_attempt = count_attempt


class ChannelNotReady(HotlineError):
    """The adapter cannot work yet (provider unreachable); retry later."""

    status = 503
    default_code = "channel_not_ready"


@dataclass(frozen=True)
class Access:
    """One way into the server a channel opens, and who may use it; the server says
    them all at start (:func:`callcenter.bootstrap.access_report`).

    ``who`` names a text ``access.<who>``: ``everyone``, ``loopback``, ``token``,
    ``signed`` (the provider's signature), ``secret`` (a shared secret header),
    ``sip`` (the SIP port), ``outbound`` (the adapter calls out, nothing comes in).
    """

    route: str
    who: str
    detail: str = ""


class Channel(ABC):
    """One adapter. Subclasses set ``name`` and, if they have texts, ``strings_dir``."""

    name: ClassVar[str]
    strings_dir: ClassVar[Path | None] = None
    text_capable: ClassVar[bool] = True  # False for voice: notifications then go by SMS
    # a stand-in for demos and tests (the simulated SMS provider): it gives way to a real
    # adapter of the same name, and its ways in are closed to the network by default
    stand_in: ClassVar[bool] = False
    # True for an adapter that opens a listening socket of its own (SIP): it is
    # initialised only in the process that serves (``start_runtime(listen=True)``),
    # so that commands beside a running server (workers, simulate) do not take its port
    listens: ClassVar[bool] = False

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        self.rt = rt
        self.options = options

    async def initialize(self) -> None:
        """Open connections, start pollers. Called once, after the database is ready."""

    async def shutdown(self) -> None:
        """Close what :meth:`initialize` opened."""

    def setup_web(self, app: web.Application) -> None:
        """Add webhook or page routes to the server (optional)."""

    def access(self) -> list[Access]:
        """The ways in :meth:`setup_web` (or :meth:`initialize`) opens, and who may use them."""
        return []

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one stored message. Must be idempotent on ``idempotency_key``."""

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Whether the provider already has ``message`` (handed to it at or after ``since``).

        Asked before a send when an earlier attempt started and its answer was never
        recorded (the process died in between); None means not found, and the message
        is sent again. An adapter whose provider has no idempotency key answers from
        the provider's own records; raise :class:`DeliveryError` when it cannot be asked
        now (the send is then retried later, never made blind).
        """
        return None


class SmsChannel(Channel):
    """An SMS gateway: the ``sms`` channel, whichever provider carries it.

    Options every gateway understands (``[channel_options.sms]``):
    ``max_segments`` (a longer text is shortened to that many segments before
    it is sent; the stored message keeps the whole text) and
    ``rate_segments_per_second`` (pacing per sender number). A gateway sets
    its own defaults in ``default_max_segments`` and ``default_rate``; None
    means no limit.

    :meth:`pace` raises :class:`DeliveryError` with ``count_attempt=False``
    when the sender is at its rate: the job is deferred without spending an
    attempt, and the executor runs other jobs meanwhile.
    """

    name = "sms"
    default_max_segments: ClassVar[int | None] = None
    default_rate: ClassVar[float | None] = None

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        max_segments = options.get("max_segments", self.default_max_segments)
        self.max_segments = int(max_segments) if max_segments is not None else None
        if self.max_segments is not None and self.max_segments < 1:
            raise ValueError("channel_options.sms.max_segments must be at least 1")
        rate = options.get("rate_segments_per_second", self.default_rate)
        self.pacer = SendPacer(float(rate)) if rate is not None else None

    def phone_address(self, raw: str) -> str:
        """A number as the sender wrote it, in E.164 (InvalidInput ``invalid_phone`` if not one)."""
        return normalize_phone(raw, self.rt.settings.default_region)

    def make_inbound(
        self,
        *,
        sender: str,
        body: str,
        provider_id: str,
        service_address: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Inbound:
        """What intake gets from any gateway: the citizen found by their E.164 number."""
        # imported here: the intake action imports this module (for the delivery errors)
        from callcenter.actions.intake import Inbound

        return Inbound(
            channel=self.name,
            identity_kind="phone",
            address=self.phone_address(sender),
            body=body,
            provider_id=provider_id,
            service_address=service_address,
            meta=meta or {},
        )

    @staticmethod
    def segments(body: str) -> Segments:
        return count_segments(body)

    def fit_body(self, body: str) -> str:
        """The text to hand to the provider: ``body`` within the segment budget."""
        if self.max_segments is None:
            return body
        return fit(body, self.max_segments)

    def pace(self, sender: str, segments: int) -> None:
        """Take ``segments`` from the sender's budget, or defer the job until there is room."""
        if self.pacer is None:
            return
        wait = self.pacer.reserve(sender, segments, self.rt.clock.now())
        if wait > 0:
            raise DeliveryError(
                f"sender {sender} is at its send rate", retry_after=wait, count_attempt=False
            )


class ChannelRegistry:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}

    def add(self, channel: Channel) -> None:
        if channel.name in self.channels:
            raise ValueError(f"two adapters for channel {channel.name!r}")
        self.channels[channel.name] = channel

    def get(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def __iter__(self) -> Any:
        return iter(self.channels.values())
