"""The ACD: who gets the next waiting conversation, decided and applied in one transaction.

The decisions are made by the pure :func:`callcenter.domain.acd.plan`;
:func:`distribute` reads the picture (:mod:`callcenter.queueing`), asks for the
plan and applies it: offers that ran out, overflows to another queue, new
offers. Any conversation that waits (an open stay in a queue,
:mod:`callcenter.actions.queues`) enters the ACD, whatever its channel or kind.
:class:`AcdDriver` runs :func:`distribute` in the server (a
:class:`~callcenter.background.Loop`); tests call it directly after moving the
clock.

What agents do lives in :mod:`callcenter.actions.agents` (presence, skills) and
:mod:`callcenter.actions.desk` (offers, transfer, end); what a conversation
becomes in :mod:`callcenter.actions.conversation_tickets`. Their functions are
also importable from here, where callers found them before.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.actions.agents import (  # noqa: F401  (callers import them from here too)
    agent_row,
    configure_agent,
    set_agent,
    set_presence,
)
from callcenter.actions.conversation_tickets import (  # noqa: F401
    answer_directly,
    leave_message,
    ticket_from_conversation,
)
from callcenter.actions.conversations import load_conversation, move_conversation
from callcenter.actions.desk import (  # noqa: F401
    accept_offer,
    decline_offer,
    end_conversation,
    pick_conversation,
    take_over_conversation,
    transfer_conversation,
)
from callcenter.actions.queues import citizen_left, end_entry, open_entry  # noqa: F401
from callcenter.background import Loop
from callcenter.bus import events
from callcenter.domain.acd import Plan, Presence, plan
from callcenter.domain.conversation import ConversationStep
from callcenter.domain.workflow import SYSTEM
from callcenter.lease import Lease, Solo
from callcenter.queueing import (
    agent_views,
    last_agents,
    queue_rules,
    waiting_entries,
)
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import offers, queue_entries

_ANY_WAITING = (
    select(queue_entries.c.id)
    .where(queue_entries.c.ended_at.is_(None), queue_entries.c.agent_id.is_(None))
    .limit(1)
)


async def _nothing_waits(rt: Runtime) -> bool:
    """A read first, so that an idle ACD never takes the write lock."""
    async with rt.db.read() as conn:
        return (await conn.execute(_ANY_WAITING)).first() is None


async def distribute(rt: Runtime) -> Plan:
    """Expire offers, overflow and make offers, at the clock's now, in one transaction."""
    if await _nothing_waits(rt):
        return Plan()
    async with rt.transaction() as tx:
        now = tx.state["now"]
        waiting = await waiting_entries(tx)
        if not waiting:
            agents = [a for a in await agent_views(tx, rt, now) if a.presence is Presence.WRAP_UP]
            return plan(now, {}, [], agents)
        agents = await agent_views(tx, rt, now)
        decided = plan(now, queue_rules(rt), waiting, agents, last_agent=await last_agents(tx))
        await _apply(tx, rt, decided)
        return decided


async def _apply(tx: Tx, rt: Runtime, decided: Plan) -> None:
    now = tx.state["now"]
    for expired in decided.expired:
        await tx.execute(
            update(offers)
            .where(offers.c.id == expired.offer_id, offers.c.state == "pending")
            .values(state="timed_out", answered_at=now)
        )
        row = (await tx.execute(select(offers).where(offers.c.id == expired.offer_id))).one()
        await audit.record(
            tx,
            actor=SYSTEM,
            entity_type="offer",
            entity_id=row.id,
            action="offer.timeout",
            after={"agent_id": row.agent_id, "conversation_id": row.conversation_id},
        )
        tx.publish(events.offer_changed(row._asdict(), now))
        if rt.settings.acd.away_on_missed_offer:
            agent = await agent_row(tx, expired.agent_id)
            if agent is not None and agent.presence == Presence.AVAILABLE.value:
                await set_agent(
                    tx,
                    rt,
                    expired.agent_id,
                    actor=SYSTEM,
                    presence=Presence.AWAY.value,
                    presence_since=now,
                )
    for moved in decided.overflows:
        conversation = await load_conversation(tx, moved.conversation_id)
        await end_entry(tx, moved.entry_id, "overflowed")
        await open_entry(tx, rt, conversation, moved.to_queue)
        await move_conversation(
            tx, conversation, ConversationStep.OVERFLOW, actor=SYSTEM, queue=moved.to_queue
        )
    for offer in decided.offers:
        values = {
            "entry_id": offer.entry_id,
            "conversation_id": offer.conversation_id,
            "agent_id": offer.agent_id,
            "queue": offer.queue,
            "state": "pending",
            "created_at": now,
            "expires_at": offer.expires_at,
        }
        offer_id = (await tx.execute(offers.insert().values(**values))).inserted_primary_key[0]
        await audit.record(
            tx,
            actor=SYSTEM,
            entity_type="offer",
            entity_id=offer_id,
            action="offer.create",
            after=values,
        )
        tx.publish(events.offer_changed({"id": offer_id, **values}, now))


# --- the driver ------------------------------------------------------------------------

WAKE_ON = {events.CONVERSATION_CHANGED, events.AGENT_CHANGED, events.OFFER_CHANGED}


class AcdDriver(Loop):
    """Runs :func:`distribute` when the bus says something changed, and on its deadlines
    (an offer running out, an overflow due, a wrap-up ending).

    Background work like the jobs (:class:`~callcenter.background.Loop`): each run
    waits for a gap in the webhooks, so that runs that read every waiting contact do
    not hold them up. (A pause of 100 ms between runs while webhooks came, meant to
    let one run answer a moment's wake-ups, was measured by ``bench/intake.py`` and
    removed: without it the webhooks were answered as fast or faster, see
    ``docs/intake.md``.)
    """

    name = "acd"

    LEASE_SECONDS = 10.0  # a node that dies hands the ACD over this long after

    def __init__(self, rt: Runtime, *, lease: Lease | None = None) -> None:
        super().__init__(
            poll=5.0,
            foreground=rt.foreground,
            error_delay=rt.settings.acd.tick_seconds,
        )
        self.rt = rt
        # with several nodes, one at a time decides (callcenter.lease)
        self.lease: Lease = lease or Solo()
        self.decided = 0  # rounds that distributed, for tests and the status page
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        subscription = self.rt.bus.subscribe(maxsize=10000)
        self._listener = asyncio.create_task(self._listen(subscription), name="acd-listen")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.lease.release()

    async def run_once(self) -> float | None:
        if not await self.lease.hold():
            return self.LEASE_SECONDS / 3  # another node decides; look again for its lease
        decided = await distribute(self.rt)
        self.decided += 1
        if decided.next_check is None:
            return None
        return max((decided.next_check - self.rt.clock.now()).total_seconds(), 0.05)

    async def _listen(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                if event.type in WAKE_ON and self._may_change_a_plan(event.type, event.data):
                    self.wake()
        finally:
            subscription.close()

    @staticmethod
    def _may_change_a_plan(kind: str, data: dict[str, Any]) -> bool:
        # our own offers and overflows wake us too; an offer made or taken frees nothing
        if kind == events.OFFER_CHANGED and data.get("state") in ("pending", "accepted"):
            return False
        # with the bot, or answered without meeting a queue or an agent
        return not (
            kind == events.CONVERSATION_CHANGED
            and (
                data.get("state") == "assigned"
                or (data.get("queue") is None and data.get("agent_id") is None)
            )
        )
