"""Entering and leaving queues: the one record of who waits.

A conversation waits for an agent while it has an open stay in a queue
(``queue_entries``: ``ended_at`` is null) that no agent holds yet. The stay is
opened in the same transaction that moves the conversation to ``queued``
(:func:`enqueue`: intake, the voice front, a transfer, an overflow) and ended
in the same transaction that takes it out (an agent accepts it, the citizen
leaves, a message is left, the caller asks for a callback). So the state of the
conversation and its stay never disagree, and whoever reads the queue (the ACD,
the IVR, the web chat, Telegram, the API, the wallboard) reads the stays:
:mod:`callcenter.queueing`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from callcenter.actions.conversations import load_conversation, move_conversation
from callcenter.bus import events
from callcenter.domain.conversation import ConversationStep
from callcenter.domain.routing import classify
from callcenter.domain.workflow import SYSTEM, Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Reader, Tx
from callcenter.store.queries import insert_id
from callcenter.store.tables import messages, offers, queue_entries

_FIRST_TEXT = (
    select(messages.c.body)
    .where(messages.c.conversation_id == bindparam("conversation_id"), messages.c.direction == "in")
    .order_by(messages.c.id)
    .limit(1)
)
_OPEN_STAY = (
    select(queue_entries)
    .where(
        queue_entries.c.conversation_id == bindparam("conversation_id"),
        queue_entries.c.ended_at.is_(None),
    )
    .order_by(queue_entries.c.id.desc())
    .limit(1)
)


async def open_entry(
    tx: Tx,
    rt: Runtime,
    conversation: Any,
    queue: str,
    *,
    agent_id: int | None = None,
    queued_at: datetime | None = None,
) -> int:
    """Start a stay of ``conversation`` in ``queue`` (assigned at once when an agent is named).

    The stay carries what the ACD matches agents on: the conversation's
    language, and the category its first text is recognised as.
    """
    now = tx.state["now"]
    first = (await tx.execute(_FIRST_TEXT, {"conversation_id": conversation.id})).first()
    found = classify(str(first.body) if first else "", rt.directory.categories)
    values = {
        "conversation_id": conversation.id,
        "queue": queue,
        "channel": conversation.channel,
        "language": conversation.locale,
        "category": found.category_code if found.confidence > 0 else None,
        "queued_at": queued_at or conversation.queued_at or now,
        "entered_at": now,
        "agent_id": agent_id,
        "assigned_at": now if agent_id is not None else None,
    }
    return await insert_id(tx, queue_entries, values)


async def open_entry_of(conn: Reader, conversation_id: int) -> Any:
    """The conversation's open stay in a queue (waiting or with an agent), or None."""
    return (await conn.execute(_OPEN_STAY, {"conversation_id": conversation_id})).first()


async def end_entry(
    tx: Tx, entry_id: int, outcome: str, *, wrap_up_code: str | None = None
) -> None:
    """End a stay (``handled``, ``transferred``, ``overflowed``, ``abandoned``,
    ``left_message``, ``callback``, ``ticket``) and withdraw its offers."""
    await tx.execute(
        update(queue_entries)
        .where(queue_entries.c.id == entry_id)
        .values(ended_at=tx.state["now"], outcome=outcome, wrap_up_code=wrap_up_code)
    )
    await withdraw_offers(tx, entry_id)


async def withdraw_offers(tx: Tx, entry_id: int) -> None:
    now = tx.state["now"]
    rows = (
        await tx.execute(
            select(offers).where(offers.c.entry_id == entry_id, offers.c.state == "pending")
        )
    ).all()
    for row in rows:
        await tx.execute(
            update(offers).where(offers.c.id == row.id).values(state="withdrawn", answered_at=now)
        )
        tx.publish(events.offer_changed({**row._asdict(), "state": "withdrawn"}, now))


async def enqueue(
    tx: Tx,
    rt: Runtime,
    conversation: Any,
    *,
    actor: Actor,
    queue: str,
    queued_at: datetime | None = None,
    step: ConversationStep = ConversationStep.QUEUE,
    **values: Any,
) -> Any:
    """The conversation waits in ``queue`` from ``queued_at`` (now by default): the step
    (``queue``, or ``transfer_to_queue``) and its stay, together. Returns the row."""
    waiting_since = queued_at or tx.state["now"]
    conversation = await move_conversation(
        tx,
        conversation,
        step,
        actor=actor,
        queue=queue,
        queued_at=waiting_since,
        **values,
    )
    await open_entry(tx, rt, conversation, queue, queued_at=waiting_since)
    return conversation


async def leave_queue(tx: Tx, conversation_id: int, outcome: str) -> bool:
    """End the conversation's stay if it still waits for an agent; whether one did."""
    entry = await open_entry_of(tx, conversation_id)
    if entry is None or entry.agent_id is not None:
        return False
    await end_entry(tx, entry.id, outcome)
    return True


async def citizen_left(rt: Runtime, conversation_id: int, *, actor: Actor = SYSTEM) -> None:
    """The citizen closed the chat. Still waiting: abandoned. With an agent: the agent
    keeps it until they wrap it up."""
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        if conversation.state == "closed":
            return
        await leave_queue(tx, conversation_id, "abandoned")
        await move_conversation(tx, conversation, ConversationStep.CITIZEN_LEFT, actor=actor)
