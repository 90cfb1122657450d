"""Each typed record names every column of its table, with the column's type."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from sqlalchemy import JSON, Table
from sqlalchemy.types import TypeDecorator

from callcenter.store.records import (
    AgentStateRecord,
    ConversationRecord,
    MediationRecord,
    NoteRecord,
    TicketRecord,
)
from callcenter.store.tables import (
    agent_states,
    conversations,
    mediations,
    ticket_notes,
    tickets,
)

RECORDS: list[tuple[Any, Table]] = [
    (TicketRecord, tickets),
    (ConversationRecord, conversations),
    (AgentStateRecord, agent_states),
    (NoteRecord, ticket_notes),
    (MediationRecord, mediations),
]


JSON_SHAPES = frozenset({dict, list})  # a JSON column holds an object or an array


def _python_types(column: Any, declared: set[Any]) -> set[Any]:
    """The types the column's values may have (for JSON, the shape the record declares)."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, JSON):
        return declared if declared and declared <= JSON_SHAPES else {dict}
    return {kind.python_type}


def _parts(hint: Any) -> tuple[set[Any], bool]:
    """(the types a hint allows but None, whether it allows None)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = set(typing.get_args(hint))
    else:
        args = {hint}
    nullable = type(None) in args
    return {typing.get_origin(a) or a for a in args - {type(None)}}, nullable


@pytest.mark.parametrize(("record", "table"), RECORDS, ids=lambda x: getattr(x, "name", ""))
def test_a_record_names_every_column_with_its_type(record: Any, table: Table) -> None:
    hints = typing.get_type_hints(record)
    assert list(hints) == [c.name for c in table.c]
    found = {name: _parts(hint) for name, hint in hints.items()}
    expected = {c.name: (_python_types(c, found[c.name][0]), bool(c.nullable)) for c in table.c}
    assert found == expected


def test_the_check_sees_a_wrong_type() -> None:
    assert _parts(int | None) == ({int}, True)
    assert _parts(dict[str, Any] | None) == ({dict}, True)
    assert _parts(str) == ({str}, False)


# each typed record the API answers with, beside the response model that documents it
# (callcenter/api/schemas.py, the OpenAPI document's source): the two name the same fields
def _api_pairs() -> list[tuple[Any, Any]]:
    from callcenter import deskviews, views
    from callcenter.actions.privacy import TicketContact
    from callcenter.api import acd, privacy, schemas

    return [
        (views.TicketView, schemas.TicketOut),
        (views.TicketDetail, schemas.TicketDetailOut),
        (views.HistoryEntry, schemas.HistoryEvent),
        (views.HistoryActor, schemas.HistoryActor),
        (views.TicketLocation, schemas.Location),
        (views.ExtensionRequest, schemas.ExtensionRequest),
        (views.ConversationView, schemas.ConversationOut),
        (views.ConversationDetail, schemas.ConversationDetailOut),
        (views.MessageView, schemas.MessageOut),
        (views.CitizenWithTickets, schemas.CitizenOut),
        (views.CallSummary, schemas.CallOut),
        (views.Identity, schemas.Identity),
        (deskviews.AgentRow, acd.AgentOut),
        (deskviews.WaitingRow, acd.WaitingOut),
        (deskviews.DeskOptions, acd.OptionsOut),
        (TicketContact, privacy.ContactOut),
    ]


def test_what_the_api_answers_is_what_its_document_says() -> None:
    differ = {
        record.__name__: sorted(set(typing.get_type_hints(record)) ^ set(model.model_fields))
        for record, model in _api_pairs()
    }
    assert {name: fields for name, fields in differ.items() if fields} == {}
