"""What the core and its channel adapters hand each other, and the registry of adapters.

Below the runtime (which holds the registry) and the channel interface
(:mod:`callcenter.channel`, which adapters subclass): an inbound text
(:class:`Inbound`, adapter to core), a stored outbound message and the
provider's answer (:class:`OutboundMessage`, :class:`SendResult`,
:class:`DeliveryError`, core to adapter), and :class:`ChannelPort`, what the
core calls on an adapter. Nothing here imports the runtime, so the import
graph runs one way: ports <- runtime <- channel <- adapters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from callcenter.domain.errors import HotlineError

if TYPE_CHECKING:
    from aiohttp import web


@dataclass
class Inbound:
    """One inbound text, as an adapter hands it over."""

    channel: str
    identity_kind: str  # "phone", or the kind its channel declares (Channel.identity_kind)
    address: str  # the citizen's address on the channel (E.164 for phone channels)
    body: str
    provider_id: str | None = None
    service_address: str | None = None
    name: str | None = None
    locale: str | None = None
    address_text: str | None = None  # a place named by the citizen, for routing
    lat: float | None = None
    lon: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    auto_ticket: bool | None = None  # None: as configured (intake.auto_ticket)


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


@dataclass(frozen=True)
class Page:
    """A public page a channel serves, for the server's front page: its path and the
    catalog key of its link's text."""

    path: str
    text_key: str


class ChannelPort(Protocol):
    """What the core and the composition root call on an adapter
    (:class:`callcenter.channel.Channel` is the base every adapter subclasses)."""

    name: ClassVar[str]
    identity_kind: ClassVar[str | None]
    strings_dir: ClassVar[Path | None]
    text_capable: ClassVar[bool]
    listens: ClassVar[bool]
    stand_in: ClassVar[bool]
    pages: ClassVar[tuple[Page, ...]]

    async def initialize(self) -> None: ...

    async def shutdown(self) -> None: ...

    def setup_web(self, app: web.Application) -> None: ...

    def access(self) -> list[Access]: ...

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None: ...


class ChannelRegistry:
    def __init__(self) -> None:
        self.channels: dict[str, ChannelPort] = {}

    def add(self, channel: ChannelPort) -> None:
        if channel.name in self.channels:
            raise ValueError(f"two adapters for channel {channel.name!r}")
        self.channels[channel.name] = channel

    def get(self, name: str) -> ChannelPort | None:
        return self.channels.get(name)

    def identity_kinds(self) -> frozenset[str]:
        """The kinds of identity the channels know citizens by (``phone``, ``telegram``...)."""
        return frozenset(c.identity_kind for c in self.channels.values() if c.identity_kind)

    def __iter__(self) -> Iterator[ChannelPort]:
        return iter(self.channels.values())
