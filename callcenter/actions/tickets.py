"""Ticket actions: creating, routing and every workflow step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from callcenter.actions import audit, followups
from callcenter.actions.search_index import index_ticket_text, searched_texts
from callcenter.bus import events
from callcenter.domain.errors import InvalidInput, NotFound, TooLarge, VersionConflict
from callcenter.domain.routing import (
    DESK_KIND,
    Category,
    Classification,
    Location,
    RoutingDecision,
    classify,
    route,
)
from callcenter.domain.titles import summarize
from callcenter.domain.workflow import (
    FINAL_STATES,
    Actor,
    Priority,
    Step,
    Ticket,
    TicketState,
    TicketType,
    diff,
)
from callcenter.runtime import Runtime
from callcenter.store.db import Reader, Tx
from callcenter.store.queries import insert_row, next_value, row_by_id
from callcenter.store.records import TicketRecord, ticket_record
from callcenter.store.tables import citizens, conversations, tickets
from callcenter.views import ticket_by_ref, visible_to

MAX_DESCRIPTION = 4000
MAX_TITLE = 200
MAX_ADDRESS = 400


@dataclass
class TicketDraft:
    """What is needed to open a ticket; validated by :func:`check_draft`."""

    description: str
    type: str | None = None
    category: str | None = None
    priority: str | None = None  # None: the category's default
    title: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    citizen_id: int | None = None
    conversation_id: int | None = None
    origin_channel: str = "desk"
    locale: str | None = None
    classification: Classification | None = field(default=None, repr=False)


def _text(value: Any, name: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidInput("missing_field", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", field=name)
    value = value.replace("\x00", "").strip()
    if not value:
        if required:
            raise InvalidInput("missing_field", field=name)
        return None
    if len(value) > limit:
        raise TooLarge("field_too_long", field=name, limit=limit, length=len(value))
    return value


def _coordinate(value: Any, name: str, bound: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("invalid_field", field=name) from None
    if not math.isfinite(number) or abs(number) > bound:
        raise InvalidInput("invalid_field", field=name)
    return number


def check_draft(rt: Runtime, draft: TicketDraft) -> TicketDraft:
    """Validate and normalise a draft, or raise :class:`InvalidInput`."""
    draft.description = (
        _text(draft.description, "description", MAX_DESCRIPTION, required=True) or ""
    )
    draft.title = _text(draft.title, "title", MAX_TITLE, required=False)
    draft.address = _text(draft.address, "address", MAX_ADDRESS, required=False)
    draft.lat = _coordinate(draft.lat, "lat", 90)
    draft.lon = _coordinate(draft.lon, "lon", 180)
    if (draft.lat is None) != (draft.lon is None):
        raise InvalidInput("missing_field", field="lon" if draft.lon is None else "lat")
    if draft.type is not None and draft.type not in TicketType.__members__.values():
        raise InvalidInput("invalid_choice", field="type", choices=", ".join(TicketType))
    if draft.priority is not None and draft.priority not in Priority.__members__.values():
        raise InvalidInput("invalid_choice", field="priority", choices=", ".join(Priority))
    if draft.category is not None and draft.category not in rt.directory.category_by_code:
        raise InvalidInput("unknown_category", category=draft.category)
    return draft


@dataclass(frozen=True)
class Decision:
    category: Category | None
    routing: RoutingDecision
    type: str
    priority: str


def decide(rt: Runtime, draft: TicketDraft) -> Decision:
    """Category (given or recognised), routing, type and priority for a draft."""
    directory = rt.directory
    category: Category | None = None
    if draft.category:
        category = directory.category_by_code[draft.category]
    else:
        found = draft.classification or classify(draft.description, directory.categories)
        draft.classification = found
        if found.category_code and found.confidence >= rt.settings.intake.min_confidence:
            category = directory.category_by_code[found.category_code]
    location = Location(draft.address, draft.lat, draft.lon)
    decision = route(directory, category, location, text=draft.description)
    ticket_type = draft.type or (
        draft.classification.ticket_type
        if draft.classification and draft.classification.ticket_type
        else (category.default_type if category else TicketType.HELP.value)
    )
    priority = draft.priority or (category.default_priority if category else Priority.NORMAL.value)
    return Decision(category, decision, ticket_type, priority)


def routing_record(decision: RoutingDecision, draft: TicketDraft) -> dict[str, Any]:
    record = decision.as_dict()
    if draft.classification is not None:
        record["classification"] = {
            "category": draft.classification.category_code,
            "confidence": draft.classification.confidence,
            "matched": list(draft.classification.matched),
            "runner_up": draft.classification.runner_up,
        }
    return record


async def open_ticket(
    tx: Tx,
    rt: Runtime,
    draft: TicketDraft,
    *,
    actor: Actor,
    dispatch: bool = False,
    tell_citizen: bool = True,
    link_conversation: bool = True,
) -> TicketRecord:
    """Create a ticket inside ``tx``, routed; with ``dispatch``, already sent to the
    routed department (unless routing left it to the desk).

    Creation and dispatch are two audit events but one INSERT. The draft's
    conversation is pointed at the ticket, unless the caller updates that
    conversation itself (``link_conversation=False``).
    """
    now = tx.state["now"]
    decided = decide(rt, draft)
    category, decision = decided.category, decided.routing
    day = rt.local(now).strftime("%Y%m%d")
    sequence = await next_value(tx, f"ticket:{day}")
    locale = rt.catalog.locale_or_default(draft.locale)
    ticket = Ticket(
        id=None,
        number=f"{day}-{sequence:04d}",
        type=TicketType(decided.type),
        priority=Priority(decided.priority),
        state=TicketState.NEW,
        created_at=now,
        category_id=category.id if category else None,
    )
    created = ticket.snapshot()
    values: dict[str, Any] = {
        **created,
        "category_id": category.id if category else None,
        "title": draft.title
        or summarize(draft.description, category.name(locale) if category else ""),
        "description": draft.description,
        "citizen_id": draft.citizen_id,
        "conversation_id": draft.conversation_id,
        "origin_channel": draft.origin_channel,
        "locale": locale,
        "address": draft.address,
        "lat": draft.lat,
        "lon": draft.lon,
        "grid_cell_id": decision.grid_cell_id,
        "street_id": decision.street_id,
        "district_id": decision.district_id,
        "routing": routing_record(decision, draft),
        "created_by": actor.id,
        "updated_at": now,
    }
    values.pop("id")
    audit_create = {k: v for k, v in values.items() if k != "routing"}
    dispatched: tuple[dict[str, Any], dict[str, Any]] | None = None
    if dispatch and not decision.to_desk:
        ticket.take(
            Step.DISPATCH, actor=actor, now=now, sla=rt.sla, department_id=decision.department_id
        )
        dispatched = diff(created, ticket.snapshot())
        values.update(dispatched[1])
    row = ticket_record(await insert_row(tx, tickets, values))
    await index_ticket_text(tx, row["id"], searched_texts(row))
    await audit.record(
        tx,
        actor=actor,
        entity_type="ticket",
        entity_id=row["id"],
        action="ticket.create",
        after=audit_create,
        details={"routing": values["routing"]},
    )
    tx.publish(events.ticket_changed({**row, "state": "new"}, "create", now))
    if dispatched is not None:
        changed_before, changed_after = dispatched
        changed_before.pop("version", None)
        changed_after.pop("version", None)
        await audit.record(
            tx,
            actor=actor,
            entity_type="ticket",
            entity_id=row["id"],
            action="ticket.dispatch",
            before=changed_before,
            after=changed_after,
            details={"department_id": row["department_id"]},
        )
        tx.publish(events.ticket_changed(row, "dispatch", now))
    if draft.conversation_id is not None and link_conversation:
        await tx.execute(
            update(conversations)
            .where(conversations.c.id == draft.conversation_id)
            .values(ticket_id=row["id"], updated_at=now)
        )
    await followups.after_create(
        tx, rt, row, dispatched=dispatched is not None, tell_citizen=tell_citizen
    )
    return row


async def load_ticket(tx: Reader, ref: int | str, *, actor: Actor | None = None) -> Any:
    """A ticket by id or number; department staff see only their department's."""
    row = await ticket_by_ref(tx, ref)
    if row is None or not visible_to(actor, row):
        raise NotFound("ticket_not_found", ticket=str(ref))
    return row


def _check_department(rt: Runtime, department_id: Any) -> int:
    try:
        dept_id = int(department_id)
    except (TypeError, ValueError):
        raise InvalidInput("invalid_field", field="department_id") from None
    dept = rt.directory.by_id.get(dept_id)
    if dept is None:
        raise InvalidInput("unknown_department", department=dept_id)
    if dept.kind == DESK_KIND:
        raise InvalidInput("cannot_dispatch_to_desk")
    return dept_id


async def apply_step(
    tx: Tx,
    rt: Runtime,
    ref: int | str,
    step: Step,
    *,
    actor: Actor,
    expected_version: int | None = None,
    **params: Any,
) -> TicketRecord:
    """Take one workflow step inside ``tx`` (for actions that combine several)."""
    now = tx.state["now"]
    row = await load_ticket(tx, ref, actor=actor)
    ticket = Ticket.from_row(row)
    ticket.check_version(expected_version)

    if step is Step.DISPATCH:
        if params.get("department_id") is None:
            routed = (row.routing or {}).get("department_id")
            if routed is not None and not (row.routing or {}).get("to_desk"):
                params["department_id"] = routed
        if params.get("department_id") is not None:
            params["department_id"] = _check_department(rt, params["department_id"])
    into_number = None
    if step is Step.MERGE and params.get("into_ticket_id") is not None:
        target = await load_ticket(tx, str(params["into_ticket_id"]))
        if target.state in {s.value for s in FINAL_STATES}:
            raise InvalidInput("merge_target_closed", ticket=target.number)
        params["into_ticket_id"] = target.id
        into_number = target.number
    for name in ("reason", "text"):
        if name in params:
            params[name] = _text(params[name], name, MAX_DESCRIPTION, required=False)

    before = ticket.snapshot()
    ticket.take(step, actor=actor, now=now, sla=rt.sla, **params)
    changed_before, changed_after = diff(before, ticket.snapshot())
    changed_after.pop("version", None)
    updated_row = (
        await tx.execute(
            update(tickets)
            .where(tickets.c.id == row.id, tickets.c.version == row.version)
            .values(**changed_after, version=ticket.version, updated_at=now)
            .returning(*tickets.c)
        )
    ).first()
    if updated_row is None:
        current = await load_ticket(tx, row.id)
        raise VersionConflict(expected=row.version, actual=current.version)
    changed_before.pop("version", None)
    details = {k: v for k, v in params.items() if v is not None}
    if into_number is not None:
        details["into_number"] = into_number  # the number people know it by
    await audit.record(
        tx,
        actor=actor,
        entity_type="ticket",
        entity_id=row.id,
        action=f"ticket.{step.value}",
        before=changed_before,
        after=changed_after,
        details=details or None,
    )
    updated = ticket_record(updated_row)
    tx.publish(events.ticket_changed(updated, step.value, now))
    await followups.after_step(tx, rt, step.value, updated, actor=actor, params=details)
    return updated


async def create_ticket(
    rt: Runtime, draft: TicketDraft, *, actor: Actor, dispatch: bool = False
) -> TicketRecord:
    """Open a ticket; with ``dispatch``, send it at once to the routed department."""
    check_draft(rt, draft)
    async with rt.transaction() as tx:
        await _check_references(tx, draft)
        return await open_ticket(tx, rt, draft, actor=actor, dispatch=dispatch)


async def _check_references(tx: Tx, draft: TicketDraft) -> None:
    """The citizen and conversation a draft names exist, and belong together (else 400)."""
    if draft.citizen_id is not None and await row_by_id(tx, citizens, draft.citizen_id) is None:
        raise InvalidInput("unknown_citizen", id=draft.citizen_id)
    if draft.conversation_id is not None:
        conversation = await row_by_id(tx, conversations, draft.conversation_id)
        if conversation is None:
            raise InvalidInput("unknown_conversation", id=draft.conversation_id)
        if draft.citizen_id is not None and conversation.citizen_id != draft.citizen_id:
            raise InvalidInput("conversation_of_another_citizen", id=draft.conversation_id)


async def take_step(
    rt: Runtime,
    ref: int | str,
    step: Step,
    *,
    actor: Actor,
    expected_version: int | None = None,
    **params: Any,
) -> TicketRecord:
    """Take one workflow step in its own transaction."""
    async with rt.transaction() as tx:
        return await apply_step(
            tx, rt, ref, step, actor=actor, expected_version=expected_version, **params
        )


async def dispatch_ticket(
    rt: Runtime, ref: int | str, department_id: int | None = None, *, actor: Actor
) -> TicketRecord:
    """派单: send to a department (the routed one when none is named)."""
    return await take_step(rt, ref, Step.DISPATCH, actor=actor, department_id=department_id)


async def sign_for_ticket(rt: Runtime, ref: int | str, *, actor: Actor) -> TicketRecord:
    """签收: the department accepts the ticket."""
    return await take_step(rt, ref, Step.SIGN_FOR, actor=actor)


async def return_ticket(rt: Runtime, ref: int | str, reason: str, *, actor: Actor) -> TicketRecord:
    """退单: not ours; back to the dispatch desk with a reason."""
    return await take_step(rt, ref, Step.RETURN, actor=actor, reason=reason)


async def reply_ticket(rt: Runtime, ref: int | str, text: str, *, actor: Actor) -> TicketRecord:
    """答复: the department's result."""
    return await take_step(rt, ref, Step.REPLY, actor=actor, text=text)


async def close_ticket(rt: Runtime, ref: int | str, *, actor: Actor) -> TicketRecord:
    """办结: the desk accepts the reply and closes the case."""
    return await take_step(rt, ref, Step.CLOSE, actor=actor)


async def reopen_ticket(rt: Runtime, ref: int | str, reason: str, *, actor: Actor) -> TicketRecord:
    """重办: back to the same department with fresh deadlines."""
    return await take_step(rt, ref, Step.REOPEN, actor=actor, reason=reason)


async def dispatch_tickets(
    rt: Runtime, refs: Sequence[int | str], department_id: int | None = None, *, actor: Actor
) -> list[TicketRecord]:
    """派单 for several tickets at once, each to ``department_id`` or to its routed
    department, in one transaction: all are dispatched, or (the first failure raised)
    none is."""
    if not refs:
        raise InvalidInput("missing_field", field="tickets")
    async with rt.transaction() as tx:
        done = []
        for ref in refs:
            if department_id is None:
                row = await load_ticket(tx, ref, actor=actor)
                routing = row.routing or {}
                if routing.get("to_desk") or routing.get("department_id") is None:
                    raise InvalidInput("no_routed_department", ticket=row.number)
            done.append(
                await apply_step(
                    tx, rt, ref, Step.DISPATCH, actor=actor, department_id=department_id
                )
            )
        return done
