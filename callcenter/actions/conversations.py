"""Opening conversations: the one place a conversation row is made."""

from __future__ import annotations

from typing import Any

from callcenter.actions import audit
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
