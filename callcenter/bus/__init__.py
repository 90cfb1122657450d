"""Live events for browsers and other listeners, published after commit.

:class:`MemoryBus` serves one process. :class:`callcenter.bus.redis_bus.RedisBus`
(a Redis Stream) implements the same :class:`EventBus` interface for several nodes,
and keeps the recent events for a page that reconnects to another node (:meth:`EventBus.since`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# offered to a bus's subscribers (never published) when the bus lost the events it
# kept and its ids start again: listeners that keep ids (the staff pages) refetch
BUS_RESET = "bus.reset"


@dataclass(frozen=True)
class Event:
    """One live event. ``type`` names its schema (see :mod:`callcenter.bus.events`)."""

    type: str
    data: dict[str, Any]
    at: datetime
    id: int = 0
    scope: dict[str, Any] = field(default_factory=dict)  # who may see it (e.g. department_id)


class Subscription:
    """An async iterator of events with a bounded buffer."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self.bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the listener must refetch; see docs/events.md

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus(ABC):
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Send an event to every subscriber; never blocks."""

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        subscription = Subscription(self, maxsize)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(KeyError):
            self._subscribers.remove(subscription)

    def _offer(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    async def since(self, last_id: int) -> list[Event] | None:
        """The events after ``last_id``, if this bus still has them all (else None).

        The in-process bus keeps none: each page's queue on the server keeps its own."""
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class MemoryBus(EventBus):
    """The in-process bus: fan-out to subscriber queues."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def publish(self, event: Event) -> None:
        self._offer(Event(event.type, event.data, event.at, next(self._ids), event.scope))
