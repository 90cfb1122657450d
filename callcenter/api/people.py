"""Citizens, conversations and messages (the desk's side; not for department staff)."""

from __future__ import annotations

from typing import Any

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
from callcenter.deskviews import citizen_for, conversation_for
from callcenter.domain.errors import NotFound
from callcenter.domain.phone import normalize_phone
from callcenter.domain.privacy import mask_phone
from callcenter.domain.workflow import Role
from callcenter.views import (
    CitizenWithTickets,
    ConversationDetail,
    MessageView,
    TicketFilter,
    citizen_profile,
    citizens_matching,
    conversation_by_id,
    conversation_messages,
    conversation_view,
    list_conversations_page,
    list_tickets,
    message_by_id,
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
    phone = normalize_phone(q.phone, ctx.rt.settings.default_region) if q.phone else None
    async with ctx.rt.db.read() as conn:
        rows = await citizens_matching(conn, phone=phone, name=q.q)
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
    summary="A citizen with identities, conversations, calls and tickets across channels "
    "(numbers in full only for the agent who holds a conversation with them)",
    tag="people",
    roles=DESK,
    query=LangQuery,
    response=CitizenOut,
    errors=(401, 403, 404),
)
async def show_citizen(ctx: Context) -> CitizenWithTickets:
    citizen_id = ctx.int_param("citizen_id")
    async with ctx.rt.db.read() as conn:
        profile = await citizen_profile(conn, citizen_id)
        if profile is None:
            raise NotFound("citizen_not_found", id=citizen_id)
        profile = await citizen_for(conn, ctx.actor, profile)
        rows, _ = await list_tickets(
            conn,
            ctx.rt,
            TicketFilter(citizen_id=citizen_id),
            actor=ctx.actor,
            per_page=100,
            sort="newest",
        )
    return {
        **profile,
        "tickets": [ticket_view(ctx.rt, r, ctx.locale, actor=ctx.actor) for r in rows],
    }


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
    async with ctx.rt.db.read() as conn:
        rows, total = await list_conversations_page(
            conn,
            state=q.state,
            channel=q.channel,
            queue=q.queue,
            citizen_id=q.citizen_id,
            page=q.page,
            per_page=q.per_page,
        )
    return {
        # a list: addresses masked; the conversation itself shows the full one
        "items": [masked_row(conversation_view(r), "address") for r in rows],
        "page": {"page": q.page, "per_page": q.per_page, "total": total},
    }


@endpoint(
    "GET",
    "/conversations/{conversation_id}",
    summary="A conversation with all its messages (the address in full only for the agent "
    "who holds it)",
    tag="people",
    roles=DESK,
    query=LangQuery,
    response=ConversationDetailOut,
    errors=(401, 403, 404),
)
async def show_conversation(ctx: Context) -> ConversationDetail:
    conversation_id = ctx.int_param("conversation_id")
    async with ctx.rt.db.read() as conn:
        row = await conversation_by_id(conn, conversation_id)
        if row is None:
            raise NotFound("conversation_not_found", id=conversation_id)
        items = await conversation_messages(conn, conversation_id)
    return {**conversation_for(ctx.actor, row), "messages": [message_view(m) for m in items]}


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
async def post_message(ctx: Context) -> MessageView:
    conversation_id = ctx.int_param("conversation_id")
    message_id = await send_reply(ctx.rt, conversation_id, ctx.body.body, actor=ctx.require_actor())
    async with ctx.rt.db.read() as conn:
        row = await message_by_id(conn, message_id)
    return message_view(row)
