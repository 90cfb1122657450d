"""Ticket endpoints: create, list, show with history, and one endpoint per workflow step."""

from __future__ import annotations

from typing import Any

from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import (
    STEP_BODIES,
    LangQuery,
    RoutingOut,
    RoutingQuery,
    TicketCreate,
    TicketDetailOut,
    TicketListOut,
    TicketQuery,
)
from callcenter.domain.errors import InvalidInput
from callcenter.domain.routing import Location
from callcenter.domain.workflow import WORKFLOW, Role, Step, TicketState
from callcenter.views import (
    TicketDetail,
    TicketFilter,
    list_tickets,
    routing_suggestion,
    ticket_detail,
    ticket_view,
)

STAFF = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN}
DESK = {Role.AGENT, Role.SUPERVISOR}


async def _detail(ctx: Context, ref: int | str, *, check_visible: bool = True) -> TicketDetail:
    return await ticket_detail(
        ctx.rt, ref, actor=ctx.actor, locale=ctx.locale, check_visible=check_visible
    )


@endpoint(
    "GET",
    "/tickets",
    summary="List tickets (urgent first, then by deadline)",
    tag="tickets",
    roles=STAFF,
    query=TicketQuery,
    response=TicketListOut,
    errors=(400, 401, 403),
)
async def list_tickets_endpoint(ctx: Context) -> dict[str, Any]:
    q: TicketQuery = ctx.query
    states = [s.strip() for s in (q.state or "").split(",") if s.strip()]
    for state in states:
        if state not in TicketState.__members__.values():
            raise InvalidInput("invalid_choice", field="state", choices=", ".join(TicketState))
    f = TicketFilter(
        states=states,
        department_id=q.department_id,
        category=q.category,
        type=q.type.value if q.type else None,
        priority=q.priority.value if q.priority else None,
        citizen_id=q.citizen_id,
        overdue=q.overdue,
        q=q.q,
        created_from=q.created_from,
        created_to=q.created_to,
        open_only=bool(q.open),
    )
    async with ctx.rt.db.read() as conn:
        rows, total = await list_tickets(
            conn, ctx.rt, f, actor=ctx.actor, page=q.page, per_page=q.per_page, sort=q.sort
        )
    now = ctx.rt.clock.now()
    return {
        "items": [ticket_view(ctx.rt, r, ctx.locale, actor=ctx.actor, now=now) for r in rows],
        "page": {"page": q.page, "per_page": q.per_page, "total": total},
    }


@endpoint(
    "POST",
    "/tickets",
    summary="Open a ticket (routed; dispatched at once if asked)",
    tag="tickets",
    roles=DESK,
    body=TicketCreate,
    response=TicketDetailOut,
    status=201,
    errors=(400, 401, 403),
)
async def create_ticket_endpoint(ctx: Context) -> TicketDetail:
    body: TicketCreate = ctx.body
    draft = TicketDraft(
        description=body.description,
        type=body.type.value if body.type else None,
        category=body.category,
        priority=body.priority.value if body.priority else None,
        title=body.title,
        address=body.address,
        lat=body.lat,
        lon=body.lon,
        citizen_id=body.citizen_id,
        conversation_id=body.conversation_id,
        origin_channel=body.origin_channel,
        locale=ctx.locale,
    )
    ticket = await create_ticket(ctx.rt, draft, actor=ctx.require_actor(), dispatch=body.dispatch)
    return await _detail(ctx, ticket["id"])


@endpoint(
    "GET",
    "/tickets/{ticket}",
    summary="One ticket by id or number, with its full history",
    tag="tickets",
    roles=STAFF,
    query=LangQuery,
    response=TicketDetailOut,
    errors=(401, 403, 404),
)
async def show_ticket(ctx: Context) -> TicketDetail:
    return await _detail(ctx, ctx.params["ticket"])


def _step_endpoint(step: Step) -> None:
    rule = WORKFLOW[step]
    roles = set(rule.roles) - {Role.SYSTEM}

    async def take(ctx: Context) -> TicketDetail:
        body = ctx.body.model_dump(exclude_none=True)
        version = body.pop("version", None)
        ticket = await take_step(
            ctx.rt,
            ctx.params["ticket"],
            step,
            actor=ctx.require_actor(),
            expected_version=version,
            **body,
        )
        # a department that just returned the ticket no longer sees it, but sees what it did
        return await _detail(ctx, ticket["id"], check_visible=False)

    take.__name__ = f"ticket_{step.value}"
    roles_text = ", ".join(sorted(r.value for r in roles))
    sources = ", ".join(sorted(s.value for s in rule.sources))
    target = rule.target.value if rule.target else "unchanged"
    endpoint(
        "POST",
        f"/tickets/{{ticket}}/{step.value}",
        summary=f"Workflow step {step.value}: from {sources} to {target} (roles: {roles_text})",
        tag="workflow",
        roles=roles,
        body=STEP_BODIES[step],
        response=TicketDetailOut,
        errors=(400, 401, 403, 404, 409),
    )(take)


for _step in Step:
    _step_endpoint(_step)


@endpoint(
    "POST",
    "/routing/suggest",
    summary="Suggest category and department for a text and place",
    tag="tickets",
    roles={Role.AGENT, Role.SUPERVISOR, Role.ADMIN},
    body=RoutingQuery,
    response=RoutingOut,
    errors=(400, 401, 403),
)
async def suggest_routing(ctx: Context) -> dict[str, Any]:
    body: RoutingQuery = ctx.body
    return routing_suggestion(
        ctx.rt,
        body.description,
        ctx.locale,
        category_code=body.category,
        location=Location(body.address, body.lat, body.lon),
    )
