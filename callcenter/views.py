"""Read side: rows turned into what people and clients see.

Nothing here writes. Labels come from the catalog in the reader's language;
lights are computed from the SLA at the clock's "now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select

from callcenter.domain.errors import InvalidInput
from callcenter.domain.ids import parse_id
from callcenter.domain.routing import Location, RoutingDecision, classify, route
from callcenter.domain.workflow import (
    FINAL_STATES,
    OPEN_STATES,
    Actor,
    Role,
    Ticket,
    TicketState,
    allowed_steps,
)
from callcenter.runtime import Runtime
from callcenter.store.db import Conn
from callcenter.store.tables import (
    attachments,
    audit_events,
    calls,
    citizen_identities,
    citizens,
    conversations,
    mediation_recordings,
    mediations,
    messages,
    surveys,
    ticket_notes,
    tickets,
    users,
)


def visible_to(actor: Actor | None, row: Any) -> bool:
    """Department staff see only their own department's tickets; everyone else sees all."""
    if actor is None or actor.role is not Role.DEPARTMENT:
        return True
    return actor.department_id is not None and row.department_id == actor.department_id


async def ticket_by_ref(conn: Any, ref: int | str) -> Any:
    """A ticket by id or by number (``20261127-0042``), or None."""
    text = str(ref)[:40]
    query = select(tickets)
    ticket_id = parse_id(text)
    if ticket_id is not None:
        query = query.where(or_(tickets.c.id == ticket_id, tickets.c.number == text))
    else:
        query = query.where(tickets.c.number == text)
    return (await conn.execute(query)).first()


def department_ref(rt: Runtime, dept_id: int | None, locale: str) -> dict[str, Any] | None:
    dept = rt.directory.by_id.get(dept_id) if dept_id is not None else None
    if dept is None:
        return None
    return {"id": dept.id, "code": dept.code, "kind": dept.kind, "name": dept.name(locale)}


def category_ref(rt: Runtime, category_id: int | None, locale: str) -> dict[str, Any] | None:
    category = rt.directory.category_by_id.get(category_id) if category_id is not None else None
    if category is None:
        return None
    return {"id": category.id, "code": category.code, "name": category.name(locale)}


def explain_routing(rt: Runtime, routing: dict[str, Any] | None, locale: str) -> str:
    """One sentence saying why a ticket went where it did."""
    if not routing:
        return ""
    known: dict[str, Any] = {k: routing.get(k) for k in RoutingDecision.__dataclass_fields__}
    decision = RoutingDecision(**known)
    directory = rt.directory
    dept = directory.by_id.get(decision.department_id)
    category = directory.category_by_code.get(decision.category_code or "")
    area = directory.by_id.get(decision.via_area_id or decision.area_id or -1)
    cell = directory.cell_by_id.get(decision.grid_cell_id or -1)
    params = {
        "department": dept.name(locale) if dept else "",
        "category": category.name(locale) if category else "",
        "kind": rt.catalog.label("department_kind", decision.department_kind, locale),
        "area": area.name(locale) if area else "",
        "cell": cell.code if cell else "",
        "keyword": decision.matched or "",
    }
    return rt.text(f"routing.{decision.rule}", locale, **params)


def ticket_view(
    rt: Runtime, row: Any, locale: str, *, actor: Actor | None = None, now: datetime | None = None
) -> dict[str, Any]:
    now = now or rt.clock.now()
    ticket = Ticket.from_row(row)
    label = rt.catalog.label
    sign_light = ticket.sign_light(now, rt.sla)
    handle_light = ticket.handle_light(now, rt.sla)
    light = ticket.light(now, rt.sla)
    return {
        "id": row.id,
        "number": row.number,
        "type": row.type,
        "type_label": label("ticket_type", row.type, locale),
        "priority": row.priority,
        "state": row.state,
        "state_label": label("state", row.state, locale),
        "category": category_ref(rt, row.category_id, locale),
        "title": row.title,
        "description": row.description,
        "citizen_id": row.citizen_id,
        "conversation_id": row.conversation_id,
        "origin_channel": row.origin_channel,
        "locale": row.locale,
        "location": {
            "address": row.address,
            "lat": row.lat,
            "lon": row.lon,
            "grid_cell": (
                rt.directory.cell_by_id[row.grid_cell_id].code
                if row.grid_cell_id in rt.directory.cell_by_id
                else None
            ),
            "street": department_ref(rt, row.street_id, locale),
            "district": department_ref(rt, row.district_id, locale),
        },
        "department": department_ref(rt, row.department_id, locale),
        "routing": row.routing,
        "routing_explanation": explain_routing(rt, row.routing, locale),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "dispatched_at": row.dispatched_at,
        "sign_due_at": row.sign_due_at,
        "accepted_at": row.accepted_at,
        "due_at": row.due_at,
        "replied_at": row.replied_at,
        "closed_at": row.closed_at,
        "reply": row.reply,
        "closure": row.closure,
        "light": light.value if light else None,
        "sign_light": sign_light.value if sign_light else None,
        "handle_light": handle_light.value if handle_light else None,
        "extension_days": row.extension_days,
        "extension_request": (
            {"days": row.extension_request_days, "reason": row.extension_request_reason}
            if row.extension_request_days is not None
            else None
        ),
        "return_count": row.return_count,
        "reopen_count": row.reopen_count,
        "urge_count": row.urge_count,
        "supervised": row.supervised,
        "merged_into_id": row.merged_into_id,
        "last_reason": row.last_reason,
        "version": row.version,
        "allowed_steps": (
            [s.value for s in allowed_steps(TicketState(row.state), actor.role)] if actor else []
        ),
    }


@dataclass
class TicketFilter:
    states: Sequence[str] = ()
    department_id: int | None = None
    category: str | None = None
    type: str | None = None
    priority: str | None = None
    citizen_id: int | None = None
    overdue: bool | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    open_only: bool = False
    extension_pending: bool | None = None
    number: str | None = None  # the whole number, or its beginning (a day: 20261127)
    phone: str | None = None  # E.164, as normalised
    citizen_name: str | None = None
    channel: str | None = None
    street_id: int | None = None
    grid_cell_id: int | None = None
    ids: Sequence[int] | None = None  # only these (e.g. a user's own tickets)
    light: str | None = None  # red | yellow | green: running tickets by their light
    created_by: int | None = None


FINAL_STATE_VALUES = frozenset(s.value for s in FINAL_STATES)


def _rare(rt: Runtime, condition: Any, states: Sequence[str]) -> Any:
    """Open states are a small share of a year's tickets: said to SQLite's planner (which
    has no statistics of skew), so that it seeks them rather than walking an ordered index.
    PostgreSQL's planner knows it from its statistics."""
    if not rt.db.is_sqlite or FINAL_STATE_VALUES & set(states):
        return condition
    return func.likelihood(condition, literal_column("0.02"))


def _ticket_conditions(
    rt: Runtime, f: TicketFilter, actor: Actor | None, now: datetime
) -> list[Any]:
    conditions: list[Any] = []
    if actor is not None and actor.role is Role.DEPARTMENT:
        conditions.append(tickets.c.department_id == (actor.department_id or -1))
    if f.states:
        conditions.append(_rare(rt, tickets.c.state.in_(list(f.states)), f.states))
    if f.open_only:
        conditions.append(_rare(rt, tickets.c.state.in_([s.value for s in OPEN_STATES]), ()))
    if f.department_id is not None:
        conditions.append(tickets.c.department_id == f.department_id)
    if f.category:
        category = rt.directory.category_by_code.get(f.category)
        conditions.append(tickets.c.category_id == (category.id if category else -1))
    if f.type:
        conditions.append(tickets.c.type == f.type)
    if f.priority:
        conditions.append(tickets.c.priority == f.priority)
    if f.citizen_id is not None:
        conditions.append(tickets.c.citizen_id == f.citizen_id)
    if f.overdue is not None:
        late = overdue_condition(now)
        conditions.append(late if f.overdue else ~late)
    if f.light:
        conditions.append(light_condition(now, f.light))
    if f.created_by is not None:
        conditions.append(tickets.c.created_by == f.created_by)
    if f.number:
        number = f.number.strip()
        conditions.append(
            tickets.c.number == number if "-" in number else tickets.c.number.like(f"{number}%")
        )
    if f.phone:
        conditions.append(
            tickets.c.citizen_id.in_(
                select(citizens.c.id)
                .where(citizens.c.phone == f.phone)
                .union(
                    select(citizen_identities.c.citizen_id).where(
                        citizen_identities.c.kind == "phone",
                        citizen_identities.c.value == f.phone,
                    )
                )
            )
        )
    if f.citizen_name:
        name = f.citizen_name.replace("%", "").replace("_", "")
        conditions.append(
            tickets.c.citizen_id.in_(select(citizens.c.id).where(citizens.c.name.like(f"%{name}%")))
        )
    if f.channel:
        conditions.append(tickets.c.origin_channel == f.channel)
    if f.street_id is not None:
        conditions.append(tickets.c.street_id == f.street_id)
    if f.grid_cell_id is not None:
        conditions.append(tickets.c.grid_cell_id == f.grid_cell_id)
    if f.ids is not None:
        conditions.append(tickets.c.id.in_(list(f.ids)))
    if f.q:
        pattern = f"%{f.q.replace('%', '').replace('_', '')}%"
        conditions.append(
            or_(
                tickets.c.number.like(pattern),
                tickets.c.title.like(pattern),
                tickets.c.description.like(pattern),
                tickets.c.address.like(pattern),
            )
        )
    if f.extension_pending is not None:
        pending = tickets.c.extension_request_days.is_not(None)
        conditions.append(pending if f.extension_pending else ~pending)
    if f.created_from is not None:
        conditions.append(tickets.c.created_at >= f.created_from)
    if f.created_to is not None:
        conditions.append(tickets.c.created_at < f.created_to)
    return conditions


# the deadline a running ticket meets next: signing for it, while it waits for that
NEXT_DEADLINE = case(
    (tickets.c.state == "dispatched", func.coalesce(tickets.c.sign_due_at, tickets.c.due_at)),
    else_=tickets.c.due_at,
)


def overdue_condition(now: datetime) -> Any:
    """Red: a running clock's deadline has passed (signing for it, or handling it)."""
    return and_(tickets.c.state.in_(["dispatched", "accepted"]), now >= NEXT_DEADLINE)


def light_condition(now: datetime, light: str) -> Any:
    """Running tickets whose light (the worse of their clocks) is ``light``, from the
    instants stored when each clock started (see ``Ticket._start_clocks``)."""
    running = tickets.c.state.in_(["dispatched", "accepted"])
    red = overdue_condition(now)
    yellow = and_(
        running,
        ~red,
        or_(
            and_(tickets.c.state == "dispatched", tickets.c.sign_warn_at <= now),
            tickets.c.warn_at <= now,
        ),
    )
    if light == "red":
        return red
    if light == "yellow":
        return yellow
    if light == "green":
        return and_(running, ~red, ~yellow)
    raise InvalidInput("invalid_choice", field="light", choices="red, yellow, green")


def urgency_order(now: datetime) -> tuple[Any, ...]:
    """Overdue first (by either clock), then urgent, then the nearest deadline."""
    late = overdue_condition(now)
    return (
        case((late, 0), else_=1),
        case((tickets.c.priority == "urgent", 0), else_=1),
        case((NEXT_DEADLINE.is_(None), 1), else_=0),
        NEXT_DEADLINE,
        tickets.c.created_at.desc(),
    )


async def list_tickets(
    conn: Conn,
    rt: Runtime,
    f: TicketFilter,
    *,
    actor: Actor | None,
    page: int = 1,
    per_page: int = 20,
    sort: str = "urgency",
    count_limit: int | None = None,
) -> tuple[list[Any], int]:
    """Rows of one page and the total count. By urgency (the default): overdue, then
    urgent, then the nearest deadline; ``newest``/``oldest``: urgent first, then by age."""
    now = rt.clock.now()
    conditions = _ticket_conditions(rt, f, actor, now)
    scoped = 1 if actor is not None and actor.role is Role.DEPARTMENT else 0
    if count_limit is None or len(conditions) > scoped:
        # a filter: counted exactly (a LIMIT would make PostgreSQL walk the table looking
        # for rows that a filter made rare)
        total = await conn.scalar(select(func.count()).select_from(tickets).where(*conditions))
    else:  # no filter: "10,000+" is what a person needs, and counting a year is not free
        capped = select(tickets.c.id).where(*conditions).limit(count_limit + 1).subquery()
        total = await conn.scalar(select(func.count()).select_from(capped))
    order: Sequence[Any]
    # "urgent" sorts after "normal": descending puts urgent first, along an index
    if sort == "newest":
        order = (tickets.c.priority.desc(), tickets.c.created_at.desc())
    elif sort == "oldest":
        order = (tickets.c.priority.desc(), tickets.c.created_at)
    else:
        order = urgency_order(now)
    rows = (
        await conn.execute(
            select(tickets)
            .where(*conditions)
            .order_by(*order, tickets.c.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    ).all()
    return list(rows), int(total or 0)


async def ticket_history(conn: Conn, ticket_id: int) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            select(audit_events)
            .where(audit_events.c.entity_type == "ticket", audit_events.c.entity_id == ticket_id)
            .order_by(audit_events.c.seq)
        )
    ).all()
    return [
        {
            "seq": r.seq,
            "at": r.at,
            "action": r.action,
            "actor": {"id": r.actor_id, "role": r.actor_role, "name": r.actor_name},
            "before": r.before,
            "after": r.after,
            "details": r.details,
        }
        for r in rows
    ]


def conversation_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "citizen_id": row.citizen_id,
        "channel": row.channel,
        "address": row.address,
        "state": row.state,
        "queue": row.queue,
        "agent_id": row.agent_id,
        "ticket_id": row.ticket_id,
        "locale": row.locale,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "queued_at": row.queued_at,
        "closed_at": row.closed_at,
        "last_message_at": row.last_message_at,
    }


def message_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "channel": row.channel,
        "direction": row.direction,
        "body": row.body,
        "status": row.status,
        "kind": row.kind,
        "provider_id": row.provider_id,
        "author_id": row.author_id,
        "error": row.error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
    }


async def conversation_messages(conn: Conn, conversation_id: int, *, after: int = 0) -> list[Any]:
    """A conversation's messages in order (only those after message id ``after``)."""
    return list(
        (
            await conn.execute(
                select(messages)
                .where(messages.c.conversation_id == conversation_id, messages.c.id > after)
                .order_by(messages.c.id)
            )
        ).all()
    )


async def latest_conversation(conn: Conn, channel: str, kind: str, address: str) -> Any:
    """The newest conversation on ``channel`` of the citizen known there by ``address``
    (an identity of ``kind``), open or not; None if they never wrote."""
    return (
        await conn.execute(
            select(conversations)
            .join(citizen_identities, citizen_identities.c.citizen_id == conversations.c.citizen_id)
            .where(
                citizen_identities.c.kind == kind,
                citizen_identities.c.value == address,
                conversations.c.channel == channel,
                conversations.c.address == address,
            )
            .order_by(conversations.c.id.desc())
            .limit(1)
        )
    ).first()


async def citizen_profile(conn: Conn, citizen_id: int) -> dict[str, Any] | None:
    citizen = (await conn.execute(select(citizens).where(citizens.c.id == citizen_id))).first()
    if citizen is None:
        return None
    identities = (
        await conn.execute(
            select(citizen_identities).where(citizen_identities.c.citizen_id == citizen_id)
        )
    ).all()
    convs = (
        await conn.execute(
            select(conversations)
            .where(conversations.c.citizen_id == citizen_id)
            .order_by(conversations.c.id.desc())
            .limit(50)
        )
    ).all()
    call_rows = (
        await conn.execute(
            select(calls)
            .join(conversations, conversations.c.id == calls.c.conversation_id)
            .where(conversations.c.citizen_id == citizen_id)
            .order_by(calls.c.id.desc())
            .limit(50)
        )
    ).all()
    return {
        "id": citizen.id,
        "name": citizen.name,
        "phone": citizen.phone,
        "locale": citizen.locale,
        "created_at": citizen.created_at,
        "identities": [{"kind": i.kind, "value": i.value} for i in identities],
        "conversations": [conversation_view(c) for c in convs],
        "calls": [
            {
                "id": c.id,
                "conversation_id": c.conversation_id,
                "from_number": c.from_number,
                "started_at": c.started_at,
                "ended_at": c.ended_at,
                "transcript": c.transcript,
                "outcome": c.outcome,
            }
            for c in call_rows
        ],
    }


async def citizen_ticket(conn: Any, citizen_id: int, number: str) -> Any:
    """A ticket by number, only if it is this citizen's (for status questions)."""
    return (
        await conn.execute(
            select(tickets).where(tickets.c.number == number, tickets.c.citizen_id == citizen_id)
        )
    ).first()


def ticket_status_params(rt: Runtime, row: Any, locale: str) -> dict[str, Any]:
    """What a citizen may be told about their ticket."""
    category = category_ref(rt, row.category_id, locale)
    department = department_ref(rt, row.department_id, locale)
    return {
        "number": row.number,
        "state": rt.catalog.label("state", row.state, locale),
        "category": category["name"] if category else "",
        "department": department["name"] if department else "",
        "due": rt.local_text(row.due_at),
        "reply": row.reply or "",
    }


def routing_suggestion(
    rt: Runtime,
    description: str,
    locale: str,
    *,
    category_code: str | None = None,
    location: Location | None = None,
) -> dict[str, Any]:
    """The category and department a text and place would be routed to, and why."""
    directory = rt.directory
    found = classify(description, directory.categories)
    if category_code:
        category = directory.category_by_code.get(category_code)
        if category is None:
            raise InvalidInput("unknown_category", category=category_code)
    elif found.category_code and found.confidence >= rt.settings.intake.min_confidence:
        category = directory.category_by_code[found.category_code]
    else:
        category = None
    decision = route(directory, category, location or Location(None, None, None), text=description)
    record = decision.as_dict()
    return {
        "category": category_ref(rt, category.id, locale) if category else None,
        "type": found.ticket_type or (category.default_type if category else "help"),
        "department": None
        if decision.to_desk
        else department_ref(rt, decision.department_id, locale),
        "to_desk": decision.to_desk,
        "rule": decision.rule,
        "explanation": explain_routing(rt, record, locale),
        "classification": {
            "category": found.category_code,
            "confidence": found.confidence,
            "matched": list(found.matched),
            "runner_up": found.runner_up,
            "ticket_type": found.ticket_type,
        },
        "decision": record,
    }


async def ticket_casework(conn: Conn, ticket_id: int) -> dict[str, list[Any]]:
    """Staff's notes and the files on a ticket, oldest first (staff-only reading)."""
    notes = (
        await conn.execute(
            select(ticket_notes)
            .where(ticket_notes.c.ticket_id == ticket_id)
            .order_by(ticket_notes.c.id)
        )
    ).all()
    files = (
        await conn.execute(
            select(attachments)
            .where(attachments.c.ticket_id == ticket_id)
            .order_by(attachments.c.id)
        )
    ).all()
    return {"notes": list(notes), "files": list(files)}


async def ticket_mediations(conn: Conn, rt: Runtime, ticket_id: int, locale: str) -> list[Any]:
    """The ticket's mediations with their recordings and transcripts, for the ticket page
    (whoever may see the ticket may see these; the recording's URL checks the same)."""
    rows = (
        await conn.execute(
            select(mediations).where(mediations.c.ticket_id == ticket_id).order_by(mediations.c.id)
        )
    ).all()
    recs = (
        await conn.execute(
            select(mediation_recordings)
            .where(
                mediation_recordings.c.ticket_id == ticket_id,
                mediation_recordings.c.state != "deleted",
            )
            .order_by(mediation_recordings.c.id)
        )
    ).all()
    return [
        {
            "id": m.id,
            "state": m.state,
            "state_label": rt.catalog.label("mediation_state", m.state, locale),
            "scheduled_at": m.scheduled_at,
            "outcome": m.outcome,
            "recordings": [
                {
                    "id": r.id,
                    "state": r.state,
                    "duration_seconds": r.duration_seconds,
                    "url": f"/api/mediations/{m.id}/recordings/{r.id}"
                    if r.state == "ready"
                    else None,
                    "transcript": r.transcript,
                }
                for r in recs
                if r.mediation_id == m.id
            ],
        }
        for m in rows
    ]


async def ticket_contact(conn: Conn, citizen_id: int | None) -> dict[str, Any] | None:
    """How to call the citizen back: name and phone numbers (for staff of the ticket)."""
    if citizen_id is None:
        return None
    row = (await conn.execute(select(citizens).where(citizens.c.id == citizen_id))).first()
    if row is None:
        return None
    phones = {
        r.value
        for r in await conn.execute(
            select(citizen_identities.c.value).where(
                citizen_identities.c.citizen_id == citizen_id,
                citizen_identities.c.kind == "phone",
            )
        )
    }
    if row.phone:
        phones.add(row.phone)
    return {"name": row.name, "phones": sorted(phones), "locale": row.locale}


async def citizens_matching(
    conn: Conn, *, phone: str | None = None, name: str | None = None, limit: int = 50
) -> list[Any]:
    """Citizens by phone number (E.164, also among their identities) and/or part of the
    name, newest first."""
    query = select(citizens).order_by(citizens.c.id.desc()).limit(limit)
    if phone:
        query = query.where(
            or_(
                citizens.c.phone == phone,
                citizens.c.id.in_(
                    select(citizen_identities.c.citizen_id).where(
                        citizen_identities.c.kind == "phone", citizen_identities.c.value == phone
                    )
                ),
            )
        )
    if name:
        query = query.where(citizens.c.name.like(f"%{name.replace('%', '')}%"))
    return list((await conn.execute(query)).all())


async def list_conversations_page(
    conn: Conn,
    *,
    state: str | None = None,
    channel: str | None = None,
    queue: str | None = None,
    citizen_id: int | None = None,
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[Any], int]:
    """One page of conversations, newest activity first, and how many match."""
    conditions: list[Any] = []
    if state:
        conditions.append(conversations.c.state == state)
    if channel:
        conditions.append(conversations.c.channel == channel)
    if queue:
        conditions.append(conversations.c.queue == queue)
    if citizen_id is not None:
        conditions.append(conversations.c.citizen_id == citizen_id)
    total = await conn.scalar(select(func.count()).select_from(conversations).where(*conditions))
    rows = (
        await conn.execute(
            select(conversations)
            .where(*conditions)
            .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    ).all()
    return list(rows), int(total or 0)


async def conversation_by_id(conn: Conn, conversation_id: int) -> Any:
    return (
        await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
    ).first()


async def message_by_id(conn: Conn, message_id: int) -> Any:
    return (await conn.execute(select(messages).where(messages.c.id == message_id))).first()


async def staff_actors(conn: Conn) -> list[Actor]:
    """Every active member of staff, as the actor of the steps they take."""
    rows = (await conn.execute(select(users).where(users.c.active.is_(True)))).all()
    return [Actor(r.id, Role(r.role), r.display_name, r.department_id, r.locale) for r in rows]


async def survey_waiting_for_answer(conn: Conn, ticket_id: int) -> int | None:
    """The id of the ticket's survey that was sent and waits for the citizen, if any."""
    found = await conn.scalar(
        select(surveys.c.id)
        .where(surveys.c.ticket_id == ticket_id, surveys.c.state.in_(["sent", "reminded"]))
        .order_by(surveys.c.id.desc())
        .limit(1)
    )
    return int(found) if found is not None else None
