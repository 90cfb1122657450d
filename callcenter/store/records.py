"""Typed records: the shape of a row as the actions hand it on (``row._asdict()``).

A row read with SQLAlchemy Core is a ``Row`` whose columns mypy cannot see; an
action that returns a ticket returns a :class:`TicketRecord`, so the API, the
pages and the jobs that read its fields are checked against the table. Each
record names every column of its table with the column's Python type (``None``
allowed where the column is nullable); ``tests/unit/test_records.py`` fails when
a table and its record part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy.engine import Row


class TicketRecord(TypedDict):
    """One row of ``tickets``."""

    id: int
    number: str
    type: str
    priority: str
    state: str
    category_id: int | None
    title: str
    description: str
    citizen_id: int | None
    conversation_id: int | None
    origin_channel: str
    locale: str
    address: str | None
    lat: float | None
    lon: float | None
    grid_cell_id: int | None
    street_id: int | None
    district_id: int | None
    routing: dict[str, Any] | None
    department_id: int | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    sign_due_at: datetime | None
    accepted_at: datetime | None
    handle_started_at: datetime | None
    due_at: datetime | None
    sign_warn_at: datetime | None
    warn_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    reply: str | None
    closure: str | None
    extension_days: int
    extension_request_days: int | None
    extension_request_reason: str | None
    return_count: int
    reopen_count: int
    urge_count: int
    supervised: bool
    merged_into_id: int | None
    last_reason: str | None
    version: int


class ConversationRecord(TypedDict):
    """One row of ``conversations``."""

    id: int
    citizen_id: int
    channel: str
    address: str
    service_address: str | None
    state: str
    kind: str
    queue: str | None
    agent_id: int | None
    ticket_id: int | None
    bot_state: dict[str, Any] | None
    locale: str
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    closed_at: datetime | None
    last_message_at: datetime | None


class AgentStateRecord(TypedDict):
    """One row of ``agent_states``: an agent's presence, capacity and skills."""

    user_id: int
    presence: str
    presence_since: datetime
    wrap_up_until: datetime | None
    capacity: int
    languages: list[str]
    categories: list[str]
    queues: list[str]
    last_contact_at: datetime | None
    voice: bool  # takes calls
    channel_capacity: dict[str, int] | None  # at most so many at once per channel


class NoteRecord(TypedDict):
    """One row of ``ticket_notes``: staff's internal note on a ticket."""

    id: int
    ticket_id: int
    author_id: int | None
    author_name: str
    author_role: str
    department_id: int | None
    body: str
    created_at: datetime


class MediationRecord(TypedDict):
    """One row of ``mediations`` (its room's secrets among them: never for a browser)."""

    id: int
    ticket_id: int
    state: str
    mediator_id: int | None
    scheduled_at: datetime | None
    duration_minutes: int
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    agreement_text: str | None
    agreement_path: str | None
    reason: str | None
    reschedules: int
    version: int
    media_node: str | None
    room_id: int | None
    room_secret: str | None
    room_pin: str | None
    mediator_token: str | None
    recording: bool
    created_by: int | None
    created_at: datetime
    updated_at: datetime


def ticket_record(row: Row[Any]) -> TicketRecord:
    """A ``tickets`` row (every column selected) as its record."""
    return cast(TicketRecord, row._asdict())


def conversation_record(row: Row[Any]) -> ConversationRecord:
    """A ``conversations`` row (every column selected) as its record."""
    return cast(ConversationRecord, row._asdict())


def agent_state_record(row: Row[Any]) -> AgentStateRecord:
    """An ``agent_states`` row (every column selected) as its record."""
    return cast(AgentStateRecord, row._asdict())


def note_record(row: Row[Any]) -> NoteRecord:
    """A ``ticket_notes`` row (every column selected) as its record."""
    return cast(NoteRecord, row._asdict())


def mediation_record(row: Row[Any]) -> MediationRecord:
    """A ``mediations`` row (every column selected) as its record."""
    return cast(MediationRecord, row._asdict())
