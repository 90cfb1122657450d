"""What agents do with what they are offered: take or pass an offer, transfer a
conversation, end it with a wrap-up code. Every step is one of the conversation's
table (:mod:`callcenter.domain.conversation`), so an agent works only on the
conversations they hold. See ``docs/acd.md``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from callcenter.actions import audit
from callcenter.actions.agents import (
    agent_row,
    agent_user,
    require_desk,
    set_agent,
    start_wrap_up,
)
from callcenter.actions.calls import call_waits_again, connect_call
from callcenter.actions.conversations import load_conversation, move_conversation
from callcenter.actions.queues import (
    end_entry,
    enqueue,
    open_entry,
    open_entry_of,
    withdraw_offers,
)
from callcenter.bus import events
from callcenter.domain.acd import Presence
from callcenter.domain.conversation import ConversationStep, check_step
from callcenter.domain.errors import Conflict, InvalidInput, NotFound
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.records import ConversationRecord, conversation_record
from callcenter.store.tables import offers, queue_entries


async def _pending_offer(tx: Tx, offer_id: int, actor: Actor) -> Any:
    row = (await tx.execute(select(offers).where(offers.c.id == offer_id))).first()
    if row is None or row.agent_id != actor.id:
        raise NotFound("offer_not_found", id=offer_id)
    if row.state != "pending" or row.expires_at <= tx.state["now"]:
        raise Conflict("offer_not_pending", id=offer_id, state=row.state)
    return row


async def _answer_offer(tx: Tx, offer_id: int, state: str, *, actor: Actor) -> Any:
    """The agent's answer to their pending offer (``accepted``, ``declined``); the offer."""
    now = tx.state["now"]
    offer = await _pending_offer(tx, offer_id, actor)
    await tx.execute(
        update(offers).where(offers.c.id == offer_id).values(state=state, answered_at=now)
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="offer",
        entity_id=offer_id,
        action="offer.accept" if state == "accepted" else "offer.decline",
        after={"conversation_id": offer.conversation_id},
    )
    tx.publish(events.offer_changed({**offer._asdict(), "state": state}, now))
    return offer


async def accept_offer(rt: Runtime, offer_id: int, *, actor: Actor) -> ConversationRecord:
    """The agent takes the conversation: it is assigned to them."""
    require_desk(actor)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        offer = await _answer_offer(tx, offer_id, "accepted", actor=actor)
        await tx.execute(
            update(queue_entries)
            .where(queue_entries.c.id == offer.entry_id)
            .values(agent_id=actor.id, assigned_at=now)
        )
        conversation = await load_conversation(tx, offer.conversation_id)
        conversation = await move_conversation(
            tx, conversation, ConversationStep.ASSIGN, actor=actor, agent_id=actor.id
        )
        await connect_call(tx, conversation.id, actor=actor)
        assert actor.id is not None
        await set_agent(tx, rt, actor.id, actor=actor, last_contact_at=now)
        return conversation_record(conversation)


async def decline_offer(rt: Runtime, offer_id: int, *, actor: Actor) -> None:
    """The agent passes: the conversation goes to the next agent."""
    require_desk(actor)
    async with rt.transaction() as tx:
        await _answer_offer(tx, offer_id, "declined", actor=actor)


async def held_conversation(
    tx: Tx, conversation_id: int, step: ConversationStep, actor: Actor
) -> tuple[Any, Any]:
    """The conversation and its open stay with an agent, if the actor may take ``step``."""
    conversation = await load_conversation(tx, conversation_id)
    check_step(conversation.state, step, actor=actor, agent_id=conversation.agent_id)
    entry = await open_entry_of(tx, conversation_id)
    if entry is None or entry.agent_id is None:
        raise Conflict("conversation_not_assigned", id=conversation_id)
    return conversation, entry


async def _call_the_caller_ended(tx: Tx, conversation_id: int, actor: Actor) -> Any:
    """The stay of a call that ended while the actor held it, not yet wrapped up, or None."""
    conversation = await load_conversation(tx, conversation_id)
    if conversation.kind != "call" or conversation.state != "closed":
        return None
    if await open_entry_of(tx, conversation_id) is not None:
        return None
    check_step(
        conversation.state, ConversationStep.END, actor=actor, agent_id=conversation.agent_id
    )
    return (
        await tx.execute(
            select(queue_entries)
            .where(
                queue_entries.c.conversation_id == conversation_id,
                queue_entries.c.agent_id == conversation.agent_id,
                queue_entries.c.outcome == "handled",
                queue_entries.c.wrap_up_code.is_(None),
            )
            .order_by(queue_entries.c.id.desc())
            .limit(1)
        )
    ).first()


async def end_conversation(
    rt: Runtime, conversation_id: int, *, wrap_up_code: str, actor: Actor
) -> ConversationRecord:
    """The agent closes the conversation with a wrap-up code; wrap-up time starts."""
    require_desk(actor)
    if wrap_up_code not in rt.settings.acd.wrap_up_codes:
        raise InvalidInput(
            "invalid_choice", field="wrap_up_code", choices=", ".join(rt.settings.acd.wrap_up_codes)
        )
    async with rt.transaction() as tx:
        ended = await _call_the_caller_ended(tx, conversation_id, actor)
        if ended is not None:  # the stay ended with the call; only its code is missing
            await tx.execute(
                update(queue_entries)
                .where(queue_entries.c.id == ended.id)
                .values(wrap_up_code=wrap_up_code)
            )
            conversation, entry = None, ended
        else:
            conversation, entry = await held_conversation(
                tx, conversation_id, ConversationStep.END, actor
            )
            await end_entry(tx, entry.id, "handled", wrap_up_code=wrap_up_code)
        await audit.record(
            tx,
            actor=actor,
            entity_type="conversation",
            entity_id=conversation_id,
            action="conversation.wrap_up",
            after={"wrap_up_code": wrap_up_code, "queue": entry.queue},
        )
        if conversation is None:  # wrap-up began when the caller hung up
            return conversation_record(await load_conversation(tx, conversation_id))
        if conversation.state != "closed":  # the citizen may have left already
            conversation = await move_conversation(
                tx, conversation, ConversationStep.END, actor=actor
            )
        await start_wrap_up(tx, rt, entry.agent_id, entry.queue, actor=actor)
        return conversation_record(conversation)


async def transfer_conversation(
    rt: Runtime,
    conversation_id: int,
    *,
    actor: Actor,
    to_queue: str | None = None,
    to_agent_id: int | None = None,
) -> ConversationRecord:
    """Hand the conversation to another queue (it waits there) or straight to an agent."""
    require_desk(actor)
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
        conversation, entry = await held_conversation(tx, conversation_id, step, actor)
        await end_entry(tx, entry.id, "transferred")
        details: dict[str, Any] = {"from_agent_id": entry.agent_id, "from_queue": entry.queue}
        if to_agent_id is not None:
            target = await agent_user(tx, to_agent_id)
            state = await agent_row(tx, target.id)
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
            await connect_call(tx, conversation.id, actor=actor)
            await set_agent(tx, rt, target.id, actor=actor, last_contact_at=now)
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
            await call_waits_again(tx, conversation_id, actor=actor)
            details["to_queue"] = to_queue
        await audit.record(
            tx,
            actor=actor,
            entity_type="conversation",
            entity_id=conversation_id,
            action="conversation.transfer",
            details=details,
        )
        await set_agent(tx, rt, entry.agent_id, actor=actor, last_contact_at=now)
        return conversation_record(conversation)


async def _open_held(tx: Tx, agent_id: int, channel: str | None = None) -> int:
    """How many conversations an agent holds now (on ``channel``, if named)."""
    query = (
        select(func.count())
        .select_from(queue_entries)
        .where(queue_entries.c.agent_id == agent_id, queue_entries.c.ended_at.is_(None))
    )
    if channel is not None:
        query = query.where(queue_entries.c.channel == channel)
    result = await tx.execute(query)
    return int(result.scalar() or 0)


async def pick_conversation(
    rt: Runtime, conversation_id: int, *, actor: Actor
) -> ConversationRecord:
    """An agent takes a waiting conversation from the queue table, without waiting for an
    offer (an offer out to someone else is withdrawn). Not when away or already full."""
    require_desk(actor)
    assert actor.id is not None
    async with rt.transaction() as tx:
        now = tx.state["now"]
        conversation = await load_conversation(tx, conversation_id)
        check_step(
            conversation.state, ConversationStep.ASSIGN, actor=actor, agent_id=conversation.agent_id
        )
        entry = await open_entry_of(tx, conversation_id)
        if entry is None or entry.agent_id is not None:
            raise Conflict("conversation_not_waiting", id=conversation_id)
        me = await agent_row(tx, actor.id)
        if me is None or me.presence == Presence.AWAY.value:
            raise Conflict("available_first")
        if await _open_held(tx, actor.id) >= me.capacity:
            raise Conflict("at_capacity", capacity=me.capacity)
        limit = (me.channel_capacity or {}).get(entry.channel)
        if limit is not None and await _open_held(tx, actor.id, entry.channel) >= limit:
            raise Conflict("at_capacity", capacity=limit)
        await withdraw_offers(tx, entry.id)
        await tx.execute(
            update(queue_entries)
            .where(queue_entries.c.id == entry.id)
            .values(agent_id=actor.id, assigned_at=now)
        )
        conversation = await move_conversation(
            tx, conversation, ConversationStep.ASSIGN, actor=actor, agent_id=actor.id
        )
        await connect_call(tx, conversation.id, actor=actor)
        await audit.record(
            tx,
            actor=actor,
            entity_type="conversation",
            entity_id=conversation_id,
            action="conversation.pick",
            details={"queue": entry.queue},
        )
        await set_agent(tx, rt, actor.id, actor=actor, last_contact_at=now)
        return conversation_record(conversation)


async def take_over_conversation(
    rt: Runtime, conversation_id: int, *, actor: Actor
) -> ConversationRecord:
    """A supervisor takes a conversation over from the agent who holds it (audited by the
    step, with the agent it was taken from; that agent's desk hears of it)."""
    assert actor.id is not None
    async with rt.transaction() as tx:
        now = tx.state["now"]
        conversation = await load_conversation(tx, conversation_id)
        check_step(
            conversation.state,
            ConversationStep.TAKE_OVER,
            actor=actor,
            agent_id=conversation.agent_id,
        )
        entry = await open_entry_of(tx, conversation_id)
        if entry is None or entry.agent_id is None:
            raise Conflict("conversation_not_assigned", id=conversation_id)
        if entry.agent_id == actor.id:
            raise Conflict("already_yours", id=conversation_id)
        from_agent = entry.agent_id
        await end_entry(tx, entry.id, "transferred")
        await open_entry(
            tx, rt, conversation, entry.queue, agent_id=actor.id, queued_at=entry.queued_at
        )
        conversation = await move_conversation(
            tx, conversation, ConversationStep.TAKE_OVER, actor=actor, agent_id=actor.id
        )
        await set_agent(tx, rt, actor.id, actor=actor, last_contact_at=now)
        await set_agent(tx, rt, from_agent, actor=actor, last_contact_at=now)
        return conversation_record(conversation)
