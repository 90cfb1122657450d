"""Live events across nodes: a Redis Stream (``redis_url`` set; ``docs/scaling.md``).

Every process publishes into one stream (``XADD ... MAXLEN ~ bus_max_events``) and
every process reads it with one reader task that fans out to its own subscribers
(the staff websockets' hub, the ACD), so a page connected to node A sees what a
webhook answered on node B or a Celery worker did.

Event ids are the stream's own, and the same on every node: a counter in Redis and
the entry id ``<n>-1`` are set together by one script, so ids are small integers
that grow by one (the pages keep them as numbers). A page that reconnects to any
node names the last id it saw and gets what followed from the stream
(:meth:`RedisBus.since`); an id older than the stream keeps, or one the stream
never had (Redis lost its data), gets ``None``: the page refetches.

:meth:`publish` never blocks (it is called after commit): events wait in a list for
the sender task, which writes them in one pipeline. While Redis is away, events
wait (up to ``max_pending``; older ones are dropped, and the readers' pages refetch
when the ids jump) and the reader retries every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callcenter.bus import BUS_RESET, Event, EventBus

log = logging.getLogger(__name__)

# KEYS: stream, counter; ARGV: maxlen, then the events' JSON; returns the first id
_XADD = """
local first = redis.call('INCRBY', KEYS[2], #ARGV - 1) - (#ARGV - 1) + 1
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], (first + i - 2) .. '-1', 'e', ARGV[i])
end
return first
"""


def _encode(event: Event) -> bytes:
    return orjson.dumps(
        {"type": event.type, "data": event.data, "at": event.at.isoformat(), "scope": event.scope}
    )


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> Event:
    raw = fields.get(b"e") or fields.get("e")
    if raw is None:
        raise KeyError("e")
    body = orjson.loads(raw)
    number = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
    return Event(
        body["type"], body["data"], datetime.fromisoformat(body["at"]), number, body["scope"]
    )


class RedisBus(EventBus):
    """One stream shared by every node; one reader per process."""

    def __init__(
        self,
        url: str,
        *,
        key: str = "callcenter:events",
        max_events: int = 100_000,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__()
        self.url = url
        self.key = key
        self.counter = f"{key}:last"
        self.max_events = max_events
        self._pending: deque[Event] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False  # the reader's last try reached Redis (health, pages)
        self.last_id = 0  # the newest event read

    # --- EventBus ------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        self._pending.append(event)
        self._drained.clear()
        self._wake.set()

    async def since(self, last_id: int) -> list[Event] | None:
        """The events after ``last_id``; None if the stream no longer has them all."""
        client = self._require()
        try:
            oldest = await client.xrange(self.key, count=1)
            if not oldest:
                return [] if last_id == 0 else None
            first = _decode(*oldest[0]).id
            newest = int(await client.get(self.counter) or 0)
            if last_id + 1 < first or last_id > newest:
                return None
            entries = await client.xrange(self.key, min=f"{last_id + 1}-0")
        except RedisError:
            return None
        return [_decode(entry_id, fields) for entry_id, fields in entries]

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self.url)
        self._reader = aioredis.Redis.from_url(self.url)
        self._script = self._client.register_script(_XADD)
        try:
            newest = await self._client.get(self.counter)
            self.last_id = int(newest or 0)
            self.connected = True
        except RedisError as error:
            log.warning("live events: Redis is not reachable yet (%s); retrying", error)
        self._tasks = [
            asyncio.create_task(self._send(), name="bus-send"),
            asyncio.create_task(self._read(), name="bus-read"),
        ]

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):  # what was published before the end goes out
                await self.flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for client in (self._client, self._reader):
            if client is not None:
                await client.aclose()
        self._client = self._reader = None

    async def flush(self) -> None:
        """Wait until what was published has been written to Redis."""
        if self._pending:
            await self._drained.wait()

    # --- the two tasks ---------------------------------------------------------------

    def _require(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("the bus is not started")
        return self._client

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending)[:500]
                try:
                    await self._script(
                        keys=[self.key, self.counter],
                        args=[self.max_events, *(_encode(e) for e in batch)],
                    )
                except RedisError as error:
                    log.warning("live events: cannot write to Redis (%s); retrying", error)
                    await asyncio.sleep(1.0)
                    continue
                for _ in batch:
                    self._pending.popleft()
            self._drained.set()

    async def _read(self) -> None:
        reader = self._reader
        assert reader is not None
        while True:
            try:
                if not self.connected:  # back after a loss: did Redis keep its data?
                    newest = int(await reader.get(self.counter) or 0)
                    if newest < self.last_id:
                        self._reset(newest)
                answer = await reader.xread({self.key: f"{self.last_id}-1"}, count=1000, block=1000)
                self.connected = True
            except (RedisError, OSError) as error:
                if self.connected:
                    log.warning("live events: lost Redis (%s); retrying", error)
                self.connected = False
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    try:
                        event = _decode(entry_id, fields)
                    except (ValueError, KeyError, TypeError):
                        log.exception("live events: an entry that is no event: %r", entry_id)
                        continue
                    self.last_id = max(self.last_id, event.id)
                    self._offer(event)
            if not answer:
                # Redis may have restarted empty: ids start again from its counter
                with contextlib.suppress(RedisError):
                    newest = int(await reader.get(self.counter) or 0)
                    if newest < self.last_id:
                        self._reset(newest)

    def _reset(self, newest: int) -> None:
        log.warning("live events: Redis lost its events (at %s, was %s)", newest, self.last_id)
        self.last_id = newest
        self._offer(Event(BUS_RESET, {}, datetime.now(UTC), newest))
