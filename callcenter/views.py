"""Read side: rows turned into what people and clients see.

Nothing here writes. Labels come from the catalog in the reader's language;
lights are computed from the SLA at the clock's "now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import and_, case, func, or_, select

from callcenter.domain.errors import InvalidInput, NotFound
from callcenter.domain.ids import parse_id
from callcenter.domain.routing import Location, RoutingDecision, classify, route
from callcenter.domain.textsearch import narrowest, query_terms, search_pattern
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
from callcenter.store.db import Conn, Reader
from callcenter.store.queries import rarely_true
from callcenter.store.tables import (
    attachments,
    audit_events,
    calls,
    citizen_identities,
    citizens,
    conversations,
    departments,
    grid_cells,
    inbox,
    jobs,
    mediation_parties,
    mediation_recordings,
    mediations,
    messages,
    surveys,
    throttles,
    ticket_notes,
    ticket_terms,
    tickets,
    users,
)


def visible_to(actor: Actor | None, row: Any) -> bool:
    """Department staff see only their own department's tickets; everyone else sees all."""
    if actor is None or actor.role is not Role.DEPARTMENT:
        return True
    return actor.department_id is not None and row.department_id == actor.department_id


async def ticket_by_ref(conn: Reader, ref: int | str) -> Any:
    """A ticket by id or by number (``20261127-0042``), or None."""
    text = str(ref)[:40]
    query = select(tickets)
    ticket_id = parse_id(text)
    if ticket_id is not None:
        query = query.where(or_(tickets.c.id == ticket_id, tickets.c.number == text))
    else:
        query = query.where(tickets.c.number == text)
    return (await conn.execute(query)).first()


class DepartmentRef(TypedDict):
    id: int
    code: str
    kind: str
    name: str


class CategoryRef(TypedDict):
    id: int
    code: str
    name: str


class TicketLocation(TypedDict):
    address: str | None
    lat: float | None
    lon: float | None
    grid_cell: str | None
    street: DepartmentRef | None
    district: DepartmentRef | None


class ExtensionRequest(TypedDict):
    days: int
    reason: str | None


class TicketView(TypedDict):
    """A ticket as the API answers it and the pages show it (:func:`ticket_view`)."""

    id: int
    number: str
    type: str
    type_label: str
    priority: str
    state: str
    state_label: str
    category: CategoryRef | None
    title: str
    description: str
    citizen_id: int | None
    conversation_id: int | None
    origin_channel: str
    locale: str
    location: TicketLocation
    department: DepartmentRef | None
    routing: dict[str, Any] | None
    routing_explanation: str
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    sign_due_at: datetime | None
    accepted_at: datetime | None
    due_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    reply: str | None
    closure: str | None
    light: str | None
    sign_light: str | None
    handle_light: str | None
    extension_days: int
    extension_request: ExtensionRequest | None
    return_count: int
    reopen_count: int
    urge_count: int
    supervised: bool
    merged_into_id: int | None
    last_reason: str | None
    version: int
    allowed_steps: list[str]


class HistoryActor(TypedDict):
    id: int | None
    role: str
    name: str


class HistoryEntry(TypedDict):
    """One audit event of a ticket, as its history shows it."""

    seq: int
    at: datetime
    action: str
    actor: HistoryActor
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None


class TicketDetail(TicketView):
    """A ticket with its history (``GET /api/tickets/{ticket}``)."""

    history: list[HistoryEntry]


class ConversationView(TypedDict):
    """A conversation as the API and the desk's live events carry it."""

    id: int
    citizen_id: int
    channel: str
    address: str
    state: str
    queue: str | None
    agent_id: int | None
    ticket_id: int | None
    locale: str
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    closed_at: datetime | None
    last_message_at: datetime | None


class MessageView(TypedDict):
    """A message as the API, the desk and the web chat carry it."""

    id: int
    conversation_id: int | None
    channel: str
    direction: str
    body: str
    status: str
    kind: str
    provider_id: str | None
    author_id: int | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None


class ConversationDetail(ConversationView):
    """A conversation with all its messages (``GET /api/conversations/{id}``)."""

    messages: list[MessageView]


def department_ref(rt: Runtime, dept_id: int | None, locale: str) -> DepartmentRef | None:
    dept = rt.directory.by_id.get(dept_id) if dept_id is not None else None
    if dept is None:
        return None
    return {"id": dept.id, "code": dept.code, "kind": dept.kind, "name": dept.name(locale)}


def category_ref(rt: Runtime, category_id: int | None, locale: str) -> CategoryRef | None:
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
) -> TicketView:
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
    if FINAL_STATE_VALUES & set(states):
        return condition
    return rarely_true(rt.db, condition)


def _ticket_conditions(
    rt: Runtime,
    f: TicketFilter,
    actor: Actor | None,
    now: datetime,
    pairs: list[int] | None = None,
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
        conditions.append(text_condition(f.q, pairs))
    if f.extension_pending is not None:
        pending = tickets.c.extension_request_days.is_not(None)
        conditions.append(pending if f.extension_pending else ~pending)
    if f.created_from is not None:
        conditions.append(tickets.c.created_at >= f.created_from)
    if f.created_to is not None:
        conditions.append(tickets.c.created_at < f.created_to)
    return conditions


NUMBER_CHARACTERS = frozenset("0123456789-")  # a ticket number: 20261127-0042


COUNT_CAP = 20_000  # how far the tickets holding each pair are counted, to pick two
COUNTED_PAIRS = 16  # of a long text, this many pairs spread along it are counted


async def text_pairs(conn: Conn, q: str) -> list[int] | None:
    """The pairs of ``q``'s characters that the search looks up (see
    ``textsearch.narrowest``); None when none can narrow it."""
    terms = query_terms(q)
    if terms is None or len(terms) == 1:
        return terms
    if len(terms) > COUNTED_PAIRS:  # any of its pairs narrows it: a pasted page need not
        step = len(terms) / COUNTED_PAIRS
        terms = [terms[int(n * step)] for n in range(COUNTED_PAIRS)]
    counted = [
        select(func.count())
        .select_from(
            select(ticket_terms.c.ticket_id)
            .where(ticket_terms.c.term == term)
            .limit(COUNT_CAP)
            .subquery()
        )
        .scalar_subquery()
        for term in terms
    ]
    counts = (await conn.execute(select(*counted))).one()
    return narrowest(terms, [int(c) for c in counts])


def text_condition(q: str, pairs: list[int] | None) -> Any:
    """Tickets whose number, title, description or address contains ``q``: ``LIKE``
    decides, on the tickets that hold the ``pairs`` of ``q``'s characters (from
    :func:`text_pairs`, found by the ``ticket_terms`` index, see
    ``callcenter.domain.textsearch``), so the answer is the ``LIKE``'s own. A number
    holds only digits and dashes: other text needs not look at it. With no pairs (one
    character) every ticket is read, as by the ``LIKE`` alone."""
    pattern = f"%{search_pattern(q)}%"
    matches = or_(
        tickets.c.number.like(pattern),
        tickets.c.title.like(pattern),
        tickets.c.description.like(pattern),
        tickets.c.address.like(pattern),
    )
    if not pairs:
        return matches
    # the rarest pair's tickets, each looked up under the other pair (a join on the
    # index: PostgreSQL merges the two, SQLite seeks the second for each of the first)
    rare = ticket_terms.alias("rare")
    holding: Any = select(rare.c.ticket_id).where(rare.c.term == pairs[0])
    for n, term in enumerate(pairs[1:]):
        other = ticket_terms.alias(f"other{n}")
        holding = holding.join_from(
            rare, other, and_(other.c.ticket_id == rare.c.ticket_id, other.c.term == term)
        )
    candidates: Any = tickets.c.id.in_(holding)
    if set(search_pattern(q)) <= NUMBER_CHARACTERS:
        candidates = or_(tickets.c.number.like(pattern), candidates)
    return and_(candidates, matches)


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
    pairs = await text_pairs(conn, f.q) if f.q else None
    conditions = _ticket_conditions(rt, f, actor, now, pairs)
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


async def ticket_detail(
    rt: Runtime,
    ref: int | str,
    *,
    actor: Actor | None,
    locale: str,
    check_visible: bool = True,
) -> TicketDetail:
    """A ticket with its history, as the API answers it (after a step too: a department
    that just returned a ticket no longer sees it, but sees what it did)."""
    async with rt.db.read() as conn:
        row = await ticket_by_ref(conn, ref)
        if row is None or (check_visible and not visible_to(actor, row)):
            raise NotFound("ticket_not_found", ticket=str(ref))
        history = await ticket_history(conn, row.id)
    return {**ticket_view(rt, row, locale, actor=actor), "history": history}


async def ticket_history(conn: Conn, ticket_id: int) -> list[HistoryEntry]:
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


def conversation_view(row: Any) -> ConversationView:
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


def message_view(row: Any) -> MessageView:
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


class Identity(TypedDict):
    kind: str
    value: str


class CallSummary(TypedDict):
    id: int
    conversation_id: int
    from_number: str | None
    started_at: datetime
    ended_at: datetime | None
    transcript: str | None
    outcome: str | None


class CitizenProfile(TypedDict):
    """A citizen with their identities, conversations and calls (the desk, the API)."""

    id: int
    name: str | None
    phone: str | None
    locale: str
    created_at: datetime
    identities: list[Identity]
    conversations: list[ConversationView]
    calls: list[CallSummary]


class CitizenWithTickets(CitizenProfile):
    """A citizen's profile and their tickets, newest first (``GET /api/citizens/{id}``)."""

    tickets: list[TicketView]


class Contact(TypedDict):
    """How to call a ticket's citizen back."""

    name: str | None
    phones: list[str]
    locale: str


async def citizen_profile(conn: Conn, citizen_id: int) -> CitizenProfile | None:
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


async def citizen_ticket(conn: Reader, citizen_id: int, number: str) -> Any:
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


async def ticket_contact(conn: Conn, citizen_id: int | None) -> Contact | None:
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


async def provider_ids_recorded(conn: Conn, channel: str, provider_ids: list[str]) -> set[str]:
    """Which of the provider's message ids a channel's messages already carry."""
    rows = await conn.execute(
        select(messages.c.provider_id).where(
            messages.c.channel == channel, messages.c.provider_id.in_(provider_ids)
        )
    )
    return {str(found) for found in rows.scalars()}


async def citizens_sharing_phone(
    conn: Conn, citizen_id: int, phone: str, *, limit: int
) -> list[int]:
    """Other citizens with the same phone number, newest first (the same person, likely)."""
    rows = await conn.execute(
        select(citizens.c.id)
        .where(citizens.c.phone == phone, citizens.c.id != citizen_id)
        .order_by(citizens.c.id.desc())
        .limit(limit)
    )
    return [int(found) for found in rows.scalars()]


async def grid_cell_rows(conn: Conn) -> list[Any]:
    """Every grid cell with its polygon, in id order (the map and ``GET /api/grid``)."""
    return list((await conn.execute(select(grid_cells).order_by(grid_cells.c.id))).all())


async def mediation_by_id(conn: Conn, mediation_id: int) -> Any:
    return (await conn.execute(select(mediations).where(mediations.c.id == mediation_id))).first()


async def mediation_party_by_id(conn: Conn, party_id: int) -> Any:
    return (
        await conn.execute(select(mediation_parties).where(mediation_parties.c.id == party_id))
    ).first()


async def user_by_token_hash(conn: Conn, hashed: str) -> Any:
    """The member of staff whose API token hashes to ``hashed``, if any."""
    return (await conn.execute(select(users).where(users.c.token_hash == hashed))).first()


async def user_by_id(conn: Conn, user_id: int) -> Any:
    return (await conn.execute(select(users).where(users.c.id == user_id))).first()


async def throttle_by_key(conn: Reader, key: str) -> Any:
    """A rate limit's counter (``throttles``), if it was ever counted."""
    return (await conn.execute(select(throttles).where(throttles.c.key == key))).first()


async def job_counts(conn: Conn) -> dict[str, int]:
    """How many jobs are in each state."""
    rows = await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
    return {str(state): int(count) for state, count in rows.all()}


async def recent_jobs(conn: Conn, *, state: str | None, limit: int) -> list[Any]:
    """The newest jobs (in ``state``, if named), for the operator's ``callcenter jobs``."""
    query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if state:
        query = query.where(jobs.c.state == state)
    return list((await conn.execute(query)).all())


async def inbox_counts(conn: Conn) -> dict[str, int]:
    """How many inbound texts the inbox holds in each state."""
    rows = await conn.execute(select(inbox.c.state, func.count()).group_by(inbox.c.state))
    return {str(state): int(count) for state, count in rows.all()}


async def failed_texts(conn: Conn, *, limit: int) -> list[Any]:
    """Inbound texts whose handling failed, oldest first (``callcenter inbox``)."""
    query = select(inbox).where(inbox.c.state == "failed").order_by(inbox.c.id).limit(limit)
    return list((await conn.execute(query)).all())


async def mediation_recordings_of(conn: Conn, mediation_id: int) -> list[Any]:
    query = select(mediation_recordings).where(mediation_recordings.c.mediation_id == mediation_id)
    return list((await conn.execute(query)).all())


async def mediation_recording_by_id(conn: Conn, recording_id: int) -> Any:
    query = select(mediation_recordings).where(mediation_recordings.c.id == recording_id)
    return (await conn.execute(query)).first()


async def mediation_list(
    conn: Conn,
    *,
    states: Sequence[str] | None,
    of_department: bool,
    department_id: int | None,
    mediator_id: int | None,
) -> list[Any]:
    """Mediations (with their ticket's number and department), soonest first, at most 200:
    in ``states`` if given; ``of_department``: only the tickets of ``department_id`` and
    the cases ``mediator_id`` mediates."""
    query = select(mediations, tickets.c.number, tickets.c.department_id).join(
        tickets, tickets.c.id == mediations.c.ticket_id
    )
    if states is not None:
        query = query.where(mediations.c.state.in_(list(states)))
    if of_department:
        query = query.where(
            (tickets.c.department_id == department_id) | (mediations.c.mediator_id == mediator_id)
        )
    query = query.order_by(mediations.c.scheduled_at, mediations.c.id).limit(200)
    return list((await conn.execute(query)).all())


async def department_count(conn: Conn) -> int:
    """How many departments the directory holds (none: a fresh database)."""
    return int(await conn.scalar(select(func.count()).select_from(departments)) or 0)


async def outbound_messages(
    conn: Conn, *, limit: int, conversation_id: int | None = None, after: int | None = None
) -> list[Any]:
    """The newest outbound messages to citizens (with the address), newest first: of one
    conversation if named, after message id ``after`` if given."""
    query = (
        select(messages, conversations.c.address)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.direction == "out")
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    if conversation_id is not None:
        query = query.where(messages.c.conversation_id == conversation_id)
    if after is not None:
        query = query.where(messages.c.id > after)
    return list((await conn.execute(query)).all())
