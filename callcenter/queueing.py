"""The queues as they stand (read-only): who waits, where each waits, for how long,
and the agents the ACD can offer to.

Who waits is one record: the open stays in ``queue_entries`` that no agent holds
(:mod:`callcenter.actions.queues` opens and ends them in the transaction that
moves the conversation). Every reader takes its place and expected wait from
here: the IVR's announcement ("you are number 3; about 6 minutes"), the web chat
widget, Telegram's ``/status``, ``GET /api/acd/queue`` and the wallboard. The
order of a queue is the order of ``queued_at`` (a callback task carries the
``queued_at`` of the call it came from, so it keeps the call's place), then of
the stay's id. Offering contacts to agents (the ACD) is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select

from callcenter.domain.acd import AgentView, Presence, QueueRule, Strategy, Waiting, positions
from callcenter.runtime import Runtime
from callcenter.store.db import Reader
from callcenter.store.tables import (
    agent_states,
    citizens,
    conversations,
    offers,
    queue_entries,
    users,
)


@dataclass(frozen=True)
class QueueSpot:
    """Where one waiting conversation stands."""

    conversation_id: int
    queue: str
    position: int  # 1 = next
    waiting: int  # how many wait in that queue, this one included
    queued_at: datetime
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


def spots(rt: Runtime, waiting: list[Waiting]) -> dict[int, QueueSpot]:
    """Every waiting conversation's spot, by conversation id (one sort for all)."""
    places = positions(waiting)
    result: dict[int, QueueSpot] = {}
    for item in waiting:
        position, count = places[item.entry_id]
        result[item.conversation_id] = QueueSpot(
            item.conversation_id,
            item.queue,
            position,
            count,
            item.queued_at,
            expected_wait(rt, position),
        )
    return result


async def queue_spots(conn: Reader, rt: Runtime) -> dict[int, QueueSpot]:
    """Every waiting conversation's spot, by conversation id."""
    return spots(rt, await waiting_entries(conn))


_MINE = select(queue_entries).where(
    queue_entries.c.conversation_id == bindparam("conversation_id"),
    queue_entries.c.ended_at.is_(None),
    queue_entries.c.agent_id.is_(None),
)
_IN_QUEUE = (
    select(func.count())
    .select_from(queue_entries)
    .where(
        queue_entries.c.ended_at.is_(None),
        queue_entries.c.agent_id.is_(None),
        queue_entries.c.queue == bindparam("queue"),
    )
)
_AHEAD = _IN_QUEUE.where(
    (queue_entries.c.queued_at < bindparam("queued_at"))
    | (
        (queue_entries.c.queued_at == bindparam("queued_at"))
        & (queue_entries.c.id < bindparam("entry_id"))
    )
)


async def spot_of(conn: Reader, rt: Runtime, conversation_id: int) -> QueueSpot | None:
    """One conversation's spot (None when it does not wait), with two counts."""
    mine = (await conn.execute(_MINE, {"conversation_id": conversation_id})).first()
    if mine is None:
        return None
    params = {"queue": mine.queue, "queued_at": mine.queued_at, "entry_id": mine.id}
    position = int((await conn.execute(_AHEAD, params)).scalar_one()) + 1
    count = int((await conn.execute(_IN_QUEUE, {"queue": mine.queue})).scalar_one())
    return QueueSpot(
        conversation_id, mine.queue, position, count, mine.queued_at, expected_wait(rt, position)
    )


async def queue_spot(rt: Runtime, conversation_id: int) -> QueueSpot | None:
    """The queue, position and expected wait of a waiting conversation (None if it does not)."""
    async with rt.db.read() as conn:
        return await spot_of(conn, rt, conversation_id)


# --- what the ACD reads --------------------------------------------------------------------


def local_midnight(rt: Runtime, now: datetime) -> datetime:
    local = rt.local(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def agent_views(conn: Reader, rt: Runtime, now: datetime) -> list[AgentView]:
    """Every agent with a presence row, with what they hold, are offered and took today."""
    rows = (
        await conn.execute(
            select(agent_states)
            .join(users, users.c.id == agent_states.c.user_id)
            .where(users.c.active.is_(True))
        )
    ).all()
    active = dict(
        (
            await conn.execute(
                select(queue_entries.c.agent_id, func.count())
                .where(queue_entries.c.ended_at.is_(None), queue_entries.c.agent_id.is_not(None))
                .group_by(queue_entries.c.agent_id)
            )
        ).all()
    )
    pending = dict(
        (
            await conn.execute(
                select(offers.c.agent_id, func.count())
                .where(offers.c.state == "pending")
                .group_by(offers.c.agent_id)
            )
        ).all()
    )
    on_call = set(
        (
            await conn.execute(
                select(queue_entries.c.agent_id)
                .join(conversations, conversations.c.id == queue_entries.c.conversation_id)
                .where(
                    queue_entries.c.ended_at.is_(None),
                    queue_entries.c.agent_id.is_not(None),
                    conversations.c.kind == "call",
                )
            )
        ).scalars()
    ) | set(
        (
            await conn.execute(
                select(offers.c.agent_id)
                .join(conversations, conversations.c.id == offers.c.conversation_id)
                .where(offers.c.state == "pending", conversations.c.kind == "call")
            )
        ).scalars()
    )
    load: dict[int, dict[str, int]] = {}
    if any(r.channel_capacity for r in rows):  # only then is the count per channel needed
        held = await conn.execute(
            select(queue_entries.c.agent_id, queue_entries.c.channel, func.count())
            .where(queue_entries.c.ended_at.is_(None), queue_entries.c.agent_id.is_not(None))
            .group_by(queue_entries.c.agent_id, queue_entries.c.channel)
        )
        offered = await conn.execute(
            select(offers.c.agent_id, queue_entries.c.channel, func.count())
            .join(queue_entries, queue_entries.c.id == offers.c.entry_id)
            .where(offers.c.state == "pending")
            .group_by(offers.c.agent_id, queue_entries.c.channel)
        )
        for agent_id, channel, n in [*held.all(), *offered.all()]:
            per = load.setdefault(agent_id, {})
            per[channel] = per.get(channel, 0) + int(n)
    today = dict(
        (
            await conn.execute(
                select(queue_entries.c.agent_id, func.count())
                .where(queue_entries.c.assigned_at >= local_midnight(rt, now))
                .group_by(queue_entries.c.agent_id)
            )
        ).all()
    )
    return [
        AgentView(
            agent_id=r.user_id,
            presence=Presence(r.presence),
            presence_since=r.presence_since,
            capacity=r.capacity,
            active=int(active.get(r.user_id, 0)),
            pending=int(pending.get(r.user_id, 0)),
            contacts_today=int(today.get(r.user_id, 0)),
            last_contact_at=r.last_contact_at,
            wrap_up_until=r.wrap_up_until,
            languages=frozenset(r.languages or ()),
            categories=frozenset(r.categories or ()),
            queues=frozenset(r.queues or ()),
            voice=bool(r.voice),
            on_call=r.user_id in on_call,
            channel_capacity=tuple(sorted((r.channel_capacity or {}).items())),
            channel_load=tuple(sorted(load.get(r.user_id, {}).items())),
        )
        for r in rows
    ]


async def waiting_entries(conn: Reader) -> list[Waiting]:
    """Open stays in a queue without an agent, with their pending offer and who declined."""
    rows = (
        await conn.execute(
            select(queue_entries, (conversations.c.kind == "call").label("voice"))
            .join(conversations, conversations.c.id == queue_entries.c.conversation_id)
            .where(queue_entries.c.ended_at.is_(None), queue_entries.c.agent_id.is_(None))
            .order_by(queue_entries.c.queued_at, queue_entries.c.id)
        )
    ).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    offer_rows = (
        await conn.execute(
            select(
                offers.c.id,
                offers.c.entry_id,
                offers.c.agent_id,
                offers.c.state,
                offers.c.expires_at,
                offers.c.answered_at,
            ).where(offers.c.entry_id.in_(ids))
        )
    ).all()
    pending: dict[int, Any] = {}
    tried: dict[int, set[int]] = {}
    tried_at: dict[int, dict[int, Any]] = {}
    for o in offer_rows:
        if o.state == "pending":
            pending[o.entry_id] = o
        elif o.state in ("declined", "timed_out"):
            tried.setdefault(o.entry_id, set()).add(o.agent_id)
            at = o.answered_at or o.expires_at
            known = tried_at.setdefault(o.entry_id, {})
            if at is not None and (o.agent_id not in known or known[o.agent_id] < at):
                known[o.agent_id] = at
    result = []
    for r in rows:
        offer = pending.get(r.id)
        result.append(
            Waiting(
                entry_id=r.id,
                conversation_id=r.conversation_id,
                queue=r.queue,
                entered_at=r.entered_at,
                queued_at=r.queued_at,
                language=r.language,
                category=r.category,
                voice=bool(r.voice),
                channel=r.channel,
                offer_id=offer.id if offer else None,
                offered_to=offer.agent_id if offer else None,
                offer_expires_at=offer.expires_at if offer else None,
                tried=frozenset(tried.get(r.id, ())),
                tried_at=tried_at.get(r.id, {}),
            )
        )
    return result


async def last_agents(conn: Reader) -> dict[str, int]:
    """The agent each queue offered to last (for round robin)."""
    latest = select(func.max(offers.c.id)).group_by(offers.c.queue).scalar_subquery()
    rows = (
        await conn.execute(select(offers.c.queue, offers.c.agent_id).where(offers.c.id.in_(latest)))
    ).all()
    return {r.queue: r.agent_id for r in rows}


def queue_rules(rt: Runtime) -> dict[str, QueueRule]:
    """Each configured queue's strategy, overflow, offer timeout and wrap-up time."""
    return {
        name: QueueRule(
            name,
            Strategy(q.strategy),
            q.overflow_to,
            timedelta(seconds=q.overflow_after_s),
            timedelta(seconds=q.offer_timeout_s),
            timedelta(seconds=q.wrap_up_s),
        )
        for name, q in rt.settings.acd.queues.items()
    }


def rule_of(rt: Runtime, queue: str | None) -> QueueRule:
    """A queue's rule (the defaults for a queue that is not configured)."""
    return queue_rules(rt).get(queue or "") or QueueRule(queue or "")


# --- what the desk shows ---------------------------------------------------------------


async def staff_names(conn: Reader) -> dict[int, Any]:
    """Every user's display name and role, by id (for the agents' list)."""
    rows = await conn.execute(select(users.c.id, users.c.display_name, users.c.role))
    return {r.id: r for r in rows}


async def pending_offers(conn: Reader, agent_id: int | None) -> list[Any]:
    """The offers an agent has not answered yet, oldest first, with the conversation's
    channel, kind and address (the citizen's number: the desk shows it masked)."""
    return list(
        (
            await conn.execute(
                select(
                    offers, conversations.c.channel, conversations.c.kind, conversations.c.address
                )
                .join(conversations, conversations.c.id == offers.c.conversation_id)
                .where(offers.c.agent_id == agent_id, offers.c.state == "pending")
                .order_by(offers.c.id)
            )
        ).all()
    )


async def held_conversations(conn: Reader, agent_id: int | None) -> list[Any]:
    """The conversations an agent holds (an open stay with them), with the citizen's name."""
    open_stays = select(queue_entries.c.conversation_id).where(
        queue_entries.c.agent_id == agent_id, queue_entries.c.ended_at.is_(None)
    )
    return list(
        (
            await conn.execute(
                select(conversations, citizens.c.name.label("citizen_name"))
                .join(citizens, citizens.c.id == conversations.c.citizen_id)
                .where(conversations.c.agent_id == agent_id, conversations.c.id.in_(open_stays))
                .order_by(conversations.c.id)
            )
        ).all()
    )


async def waiting_contacts(conn: Reader, waiting: list[Waiting]) -> dict[int, Any]:
    """The channel, the address and the citizen's name of each waiting conversation, by
    its id."""
    if not waiting:
        return {}
    rows = await conn.execute(
        select(
            conversations.c.id, conversations.c.channel, conversations.c.address, citizens.c.name
        )
        .join(citizens, citizens.c.id == conversations.c.citizen_id)
        .where(conversations.c.id.in_([w.conversation_id for w in waiting]))
    )
    return {r.id: r for r in rows}
