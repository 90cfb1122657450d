"""Typed schemas of the live events' data, one model per event type.

The staff websocket sends ``{"type": "event", "id", "event", "at", "data"}``
frames whose ``data`` is one of these; ``tests/integration/test_event_schemas.py``
checks that what the actions publish matches them, so a change to an event is a
change here too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from callcenter.bus import events


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketChanged(EventData):
    ticket_id: int
    number: str
    action: str  # create, or the workflow step taken
    state: str
    priority: str
    department_id: int | None
    version: int


class MessageCreated(EventData):
    message_id: int
    conversation_id: int
    citizen_id: int
    channel: str
    agent_id: int | None  # the agent holding the conversation, if any
    direction: Literal["in", "out"]
    status: str
    kind: str
    body: str
    author_id: int | None
    created_at: str | None


class ConversationChanged(EventData):
    conversation_id: int
    citizen_id: int
    channel: str
    state: str
    queue: str | None
    agent_id: int | None
    ticket_id: int | None
    kind: str


class DirectoryChanged(EventData):
    pass


class AgentChanged(EventData):
    agent_id: int
    presence: Literal["available", "busy", "wrap_up", "away"]
    wrap_up_until: str | None
    capacity: int


class OfferChanged(EventData):
    offer_id: int
    conversation_id: int
    agent_id: int
    queue: str
    state: Literal["pending", "accepted", "declined", "timed_out", "withdrawn"]
    expires_at: str


class MediaChanged(EventData):
    node: str
    up: bool
    error: str | None
    healthy: bool  # at least one node is up


SCHEMAS: dict[str, type[EventData]] = {
    events.TICKET_CHANGED: TicketChanged,
    events.MESSAGE_CREATED: MessageCreated,
    events.CONVERSATION_CHANGED: ConversationChanged,
    events.DIRECTORY_CHANGED: DirectoryChanged,
    events.AGENT_CHANGED: AgentChanged,
    events.OFFER_CHANGED: OfferChanged,
    events.MEDIA_CHANGED: MediaChanged,
}


class EventFrame(BaseModel):
    """What the staff websocket sends for one event."""

    type: Literal["event"]
    id: int
    event: str
    at: str
    data: dict[str, object]
