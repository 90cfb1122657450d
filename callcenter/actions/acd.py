"""The ACD's write paths: presence, offers, assignment, transfer, wrap-up, and what a
conversation becomes when it leaves an agent's hands.

The decisions are made by the pure :func:`callcenter.domain.acd.plan`;
:func:`distribute` loads the picture, asks for the plan and applies it in one
transaction. Any conversation in state ``queued`` enters the ACD, whatever
its channel or kind (message, call, callback): intake, the voice front and
transfers only have to set that state and a queue name.

:class:`AcdDriver` runs :func:`distribute` in the server process whenever
something relevant happens on the bus (a conversation queued, an agent
available, an offer answered) and when the next offer runs out, the next
overflow is due or a wrap-up ends. Tests call :func:`distribute` directly
after moving the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.actions.conversations import load_conversation, move_conversation
from callcenter.actions.intake import ticket_receipt
from callcenter.actions.messages import clean_body, queue_outbound
from callcenter.actions.queues import (
    end_entry,
    enqueue,
    leave_queue,
    open_entry,
    open_entry_of,
)
from callcenter.actions.tickets import TicketDraft, apply_step, check_draft, open_ticket
from callcenter.bus import events
from callcenter.domain.acd import (
    SETTABLE_PRESENCE,
    Plan,
    Presence,
    QueueRule,
    Strategy,
    plan,
)
from callcenter.domain.conversation import ConversationStep, check_step
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from callcenter.domain.workflow import SYSTEM, Actor, Role, Step
from callcenter.queueing import agent_views, last_agents, waiting_entries
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import (
    agent_states,
    messages,
    offers,
    queue_entries,
    users,
)

log = logging.getLogger(__name__)

SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
MAX_SKILLS = 50


def queue_rules(rt: Runtime) -> dict[str, QueueRule]:
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
    return queue_rules(rt).get(queue or "") or QueueRule(queue or "")


# --- agents ---------------------------------------------------------------------------------


async def _agent_row(tx: Tx, agent_id: int) -> Any:
    return (
        await tx.execute(select(agent_states).where(agent_states.c.user_id == agent_id))
    ).first()


async def _set_agent(tx: Tx, rt: Runtime, agent_id: int, *, actor: Actor, **values: Any) -> Any:
    """Change an agent's ACD row, creating it (away, default capacity) if missing."""
    now = tx.state["now"]
    row = await _agent_row(tx, agent_id)
    if row is None:
        base = {
            "user_id": agent_id,
            "presence": Presence.AWAY.value,
            "presence_since": now,
            "wrap_up_until": None,
            "capacity": rt.settings.acd.default_capacity,
            "languages": [],
            "categories": [],
            "queues": [],
            "last_contact_at": None,
        }
        await tx.execute(agent_states.insert().values(**{**base, **values}))
        before: dict[str, Any] = {}
    else:
        if values:
            await tx.execute(
                update(agent_states).where(agent_states.c.user_id == agent_id).values(**values)
            )
        before = {k: getattr(row, k) for k in values}
    if set(values) - {"last_contact_at"}:
        await audit.record(
            tx,
            actor=actor,
            entity_type="agent",
            entity_id=agent_id,
            action="agent.update",
            before=before or None,
            after=values,
        )
    updated = await _agent_row(tx, agent_id)
    tx.publish(events.agent_changed(updated._asdict(), now))
    return updated


async def _agent_user(tx: Tx, agent_id: int) -> Any:
    row = (await tx.execute(select(users).where(users.c.id == agent_id))).first()
    if row is None or not row.active or row.role not in (Role.AGENT.value, Role.SUPERVISOR.value):
        raise InvalidInput("unknown_agent", agent=agent_id)
    return row


# --- distribution ------------------------------------------------------------------------


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
            agent = await _agent_row(tx, expired.agent_id)
            if agent is not None and agent.presence == Presence.AVAILABLE.value:
                await _set_agent(
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


# --- what agents do ------------------------------------------------------------------


def _require_desk(actor: Actor) -> None:
    if actor.role not in (Role.AGENT, Role.SUPERVISOR) or actor.id is None:
        raise Forbidden("role_not_allowed", role=actor.role.value)


async def set_presence(rt: Runtime, presence: str, *, actor: Actor) -> dict[str, Any]:
    """An agent says whether they take new conversations (available, busy, away)."""
    _require_desk(actor)
    if presence not in {p.value for p in SETTABLE_PRESENCE}:
        raise InvalidInput("invalid_choice", field="presence", choices="available, busy, away")
    assert actor.id is not None
    async with rt.transaction() as tx:
        row = await _set_agent(
            tx,
            rt,
            actor.id,
            actor=actor,
            presence=presence,
            presence_since=tx.state["now"],
            wrap_up_until=None,
        )
        return dict(row._asdict())


def _skill_list(values: Sequence[str] | None, field: str, allowed: set[str] | None) -> list[str]:
    if values is None:
        return []
    cleaned = sorted({str(v).strip() for v in values if str(v).strip()})
    if len(cleaned) > MAX_SKILLS:
        raise InvalidInput("invalid_field", field=field)
    if allowed is not None:
        unknown = [v for v in cleaned if v not in allowed]
        if unknown:
            raise InvalidInput("invalid_choice", field=field, choices=", ".join(sorted(allowed)))
    return cleaned


async def configure_agent(
    rt: Runtime,
    agent_id: int,
    *,
    actor: Actor,
    capacity: int | None = None,
    languages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    queues: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A supervisor sets an agent's capacity and skills."""
    if actor.role not in SUPERVISORS:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    values: dict[str, Any] = {}
    if capacity is not None:
        if not 1 <= int(capacity) <= 50:
            raise InvalidInput("invalid_field", field="capacity")
        values["capacity"] = int(capacity)
    if languages is not None:
        values["languages"] = _skill_list(languages, "languages", {"zh-CN", "en"})
    if categories is not None:
        values["categories"] = _skill_list(
            categories, "categories", set(rt.directory.category_by_code)
        )
    if queues is not None:
        values["queues"] = _skill_list(queues, "queues", set(rt.settings.acd.queues))
    async with rt.transaction() as tx:
        await _agent_user(tx, agent_id)
        row = await _set_agent(tx, rt, agent_id, actor=actor, **values)
        return dict(row._asdict())


async def _pending_offer(tx: Tx, offer_id: int, actor: Actor) -> Any:
    row = (await tx.execute(select(offers).where(offers.c.id == offer_id))).first()
    if row is None or row.agent_id != actor.id:
        raise NotFound("offer_not_found", id=offer_id)
    if row.state != "pending" or row.expires_at <= tx.state["now"]:
        raise Conflict("offer_not_pending", id=offer_id, state=row.state)
    return row


async def accept_offer(rt: Runtime, offer_id: int, *, actor: Actor) -> dict[str, Any]:
    """The agent takes the conversation: it is assigned to them."""
    _require_desk(actor)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        offer = await _pending_offer(tx, offer_id, actor)
        await tx.execute(
            update(offers).where(offers.c.id == offer_id).values(state="accepted", answered_at=now)
        )
        await tx.execute(
            update(queue_entries)
            .where(queue_entries.c.id == offer.entry_id)
            .values(agent_id=actor.id, assigned_at=now)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="offer",
            entity_id=offer_id,
            action="offer.accept",
            after={"conversation_id": offer.conversation_id},
        )
        tx.publish(events.offer_changed({**offer._asdict(), "state": "accepted"}, now))
        conversation = await load_conversation(tx, offer.conversation_id)
        conversation = await move_conversation(
            tx, conversation, ConversationStep.ASSIGN, actor=actor, agent_id=actor.id
        )
        assert actor.id is not None
        await _set_agent(tx, rt, actor.id, actor=actor, last_contact_at=now)
        return dict(conversation._asdict())


async def decline_offer(rt: Runtime, offer_id: int, *, actor: Actor) -> None:
    """The agent passes: the conversation goes to the next agent."""
    _require_desk(actor)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        offer = await _pending_offer(tx, offer_id, actor)
        await tx.execute(
            update(offers).where(offers.c.id == offer_id).values(state="declined", answered_at=now)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="offer",
            entity_id=offer_id,
            action="offer.decline",
            after={"conversation_id": offer.conversation_id},
        )
        tx.publish(events.offer_changed({**offer._asdict(), "state": "declined"}, now))


async def _held(
    tx: Tx, conversation_id: int, step: ConversationStep, actor: Actor
) -> tuple[Any, Any]:
    """The conversation and its open stay with an agent, if the actor may take ``step``."""
    conversation = await load_conversation(tx, conversation_id)
    check_step(conversation.state, step, actor=actor, agent_id=conversation.agent_id)
    entry = await open_entry_of(tx, conversation_id)
    if entry is None or entry.agent_id is None:
        raise Conflict("conversation_not_assigned", id=conversation_id)
    return conversation, entry


async def _start_wrap_up(tx: Tx, rt: Runtime, agent_id: int, queue: str, *, actor: Actor) -> None:
    now = tx.state["now"]
    row = await _agent_row(tx, agent_id)
    wrap = rule_of(rt, queue).wrap_up
    if row is not None and row.presence == Presence.AVAILABLE.value and wrap.total_seconds() > 0:
        await _set_agent(
            tx,
            rt,
            agent_id,
            actor=actor,
            presence=Presence.WRAP_UP.value,
            presence_since=now,
            wrap_up_until=now + wrap,
            last_contact_at=now,
        )
    elif row is not None:
        await _set_agent(tx, rt, agent_id, actor=actor, last_contact_at=now)


async def end_conversation(
    rt: Runtime, conversation_id: int, *, wrap_up_code: str, actor: Actor
) -> dict[str, Any]:
    """The agent closes the conversation with a wrap-up code; wrap-up time starts."""
    _require_desk(actor)
    if wrap_up_code not in rt.settings.acd.wrap_up_codes:
        raise InvalidInput(
            "invalid_choice", field="wrap_up_code", choices=", ".join(rt.settings.acd.wrap_up_codes)
        )
    async with rt.transaction() as tx:
        conversation, entry = await _held(tx, conversation_id, ConversationStep.END, actor)
        await end_entry(tx, entry.id, "handled", wrap_up_code=wrap_up_code)
        await audit.record(
            tx,
            actor=actor,
            entity_type="conversation",
            entity_id=conversation_id,
            action="conversation.wrap_up",
            after={"wrap_up_code": wrap_up_code, "queue": entry.queue},
        )
        if conversation.state != "closed":  # the citizen may have left already
            conversation = await move_conversation(
                tx, conversation, ConversationStep.END, actor=actor
            )
        await _start_wrap_up(tx, rt, entry.agent_id, entry.queue, actor=actor)
        return dict(conversation._asdict())


async def transfer_conversation(
    rt: Runtime,
    conversation_id: int,
    *,
    actor: Actor,
    to_queue: str | None = None,
    to_agent_id: int | None = None,
) -> dict[str, Any]:
    """Hand the conversation to another queue (it waits there) or straight to an agent."""
    _require_desk(actor)
    if (to_queue is None) == (to_agent_id is None):
        raise InvalidInput("missing_field", field="to_queue")
    if to_queue is not None and to_queue not in rt.settings.acd.queues:
        raise InvalidInput(
            "invalid_choice", field="to_queue", choices=", ".join(rt.settings.acd.queues)
        )
    async with rt.transaction() as tx:
        now = tx.state["now"]
        step = (
            ConversationStep.TRANSFER_TO_QUEUE
            if to_queue is not None
            else ConversationStep.TRANSFER_TO_AGENT
        )
        conversation, entry = await _held(tx, conversation_id, step, actor)
        await end_entry(tx, entry.id, "transferred")
        details: dict[str, Any] = {"from_agent_id": entry.agent_id, "from_queue": entry.queue}
        if to_agent_id is not None:
            target = await _agent_user(tx, to_agent_id)
            state = await _agent_row(tx, target.id)
            if state is None or state.presence == Presence.AWAY.value:
                raise Conflict("agent_not_present", agent=target.display_name)
            await open_entry(
                tx, rt, conversation, entry.queue, agent_id=target.id, queued_at=entry.queued_at
            )
            conversation = await move_conversation(
                tx,
                conversation,
                ConversationStep.TRANSFER_TO_AGENT,
                actor=actor,
                agent_id=target.id,
            )
            await _set_agent(tx, rt, target.id, actor=actor, last_contact_at=now)
            details["to_agent_id"] = target.id
        else:
            assert to_queue is not None
            conversation = await enqueue(
                tx,
                rt,
                conversation,
                actor=actor,
                queue=to_queue,
                queued_at=entry.queued_at,
                step=ConversationStep.TRANSFER_TO_QUEUE,
                agent_id=None,
            )
            details["to_queue"] = to_queue
        await audit.record(
            tx,
            actor=actor,
            entity_type="conversation",
            entity_id=conversation_id,
            action="conversation.transfer",
            details=details,
        )
        await _set_agent(tx, rt, entry.agent_id, actor=actor, last_contact_at=now)
        return dict(conversation._asdict())


async def citizen_left(rt: Runtime, conversation_id: int, *, actor: Actor = SYSTEM) -> None:
    """The citizen closed the chat. Still waiting: abandoned. With an agent: the agent
    keeps it until they wrap it up."""
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        if conversation.state == "closed":
            return
        await leave_queue(tx, conversation_id, "abandoned")
        await move_conversation(tx, conversation, ConversationStep.CITIZEN_LEFT, actor=actor)


async def _citizen_text(tx: Tx, conversation_id: int) -> str:
    rows = (
        await tx.execute(
            select(messages.c.body)
            .where(messages.c.conversation_id == conversation_id, messages.c.direction == "in")
            .order_by(messages.c.id)
        )
    ).all()
    return "\n".join(r.body for r in rows)[:4000]


async def leave_message(
    rt: Runtime, conversation_id: int, text: str | None = None, *, actor: Actor = SYSTEM
) -> dict[str, Any]:
    """No agent came: what the citizen wrote becomes a ticket, and they get its number."""
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        step = ConversationStep.LEAVE_MESSAGE
        check_step(conversation.state, step, actor=actor, agent_id=conversation.agent_id)
        description = clean_body(text) if text else await _citizen_text(tx, conversation_id)
        if not description.strip():
            raise InvalidInput("missing_field", field="text")
        draft = check_draft(
            rt,
            TicketDraft(
                description=description,
                citizen_id=conversation.citizen_id,
                conversation_id=conversation.id,
                origin_channel=conversation.channel,
                locale=conversation.locale,
            ),
        )
        ticket = await open_ticket(tx, rt, draft, actor=actor, dispatch=True, tell_citizen=False)
        await leave_queue(tx, conversation_id, "left_message")
        conversation = await move_conversation(
            tx, conversation, step, actor=actor, ticket_id=ticket["id"]
        )
        await queue_outbound(
            tx,
            rt,
            conversation,
            ticket_receipt(rt, ticket, conversation.locale),
            actor=SYSTEM,
            kind="auto_reply",
        )
        return ticket


async def ticket_from_conversation(
    rt: Runtime, conversation_id: int, draft: TicketDraft, *, actor: Actor, dispatch: bool = True
) -> dict[str, Any]:
    """The agent opens a ticket for the conversation; the citizen is sent its number."""
    _require_desk(actor)
    check_draft(rt, draft)
    async with rt.transaction() as tx:
        conversation, _ = await _held(tx, conversation_id, ConversationStep.TICKET, actor)
        draft.citizen_id = conversation.citizen_id
        draft.conversation_id = conversation.id
        draft.origin_channel = conversation.channel
        draft.locale = draft.locale or conversation.locale
        # the citizen is sent the ticket's number and department (callcenter.actions.notify)
        return await open_ticket(tx, rt, draft, actor=actor, dispatch=dispatch)


async def answer_directly(
    rt: Runtime,
    conversation_id: int,
    *,
    description: str,
    answer: str,
    actor: Actor,
    category: str | None = None,
) -> dict[str, Any]:
    """直接答复: an inquiry answered by the agent, recorded as a ticket closed at the desk,
    and the answer sent to the citizen."""
    _require_desk(actor)
    text = clean_body(answer)
    draft = check_draft(rt, TicketDraft(description=description, category=category, type="inquiry"))
    async with rt.transaction() as tx:
        conversation, _ = await _held(tx, conversation_id, ConversationStep.TICKET, actor)
        draft.citizen_id = conversation.citizen_id
        draft.conversation_id = conversation.id
        draft.origin_channel = conversation.channel
        draft.locale = conversation.locale
        ticket = await open_ticket(tx, rt, draft, actor=actor, tell_citizen=False)
        # the answer goes into the conversation itself, not as a closing notice
        ticket = await apply_step(
            tx, rt, ticket["id"], Step.DIRECT_ANSWER, actor=actor, text=text, in_conversation=True
        )
        await queue_outbound(tx, rt, conversation, text, actor=actor, kind="text")
        return ticket


# --- the driver ------------------------------------------------------------------------

_GATHER_S = 0.1
WAKE_ON = {events.CONVERSATION_CHANGED, events.AGENT_CHANGED, events.OFFER_CHANGED}


class AcdDriver:
    """Runs :func:`distribute` when the bus says something changed, and on its deadlines.

    Background work like the jobs: each run waits for a gap in the webhooks, and
    while they keep coming, runs at most every 100 ms (:mod:`callcenter.foreground`).
    An offer reaches an agent a tenth of a second later in a burst; the webhooks
    are not held up by runs that read every waiting contact.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.runs = 0

    async def start(self) -> None:
        self._stopping = False
        subscription = self.rt.bus.subscribe(maxsize=10000)
        self._tasks = [
            asyncio.create_task(self._listen(subscription), name="acd-listen"),
            asyncio.create_task(self._loop(), name="acd-loop"),
        ]
        self._wake.set()

    async def stop(self) -> None:
        # the flag as well: Python 3.11's wait_for drops a cancellation that comes as
        # the event it waits for is set
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                if event.type in WAKE_ON:
                    data = event.data
                    # our own offers and overflows wake us too; only what may change a plan
                    # an offer made or taken frees nothing: no new decision can follow
                    if event.type == events.OFFER_CHANGED and data.get("state") in (
                        "pending",
                        "accepted",
                    ):
                        continue
                    if event.type == events.CONVERSATION_CHANGED and (
                        data.get("state") == "assigned"
                        # with the bot, or answered without meeting a queue or an agent
                        or (data.get("queue") is None and data.get("agent_id") is None)
                    ):
                        continue
                    self._wake.set()
        finally:
            subscription.close()

    async def _loop(self) -> None:
        tick = self.rt.settings.acd.tick_seconds
        foreground = self.rt.foreground
        while not self._stopping:
            timeout = 5.0
            try:
                await foreground.gap()  # webhooks first (callcenter.foreground)
                self._wake.clear()
                decided = await distribute(self.rt)
                self.runs += 1
                if decided.next_check is not None:
                    wait = (decided.next_check - self.rt.clock.now()).total_seconds()
                    timeout = min(timeout, max(wait, 0.05))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ACD distribution failed")
                timeout = tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if foreground.busy():  # while webhooks come, one run answers a moment's wake-ups
                await asyncio.sleep(_GATHER_S)
