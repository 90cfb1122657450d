"""Send pacing shared by every process that sends (``redis_url`` set; ``docs/scaling.md``).

A sender number may send only so many segments a second (``rate_segments_per_second``,
:class:`callcenter.domain.pacing.SendPacer`). With several workers each pacing alone,
the number would send that rate times the workers. So with Redis the sender's next free
moment is one key, ``<redis_prefix>:pace:<channel>:<sender>``, read and moved in one
script: the same rule as :class:`~callcenter.domain.pacing.SendPacer`, for everyone at
once. Times come from the runtime's clock. While Redis does not answer, each process
paces alone (the provider's own 429 still holds everyone back through :meth:`hold`
once Redis is back).
"""

from __future__ import annotations

import logging
from datetime import datetime

log = logging.getLogger(__name__)

# KEYS: the sender's key; ARGV: now (ms), cost (ms); returns the ms to wait (0: taken)
_RESERVE = """
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if ready > now then return ready - now end
local cost = tonumber(ARGV[2])
redis.call('SET', KEYS[1], now + cost, 'PX', cost + 60000)
return 0
"""
# KEYS: the sender's key; ARGV: now (ms), hold (ms)
_HOLD = """
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
local til = tonumber(ARGV[1]) + tonumber(ARGV[2])
if ready < til then redis.call('SET', KEYS[1], til, 'PX', tonumber(ARGV[2]) + 60000) end
return 0
"""


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class SharedPacer:
    """The sender budgets of one channel, in Redis."""

    def __init__(self, url: str, prefix: str, rate: float) -> None:
        import redis.asyncio as aioredis

        if rate <= 0:
            raise ValueError("the send rate must be positive")
        self.prefix = prefix
        self.rate = rate
        self._client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._reserve = self._client.register_script(_RESERVE)
        self._hold = self._client.register_script(_HOLD)

    async def reserve(self, sender: str, units: float, now: datetime) -> float | None:
        """Seconds to wait (0: taken now); None when Redis does not answer."""
        from redis.exceptions import RedisError

        cost = max(int(units / self.rate * 1000), 1)
        try:
            wait = await self._reserve(keys=[f"{self.prefix}:{sender}"], args=[_ms(now), cost])
        except RedisError as error:
            log.warning("send pacing: Redis does not answer (%s); pacing alone", error)
            return None
        return int(wait) / 1000

    async def hold(self, sender: str, seconds: float, now: datetime) -> None:
        from redis.exceptions import RedisError

        try:
            await self._hold(
                keys=[f"{self.prefix}:{sender}"], args=[_ms(now), max(int(seconds * 1000), 1)]
            )
        except RedisError as error:
            log.warning("send pacing: Redis does not answer (%s)", error)

    async def close(self) -> None:
        await self._client.aclose()
