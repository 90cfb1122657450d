"""Leases: work that one node at a time must do, among several (``redis_url`` set).

The ACD decides who gets which contact; two nodes deciding at once would offer one
contact to two agents. With several nodes it runs where it holds the lease
``<redis_prefix>:lease:acd``: a Redis key set with ``NX`` and a time to live, renewed
by its holder at each round. A node that dies stops renewing it, and another takes it
over when the key runs out. Offers, queues and presence are rows in the database, so
an agent's answer counts whichever node the agent's socket is on.

Without Redis there is one process and :class:`Solo` always holds the lease. While
Redis does not answer nobody holds it: the ACD waits rather than risk two offers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Protocol

log = logging.getLogger(__name__)

_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_GIVE_UP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease(Protocol):
    async def hold(self) -> bool:
        """Take or renew the lease; whether this process holds it now."""
        ...

    async def release(self) -> None: ...


class Solo:
    """One process: the lease is always ours."""

    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    """A lease in Redis, ``ttl`` seconds long, renewed by :meth:`hold`."""

    def __init__(self, url: str, key: str, ttl: float) -> None:
        import redis.asyncio as aioredis

        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._take = self._client.register_script(_TAKE)
        self._give_up = self._client.register_script(_GIVE_UP)
        self.held = False

    async def hold(self) -> bool:
        from redis.exceptions import RedisError

        try:
            held = bool(await self._take(keys=[self.key], args=[self.me, self.ttl_ms]))
        except RedisError as error:
            log.warning("lease %s: Redis does not answer (%s); not holding it", self.key, error)
            held = False
        if held != self.held:
            log.info("lease %s: %s", self.key, "taken" if held else "held elsewhere")
        self.held = held
        return held

    async def release(self) -> None:
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError):  # else it runs out by itself
            await self._give_up(keys=[self.key], args=[self.me])
        self.held = False
        await self._client.aclose()


def lease_for(redis_url: str | None, prefix: str, name: str, ttl: float) -> Lease:
    if not redis_url:
        return Solo()
    return RedisLease(redis_url, f"{prefix}:lease:{name}", ttl)
