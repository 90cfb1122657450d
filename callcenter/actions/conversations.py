"""Conversation rows: the one place they are made and changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, update

from callcenter.actions import audit
from callcenter.bus import events
from callcenter.domain.errors import NotFound
from callcenter.domain.workflow import Actor
from callcenter.store.db import Tx
from callcenter.store.queries import insert_row, row_by_id
from callcenter.store.tables import conversations


async def open_conversation(tx: Tx, values: dict[str, Any], *, actor: Actor) -> Any:
    """Insert a conversation and its audit event; returns the row."""
    conversation = await insert_row(tx, conversations, values)
    await audit.record(
        tx,
        actor=actor,
        entity_type="conversation",
        entity_id=conversation.id,
        action="conversation.open",
        after=values,
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


async def set_conversation(tx: Tx, conversation: Any, *, actor: Actor, **values: Any) -> Any:
    """Change a conversation's columns, with an audit event and a live event; returns the row."""
    now = tx.state["now"]
    updated = (
        await tx.execute(_SET_CONVERSATION, {"b_id": conversation.id, **values, "updated_at": now})
    ).one()
    await audit.record(
        tx,
        actor=actor,
        entity_type="conversation",
        entity_id=conversation.id,
        action="conversation.update",
        before={k: getattr(conversation, k) for k in values},
        after=values,
    )
    tx.publish(events.conversation_changed(updated._asdict(), now))
    return updated
