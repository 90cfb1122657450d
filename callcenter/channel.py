"""The channel interface: what the core expects of every adapter.

A channel (SMS through a provider, Telegram, web chat, voice...) is a class in
its own package under ``channels/`` that subclasses :class:`Channel`, and is
named in the ``channels`` setting as ``"package.module:Class"``. Adding one
touches no core file: the composition root imports what the settings name, and
the class declares what the core needs to know of it:

- ``name``: the channel's name (messages and conversations carry it);
- ``identity_kind``: what citizens are known by on it (``phone`` for SMS and
  calls, ``telegram``, ``web``...); the core accepts the kinds its channels
  declare, and ``phone``, which it uses itself (calls, notices by SMS);
- ``Options``: a pydantic model of its ``[channel_options.<name>]`` table,
  checked when the server starts (a wrong value is a clear error then, not a
  surprise later); the checked values are ``self.config``;
- ``strings_dir``: its texts in both languages (``<locale>.json``);
- ``setup_web``: its routes (webhooks, pages), and what the server-wide guard
  needs to know of them (:mod:`callcenter.api.guard`: pages other sites may
  frame, private areas, routes limited per address); ``pages``: the public
  pages the server's front page lists;
- ``access``: the ways in it opens and who may use them.

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

import logging
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callcenter.domain.pacing import SendPacer
from callcenter.domain.phone import normalize_phone
from callcenter.domain.segments import Segments, count_segments, fit
from callcenter.ports import (  # noqa: F401  (adapters import them from here)
    Access,
    ChannelNotReady,
    ChannelPort,
    ChannelRegistry,
    DeliveryError,
    Inbound,
    OutboundMessage,
    Page,
    SendResult,
)
from callcenter.runtime import Runtime
from callcenter.shared_pacing import SharedPacer

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)


class ChannelOptions(BaseModel):
    """A channel's ``[channel_options.<name>]`` table; each adapter declares its fields.

    Keys it does not know are left alone (several adapters may read one table,
    as every SMS gateway reads ``[channel_options.sms]``) but said at start.
    """

    model_config = ConfigDict(extra="ignore")


class Channel(ABC):
    """One adapter. Subclasses set ``name``, ``identity_kind``, ``Options`` and, if they
    have texts, ``strings_dir``."""

    name: ClassVar[str]
    identity_kind: ClassVar[str | None] = None  # None: it knows citizens by no address of its own
    Options: ClassVar[type[ChannelOptions]] = ChannelOptions
    pages: ClassVar[tuple[Page, ...]] = ()
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
        self.config = self.read_options(options)

    @classmethod
    def read_options(cls, options: dict[str, Any]) -> ChannelOptions:
        """The options checked against :attr:`Options` (ValueError naming the field if not)."""
        try:
            config = cls.Options.model_validate(options)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(table)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ValueError(f"channel_options.{cls.name}: {problems}") from None
        unknown = sorted(set(options) - set(cls.Options.model_fields))
        if unknown:
            log.info("channel_options.%s: %s not read by %s", cls.name, unknown, cls.__name__)
        return config

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


class SmsOptions(ChannelOptions):
    """What every SMS gateway reads from ``[channel_options.sms]`` (None: its default)."""

    max_segments: int | None = Field(default=None, ge=1)
    rate_segments_per_second: float | None = Field(default=None, gt=0)


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
    identity_kind = "phone"
    Options: ClassVar[type[ChannelOptions]] = SmsOptions
    default_max_segments: ClassVar[int | None] = None
    default_rate: ClassVar[float | None] = None

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        config = self.config
        assert isinstance(config, SmsOptions)
        self.max_segments = (
            config.max_segments if config.max_segments is not None else self.default_max_segments
        )
        rate = config.rate_segments_per_second
        rate = rate if rate is not None else self.default_rate
        self.pacer = SendPacer(float(rate)) if rate is not None else None
        # with several processes, one budget per sender for all of them (Redis)
        self.shared_pacer: SharedPacer | None = None
        if rate is not None and rt.settings.redis_url:
            self.shared_pacer = SharedPacer(
                rt.settings.redis_url, f"{rt.settings.redis_prefix}:pace:{self.name}", float(rate)
            )

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
        return Inbound(
            channel=self.name,
            identity_kind="phone",  # SMS gateways know citizens by their number
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

    async def pace(self, sender: str, segments: int) -> None:
        """Take ``segments`` from the sender's budget, or defer the job until there is room.

        The budget is every process's with Redis (:mod:`callcenter.shared_pacing`), this
        process's alone without it, or while Redis does not answer."""
        if self.pacer is None:
            return
        now = self.rt.clock.now()
        wait = None
        if self.shared_pacer is not None:
            wait = await self.shared_pacer.reserve(sender, segments, now)
        if wait is None:
            wait = self.pacer.reserve(sender, segments, now)
        if wait > 0:
            raise DeliveryError(
                f"sender {sender} is at its send rate", retry_after=wait, count_attempt=False
            )
