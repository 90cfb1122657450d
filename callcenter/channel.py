"""The channel interface: what the core expects of every adapter.

A channel (SMS through a provider, Telegram, web chat, voice...) is a class in
its own package under ``channels/`` that subclasses :class:`Channel`, and is
named in the ``channels`` setting as ``"package.module:Class"``. Adding one
touches no core file: the composition root imports what the settings name.

Inbound, an adapter turns the provider's event into a call of a core action
(for text, :func:`callcenter.actions.intake.receive_message`) and answers the
provider only after that action committed. Outbound, the core's
``message.deliver`` job calls :meth:`Channel.send` with a message that is
already stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from callcenter.domain.errors import HotlineError

if TYPE_CHECKING:
    from aiohttp import web

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


class Channel(ABC):
    """One adapter. Subclasses set ``name`` and, if they have texts, ``strings_dir``."""

    name: ClassVar[str]
    strings_dir: ClassVar[Path | None] = None
    text_capable: ClassVar[bool] = True  # False for voice: notifications then go by SMS

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        self.rt = rt
        self.options = options

    async def initialize(self) -> None:
        """Open connections, start pollers. Called once, after the database is ready."""

    async def shutdown(self) -> None:
        """Close what :meth:`initialize` opened."""

    def setup_web(self, app: web.Application) -> None:
        """Add webhook or page routes to the server (optional)."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one stored message. Must be idempotent on ``idempotency_key``."""


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
