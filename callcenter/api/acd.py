"""The agents' side of the API: presence, offers, the queue, and what a conversation becomes
(transfer, wrap-up, a ticket, a direct answer). See ``docs/acd.md``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from callcenter import deskviews
from callcenter.actions import agents, calls, conversation_tickets, desk
from callcenter.actions.tickets import TicketDraft
from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import Id, LangQuery, Strict, TicketDetailOut
from callcenter.domain.errors import Conflict, NotFound
from callcenter.domain.workflow import Priority, Role, TicketType
from callcenter.views import TicketDetail, ticket_detail

DESK = {Role.AGENT, Role.SUPERVISOR}
DESK_READ = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}
SUPERVISORS = {Role.SUPERVISOR, Role.ADMIN}


class PresenceIn(Strict):
    presence: str


class AgentConfigIn(Strict):
    capacity: int | None = Field(default=None, ge=1, le=50)
    languages: list[str] | None = None
    categories: list[str] | None = None
    queues: list[str] | None = None
    voice: bool | None = None  # the voice skill: takes calls


class AgentOut(BaseModel):
    agent_id: int
    name: str
    role: str
    presence: str
    presence_label: str
    state: str
    state_label: str
    presence_since: datetime
    wrap_up_until: datetime | None
    capacity: int
    active: int
    pending: int
    contacts_today: int
    languages: list[str]
    categories: list[str]
    queues: list[str]
    voice: bool


class OfferOut(BaseModel):
    id: int
    conversation_id: int
    queue: str
    channel: str
    address: str | None  # the citizen's address, masked
    state: str
    created_at: datetime
    expires_at: datetime
    kind: str


class WaitingOut(BaseModel):
    entry_id: int
    conversation_id: int
    queue: str
    channel: str
    address: str | None  # the citizen's address, masked
    language: str
    category: str | None
    queued_at: datetime
    waited_seconds: float
    position: int
    offered_to: int | None
    citizen_name: str | None = None


class DeskOut(BaseModel):
    agent: AgentOut | None
    offers: list[OfferOut]
    conversations: list[dict[str, Any]]


class OptionsOut(BaseModel):
    queues: list[dict[str, str]]
    wrap_up_codes: list[dict[str, str]]
    canned_replies: list[dict[str, str]]
    presence: list[dict[str, str]]


class TransferIn(Strict):
    to_queue: str | None = None
    to_agent_id: Id | None = None


class WrapUpIn(Strict):
    wrap_up_code: str


class HoldIn(Strict):
    on_hold: bool


class CallOut(BaseModel):
    call_id: int
    conversation_id: int
    caller: str | None
    locale: str
    path: list[str]
    dtmf: str
    transcript: str | None
    queue_wait_s: float | None
    agent_answered_at: datetime | None
    on_hold: bool
    hold_s: float | None
    outcome: str | None
    ended: bool
    history: list[dict[str, Any]]


class SoftphoneOut(BaseModel):
    server: str
    token: str
    uri: str
    identity: str


class ConversationTicketIn(Strict):
    description: str = Field(max_length=4000)
    type: TicketType | None = None
    category: str | None = None
    priority: Priority | None = None
    title: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=400)
    lat: float | None = None
    lon: float | None = None
    dispatch: bool = True


class DirectAnswerIn(Strict):
    description: str = Field(max_length=4000)
    answer: str = Field(max_length=4000)
    category: str | None = None


async def agents_out(ctx: Context) -> list[deskviews.AgentRow]:
    async with ctx.rt.db.read() as conn:
        return await deskviews.agent_rows(conn, ctx.rt, ctx.locale, ctx.rt.clock.now())


@endpoint(
    "GET",
    "/acd/me",
    summary="The calling agent's presence, pending offers and the conversations they hold",
    tag="acd",
    roles=DESK,
    query=LangQuery,
    response=DeskOut,
    errors=(401, 403),
)
async def my_desk(ctx: Context) -> dict[str, Any]:
    actor = ctx.require_actor()
    agents = await agents_out(ctx)
    async with ctx.rt.db.read() as conn:
        offered = await deskviews.my_offers(conn, actor.id)
        held = await deskviews.held(conn, actor.id)
    return {
        "agent": next((a for a in agents if a["agent_id"] == actor.id), None),
        "offers": offered,
        "conversations": held,
    }


@endpoint(
    "POST",
    "/acd/presence",
    summary="Set the calling agent's presence: available, busy or away",
    tag="acd",
    roles=DESK,
    body=PresenceIn,
    response=AgentOut,
    errors=(400, 401, 403),
)
async def post_presence(ctx: Context) -> deskviews.AgentRow:
    actor = ctx.require_actor()
    await agents.set_presence(ctx.rt, ctx.body.presence, actor=actor)
    return next(a for a in await agents_out(ctx) if a["agent_id"] == actor.id)


@endpoint(
    "GET",
    "/acd/agents",
    summary="Agents with presence, state, load and skills",
    tag="acd",
    roles=DESK_READ,
    query=LangQuery,
    response=list[AgentOut],
    errors=(401, 403),
)
async def list_agents(ctx: Context) -> list[deskviews.AgentRow]:
    return await agents_out(ctx)


@endpoint(
    "PUT",
    "/acd/agents/{agent_id}",
    summary="Set an agent's capacity and skills (languages, categories, queues, voice)",
    tag="acd",
    roles=SUPERVISORS,
    body=AgentConfigIn,
    response=AgentOut,
    errors=(400, 401, 403),
)
async def put_agent(ctx: Context) -> deskviews.AgentRow:
    agent_id = ctx.int_param("agent_id")
    body: AgentConfigIn = ctx.body
    await agents.configure_agent(
        ctx.rt,
        agent_id,
        actor=ctx.require_actor(),
        capacity=body.capacity,
        languages=body.languages,
        categories=body.categories,
        queues=body.queues,
        voice=body.voice,
    )
    return next(a for a in await agents_out(ctx) if a["agent_id"] == agent_id)


@endpoint(
    "GET",
    "/acd/queue",
    summary="Conversations waiting for an agent, longest wait first",
    tag="acd",
    roles=DESK_READ,
    query=LangQuery,
    response=list[WaitingOut],
    errors=(401, 403),
)
async def list_waiting(ctx: Context) -> list[deskviews.WaitingRow]:
    async with ctx.rt.db.read() as conn:
        return await deskviews.waiting_rows(conn, ctx.rt, ctx.rt.clock.now())


@endpoint(
    "GET",
    "/acd/options",
    summary="Queues, wrap-up codes, canned replies and presence states, in the caller's language",
    tag="acd",
    roles=DESK_READ,
    query=LangQuery,
    response=OptionsOut,
    errors=(401, 403),
)
async def options(ctx: Context) -> deskviews.DeskOptions:
    return deskviews.desk_options(ctx.rt, ctx.locale)


@endpoint(
    "POST",
    "/acd/offers/{offer_id}/accept",
    summary="Take the offered conversation",
    tag="acd",
    roles=DESK,
    response=None,
    status=204,
    errors=(401, 403, 404, 409),
)
async def accept(ctx: Context) -> None:
    await desk.accept_offer(ctx.rt, ctx.int_param("offer_id"), actor=ctx.require_actor())


@endpoint(
    "POST",
    "/acd/offers/{offer_id}/decline",
    summary="Pass the offered conversation to the next agent",
    tag="acd",
    roles=DESK,
    response=None,
    status=204,
    errors=(401, 403, 404, 409),
)
async def decline(ctx: Context) -> None:
    await desk.decline_offer(ctx.rt, ctx.int_param("offer_id"), actor=ctx.require_actor())


@endpoint(
    "POST",
    "/conversations/{conversation_id}/transfer",
    summary="Transfer a conversation to another queue or agent",
    tag="acd",
    roles=DESK,
    body=TransferIn,
    response=None,
    status=204,
    errors=(400, 401, 403, 404, 409),
)
async def transfer(ctx: Context) -> None:
    body: TransferIn = ctx.body
    await desk.transfer_conversation(
        ctx.rt,
        ctx.int_param("conversation_id"),
        actor=ctx.require_actor(),
        to_queue=body.to_queue,
        to_agent_id=body.to_agent_id,
    )


@endpoint(
    "POST",
    "/conversations/{conversation_id}/end",
    summary="Close a conversation with a wrap-up code (the agent's wrap-up time starts)",
    tag="acd",
    roles=DESK,
    body=WrapUpIn,
    response=None,
    status=204,
    errors=(400, 401, 403, 404, 409),
)
async def end(ctx: Context) -> None:
    await desk.end_conversation(
        ctx.rt,
        ctx.int_param("conversation_id"),
        wrap_up_code=ctx.body.wrap_up_code,
        actor=ctx.require_actor(),
    )


@endpoint(
    "POST",
    "/conversations/{conversation_id}/ticket",
    summary="Open a ticket from a conversation (routed, dispatched); the citizen gets its number",
    tag="acd",
    roles=DESK,
    body=ConversationTicketIn,
    response=TicketDetailOut,
    status=201,
    errors=(400, 401, 403, 404, 409),
)
async def conversation_ticket(ctx: Context) -> TicketDetail:
    body: ConversationTicketIn = ctx.body
    draft = TicketDraft(
        description=body.description,
        type=body.type.value if body.type else None,
        category=body.category or None,
        priority=body.priority.value if body.priority else None,
        title=body.title,
        address=body.address,
        lat=body.lat,
        lon=body.lon,
    )
    ticket = await conversation_tickets.ticket_from_conversation(
        ctx.rt,
        ctx.int_param("conversation_id"),
        draft,
        actor=ctx.require_actor(),
        dispatch=body.dispatch,
    )
    return await ticket_detail(ctx.rt, ticket["id"], actor=ctx.actor, locale=ctx.locale)


@endpoint(
    "POST",
    "/conversations/{conversation_id}/direct_answer",
    summary="直接答复: answer an inquiry at the desk (a ticket closed at once) and send the answer",
    tag="acd",
    roles=DESK,
    body=DirectAnswerIn,
    response=TicketDetailOut,
    status=201,
    errors=(400, 401, 403, 404, 409),
)
async def conversation_direct_answer(ctx: Context) -> TicketDetail:
    body: DirectAnswerIn = ctx.body
    ticket = await conversation_tickets.answer_directly(
        ctx.rt,
        ctx.int_param("conversation_id"),
        description=body.description,
        answer=body.answer,
        category=body.category or None,
        actor=ctx.require_actor(),
    )
    return await ticket_detail(ctx.rt, ticket["id"], actor=ctx.actor, locale=ctx.locale)


@endpoint(
    "GET",
    "/conversations/{conversation_id}/call",
    summary="A call as the softphone shows it: number, IVR path, keys, transcript, history",
    tag="acd",
    roles=DESK_READ,
    response=CallOut,
    errors=(401, 403, 404, 409),
)
async def get_call(ctx: Context) -> dict[str, Any]:
    conversation_id = ctx.int_param("conversation_id")
    async with ctx.rt.db.read() as conn:
        panel = await deskviews.call_panel(conn, conversation_id, actor=ctx.require_actor())
        if panel is None:
            if not await deskviews.conversation_exists(conn, conversation_id):
                raise NotFound("conversation_not_found", id=conversation_id)
            raise Conflict("not_a_call", id=conversation_id)
    return panel


@endpoint(
    "POST",
    "/conversations/{conversation_id}/call/softphone",
    summary="Bridge the calling agent's softphone to the call they took (Janus SIP plugin)",
    tag="acd",
    roles=DESK,
    response=SoftphoneOut,
    errors=(401, 403, 404, 409, 503),
)
async def softphone(ctx: Context) -> dict[str, Any]:
    return await calls.open_softphone(
        ctx.rt, ctx.int_param("conversation_id"), actor=ctx.require_actor()
    )


@endpoint(
    "POST",
    "/conversations/{conversation_id}/call/hold",
    summary="Put the caller on hold (they hear music) or take them back",
    tag="acd",
    roles=DESK,
    body=HoldIn,
    response=None,
    status=204,
    errors=(400, 401, 403, 404, 409),
)
async def hold(ctx: Context) -> None:
    await calls.hold_call(
        ctx.rt,
        ctx.int_param("conversation_id"),
        on_hold=ctx.body.on_hold,
        actor=ctx.require_actor(),
    )


@endpoint(
    "POST",
    "/conversations/{conversation_id}/call/hangup",
    summary="Hang up the call (the caller's line is ended; wrap-up follows)",
    tag="acd",
    roles=DESK,
    response=None,
    status=204,
    errors=(401, 403, 404, 409),
)
async def hangup(ctx: Context) -> None:
    await calls.hang_up_call(ctx.rt, ctx.int_param("conversation_id"), actor=ctx.require_actor())


@endpoint(
    "POST",
    "/conversations/{conversation_id}/call/listen",
    summary="A supervisor listens in on a call (hears both sides, is not heard; audited)",
    tag="acd",
    roles={Role.SUPERVISOR},
    response=SoftphoneOut,
    errors=(401, 403, 404, 409, 503),
)
async def listen(ctx: Context) -> dict[str, Any]:
    return await calls.open_softphone(
        ctx.rt, ctx.int_param("conversation_id"), actor=ctx.require_actor(), listen=True
    )
