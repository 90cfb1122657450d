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


def ticket_record(row: Row[Any]) -> TicketRecord:
    """A ``tickets`` row (every column selected) as its record."""
    return cast(TicketRecord, row._asdict())
