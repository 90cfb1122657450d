"""Where a waiting contact stands in its queue, and how long it may wait (read-only).

Used by the IVR for its announcements ("you are number 3; about 6 minutes").
The order of a queue is the order of ``queued_at``: a callback request keeps
the place of the call it came from because it carries that call's
``queued_at``. Offering contacts to agents (the ACD) is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from callcenter.runtime import Runtime
from callcenter.store.tables import conversations


@dataclass(frozen=True)
class QueueSpot:
    queue: str
    position: int  # 1 = next
    expected_wait_s: float

    @property
    def expected_wait_minutes(self) -> int:
        """Whole minutes, at least one: what a caller is told."""
        return max(1, round(self.expected_wait_s / 60))


def expected_wait(rt: Runtime, position: int) -> float:
    """Seconds until an agent is free for the contact at ``position``.

    Each contact ahead takes the configured average handling time, shared
    among the agents serving the queue.
    """
    voice = rt.settings.voice
    return position * voice.average_handling_seconds / voice.serving_agents


async def queue_spot(rt: Runtime, conversation_id: int) -> QueueSpot | None:
    """The queue, position and expected wait of a queued conversation (None if not queued)."""
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    conversations.c.queue, conversations.c.queued_at, conversations.c.state
                ).where(conversations.c.id == conversation_id)
            )
        ).first()
        if row is None or row.state != "queued" or row.queue is None or row.queued_at is None:
            return None
        ahead = await conn.scalar(
            select(func.count())
            .select_from(conversations)
            .where(
                conversations.c.state == "queued",
                conversations.c.queue == row.queue,
                (conversations.c.queued_at < row.queued_at)
                | (
                    (conversations.c.queued_at == row.queued_at)
                    & (conversations.c.id < conversation_id)
                ),
            )
        )
    position = int(ahead or 0) + 1
    return QueueSpot(row.queue, position, expected_wait(rt, position))
