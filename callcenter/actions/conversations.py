"""Conversation rows: the one place they are made and changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, update

from callcenter.actions import audit
from callcenter.bus import events
from callcenter.domain.conversation import ConversationState, ConversationStep, check_step
from callcenter.domain.errors import NotFound
from callcenter.domain.workflow import Actor
from callcenter.store.db import Tx
from callcenter.store.queries import insert_row, row_by_id
from callcenter.store.tables import conversations


async def open_conversation(
    tx: Tx, values: dict[str, Any], *, actor: Actor, details: dict[str, Any] | None = None
) -> Any:
    """Insert a conversation and its audit event; returns the row.

    A conversation starts in ``bot``, in ``queued`` when it takes the place of
    another (a callback task), or ``closed`` when it only carries notices to a
    citizen who has not written on that channel; every later change of state is
    a step (:func:`move_conversation`).
    """
    if values.get("state") == ConversationState.ASSIGNED:
        raise ValueError("a conversation is assigned only by the step 'assign'")
    conversation = await insert_row(tx, conversations, values)
    await audit.record(
        tx,
        actor=actor,
        entity_type="conversation",
        entity_id=conversation.id,
        action="conversation.open",
        after=values,
        details=details,
    )
    return conversation


async def load_conversation(tx: Tx, conversation_id: int) -> Any:
    """A conversation by id, or 404."""
    row = await row_by_id(tx, conversations, conversation_id)
    if row is None:
        raise NotFound("conversation_not_found", id=conversation_id)
    return row


_SET_CONVERSATION = (
    update(conversations).where(conversations.c.id == bindparam("b_id")).returning(*conversations.c)
)


async def move_conversation(
    tx: Tx, conversation: Any, step: ConversationStep, *, actor: Actor, **values: Any
) -> Any:
    """Take one step of the conversation's table (:mod:`callcenter.domain.conversation`),
    with the columns that go with it; returns the row.

    The only way a conversation's state changes: an illegal step is a 409 naming
    the state and the step, another agent's conversation a 403, and nothing is
    written.
    """
    target = check_step(conversation.state, step, actor=actor, agent_id=conversation.agent_id)
    if target.value != conversation.state:
        values["state"] = target.value
    if target is ConversationState.CLOSED and "closed_at" not in values:
        values["closed_at"] = tx.state["now"]
    return await _write(
        tx, conversation, actor=actor, action=f"conversation.{step.value}", **values
    )


async def set_conversation(tx: Tx, conversation: Any, *, actor: Actor, **values: Any) -> Any:
    """Change a conversation's other columns (queue, bot state, last message...); returns
    the row. Its state changes only through :func:`move_conversation`."""
    if "state" in values:
        raise ValueError("a conversation's state changes through move_conversation(step)")
    return await _write(tx, conversation, actor=actor, action="conversation.update", **values)


async def _write(tx: Tx, conversation: Any, *, actor: Actor, action: str, **values: Any) -> Any:
    now = tx.state["now"]
    updated = (
        await tx.execute(_SET_CONVERSATION, {"b_id": conversation.id, **values, "updated_at": now})
    ).one()
    await audit.record(
        tx,
        actor=actor,
        entity_type="conversation",
        entity_id=conversation.id,
        action=action,
        before={k: getattr(conversation, k) for k in values},
        after=values,
    )
    tx.publish(events.conversation_changed(updated._asdict(), now))
    return updated
