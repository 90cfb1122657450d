"""Citizens, conversations and messages (the desk's side; not for department staff)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from callcenter.actions.messages import send_reply
from callcenter.actions.privacy import masked_row
from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import (
    CitizenOut,
    CitizenQuery,
    CitizenSummary,
    ConversationDetailOut,
    ConversationListOut,
    ConversationQuery,
    LangQuery,
    MessageCreate,
    MessageOut,
)
from callcenter.domain.errors import NotFound
from callcenter.domain.phone import normalize_phone
from callcenter.domain.privacy import mask_phone
from callcenter.domain.workflow import Role
from callcenter.store.tables import citizen_identities, citizens, conversations, messages
from callcenter.views import (
    TicketFilter,
    citizen_profile,
    conversation_messages,
    conversation_view,
    list_tickets,
    message_view,
    ticket_view,
)

DESK = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}


@endpoint(
    "GET",
    "/citizens",
    summary="Find citizens by phone number or name",
    tag="people",
    roles=DESK,
    query=CitizenQuery,
    response=list[CitizenSummary],
    errors=(400, 401, 403),
)
async def find_citizens(ctx: Context) -> list[dict[str, Any]]:
    q: CitizenQuery = ctx.query
    query = select(citizens).order_by(citizens.c.id.desc()).limit(50)
    if q.phone:
        phone = normalize_phone(q.phone, ctx.rt.settings.default_region)
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
    if q.q:
        query = query.where(citizens.c.name.like(f"%{q.q.replace('%', '')}%"))
    async with ctx.rt.db.read() as conn:
        rows = (await conn.execute(query)).all()
    # a list: numbers masked (the searcher knows the one searched for; the profile shows it)
    return [
        {
            "id": r.id,
            "name": r.name,
            "phone": mask_phone(r.phone),
            "locale": r.locale,
            "created_at": r.created_at,
        }
        for r in rows
    ]


@endpoint(
    "GET",
    "/citizens/{citizen_id}",
    summary="A citizen with identities, conversations, calls and tickets across channels",
    tag="people",
    roles=DESK,
    query=LangQuery,
    response=CitizenOut,
    errors=(401, 403, 404),
)
async def show_citizen(ctx: Context) -> dict[str, Any]:
    citizen_id = ctx.int_param("citizen_id")
    async with ctx.rt.db.read() as conn:
        profile = await citizen_profile(conn, citizen_id)
        if profile is None:
            raise NotFound("citizen_not_found", id=citizen_id)
        rows, _ = await list_tickets(
            conn,
            ctx.rt,
            TicketFilter(citizen_id=citizen_id),
            actor=ctx.actor,
            per_page=100,
            sort="newest",
        )
    profile["tickets"] = [ticket_view(ctx.rt, r, ctx.locale, actor=ctx.actor) for r in rows]
    return profile


@endpoint(
    "GET",
    "/conversations",
    summary="Conversations, newest activity first",
    tag="people",
    roles=DESK,
    query=ConversationQuery,
    response=ConversationListOut,
    errors=(400, 401, 403),
)
async def list_conversations(ctx: Context) -> dict[str, Any]:
    q: ConversationQuery = ctx.query
    conditions = []
    if q.state:
        conditions.append(conversations.c.state == q.state)
    if q.channel:
        conditions.append(conversations.c.channel == q.channel)
    if q.queue:
        conditions.append(conversations.c.queue == q.queue)
    if q.citizen_id is not None:
        conditions.append(conversations.c.citizen_id == q.citizen_id)
    async with ctx.rt.db.read() as conn:
        total = await conn.scalar(
            select(func.count()).select_from(conversations).where(*conditions)
        )
        rows = (
            await conn.execute(
                select(conversations)
                .where(*conditions)
                .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
                .limit(q.per_page)
                .offset((q.page - 1) * q.per_page)
            )
        ).all()
    return {
        # a list: addresses masked; the conversation itself shows the full one
        "items": [masked_row(conversation_view(r), "address") for r in rows],
        "page": {"page": q.page, "per_page": q.per_page, "total": int(total or 0)},
    }


@endpoint(
    "GET",
    "/conversations/{conversation_id}",
    summary="A conversation with all its messages",
    tag="people",
    roles=DESK,
    query=LangQuery,
    response=ConversationDetailOut,
    errors=(401, 403, 404),
)
async def show_conversation(ctx: Context) -> dict[str, Any]:
    conversation_id = ctx.int_param("conversation_id")
    async with ctx.rt.db.read() as conn:
        row = (
            await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
        ).first()
        if row is None:
            raise NotFound("conversation_not_found", id=conversation_id)
        items = await conversation_messages(conn, conversation_id)
    view = conversation_view(row)
    view["messages"] = [message_view(m) for m in items]
    return view


@endpoint(
    "POST",
    "/conversations/{conversation_id}/messages",
    summary="Write to the citizen on the conversation's channel (delivered through the outbox)",
    tag="people",
    roles={Role.AGENT, Role.SUPERVISOR},
    body=MessageCreate,
    response=MessageOut,
    status=201,
    errors=(400, 401, 403, 404, 409),
)
async def post_message(ctx: Context) -> dict[str, Any]:
    conversation_id = ctx.int_param("conversation_id")
    message_id = await send_reply(ctx.rt, conversation_id, ctx.body.body, actor=ctx.require_actor())
    async with ctx.rt.db.read() as conn:
        row = (await conn.execute(select(messages).where(messages.c.id == message_id))).one()
    return message_view(row)
