"""The agent desk: presence, offers, the queue, the conversations I hold, the citizen's
history across channels, replies, tickets, direct answers, transfers and wrap-up.

The page is server-rendered; each part is an htmx fragment fetched again when a live
event names it (``desk.js`` and ``ui.js`` turn websocket events into DOM events).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent_ui.common import (
    DESK,
    error_text,
    not_found,
    page_handler,
    require,
    require_form,
)
from agent_ui.render import render, ui_locale
from callcenter import deskviews
from callcenter.actions import acd
from callcenter.actions.messages import send_reply
from callcenter.actions.tickets import TicketDraft
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import HotlineError, InvalidInput
from callcenter.domain.ids import parse_id, require_id
from callcenter.domain.routing import Location
from callcenter.domain.workflow import Actor, Role, TicketType
from callcenter.runtime import Runtime
from callcenter.store.records import TicketRecord
from callcenter.views import (
    CitizenWithTickets,
    TicketFilter,
    citizen_profile,
    citizens_sharing_phone,
    conversation_by_id,
    conversation_messages,
    conversation_view,
    list_tickets,
    routing_suggestion,
    ticket_view,
)

TICKET_TYPES = tuple(t.value for t in TicketType)


def _rt(request: web.Request) -> Runtime:
    return request.config_dict[RUNTIME]


async def side_context(request: web.Request, actor: Actor) -> dict[str, Any]:
    rt = _rt(request)
    locale = ui_locale(request, actor)
    now = rt.clock.now()
    async with rt.db.read() as conn:
        agents = await deskviews.agent_rows(conn, rt, locale, now)
        offered = await deskviews.my_offers(conn, actor.id)
        held = await deskviews.held(conn, actor.id)
        waiting = await deskviews.waiting_rows(conn, rt, now)
        others = (
            [c for c in await deskviews.assigned_conversations(conn) if c["agent_id"] != actor.id]
            if actor.role is Role.SUPERVISOR
            else []
        )
    return {
        "others": others,
        "can_take_over": actor.role is Role.SUPERVISOR,
        "me": next((a for a in agents if a["agent_id"] == actor.id), None),
        "offers": offered,
        "mine": held,
        "waiting": waiting,
        "options": deskviews.desk_options(rt, locale),
    }


async def conversation_context(
    request: web.Request, actor: Actor, conversation_id: int
) -> dict[str, Any]:
    rt = _rt(request)
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        row = await conversation_by_id(conn, conversation_id)
        if row is None:
            raise await not_found(request, actor)
        items = await conversation_messages(conn, conversation_id)
        profile = await citizen_profile(conn, row.citizen_id)
        agents = await deskviews.agent_rows(conn, rt, locale, rt.clock.now())
        call = (
            await deskviews.call_panel(conn, conversation_id, actor=actor)
            if row.kind == "call"
            else None
        )
    return {
        "call": call,
        "conversation": conversation_view(row),
        "messages": items,
        "citizen": profile,
        "options": deskviews.desk_options(rt, locale),
        "agents": [a for a in agents if a["agent_id"] != actor.id],
        "held": row.agent_id == actor.id and row.state != "closed",
        "wrap_up": "",
    }


def _conversation_id(request: web.Request) -> int:
    return require_id(request.match_info["conversation"], field="conversation_id")


# --- pages and fragments -------------------------------------------------------------------


@page_handler
async def desk_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    context: dict[str, Any] = {"page": "desk", **await side_context(request, actor)}
    raw = request.query.get("c", "")
    selected = parse_id(raw)
    if selected is not None and any(c["id"] == selected for c in context["mine"]):
        context.update(await conversation_context(request, actor, selected))
    context["selected"] = selected if "conversation" in context else None
    media = request.config_dict[RUNTIME].media
    # None: no media server configured, so nothing to say about it
    context["media_up"] = media.healthy if media is not None and media.enabled else None
    return await render(request, "desk.html", actor, context)


@page_handler
async def desk_side(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    return await render(request, "parts/desk_side.html", actor, await side_context(request, actor))


@page_handler
async def desk_conversation(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    context = await conversation_context(request, actor, _conversation_id(request))
    context["history_oob"] = True
    return await render(request, "parts/desk_conversation.html", actor, context)


@page_handler
async def desk_messages(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    context = await conversation_context(request, actor, _conversation_id(request))
    return await render(request, "parts/desk_messages.html", actor, context)


class HistoryBlock(CitizenWithTickets):
    """One record on the desk's history panel; ``same_phone``: another record that gave the
    citizen's number (not verified, so shown apart)."""

    same_phone: bool


async def history_blocks(request: web.Request, actor: Actor, citizen_id: int) -> list[HistoryBlock]:
    """The citizen's record, then other records that gave the same phone number (not
    verified, so shown apart)."""
    rt = _rt(request)
    locale = ui_locale(request, actor)
    blocks: list[HistoryBlock] = []
    async with rt.db.read() as conn:
        profile = await citizen_profile(conn, citizen_id)
        if profile is None:
            return []
        full = await deskviews.holds_citizen(conn, actor, citizen_id)
        ids = [citizen_id]
        if profile["phone"]:
            ids += await citizens_sharing_phone(conn, citizen_id, profile["phone"], limit=5)
        for index, cid in enumerate(ids):
            p = profile if index == 0 else await citizen_profile(conn, cid)
            if p is None:
                continue
            if not full:  # the number in full only for the agent who answers the citizen
                p = await deskviews.citizen_for(conn, None, p)
            rows, _ = await list_tickets(
                conn, rt, TicketFilter(citizen_id=cid), actor=actor, per_page=100, sort="newest"
            )
            views = [ticket_view(rt, r, locale, actor=actor) for r in rows]
            blocks.append({**p, "tickets": views, "same_phone": index > 0})
    return blocks


@page_handler
async def desk_history(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    citizen_id = require_id(request.match_info["citizen"], field="citizen_id")
    blocks = await history_blocks(request, actor, citizen_id)
    return await render(
        request, "parts/desk_history.html", actor, {"blocks": blocks, "citizen_id": citizen_id}
    )


@page_handler
async def desk_old_conversation(request: web.Request) -> web.StreamResponse:
    """An earlier conversation's messages, opened from the history."""
    actor = await require(request, DESK)
    rt = _rt(request)
    conversation_id = _conversation_id(request)
    async with rt.db.read() as conn:
        items = await conversation_messages(conn, conversation_id)
    return await render(request, "parts/desk_message_list.html", actor, {"messages": items})


# --- what an agent does --------------------------------------------------------------------


async def _side_and(
    request: web.Request,
    actor: Actor,
    *,
    conversation_id: int | None = None,
    clear_conversation: bool = False,
    notice: str = "",
) -> web.Response:
    """The side panel, and (out of band) the conversation panel and a notice."""
    context = await side_context(request, actor)
    if conversation_id is not None:
        context.update(await conversation_context(request, actor, conversation_id))
        context["oob_conversation"] = True
    context["clear_conversation"] = clear_conversation
    if notice:
        context.update(notice=notice, notice_kind="ok", oob=True)
    response = await render(request, "parts/desk_side.html", actor, context)
    if conversation_id is not None:
        response.headers["HX-Push-Url"] = f"/ui/desk?c={conversation_id}"
    elif clear_conversation:
        response.headers["HX-Push-Url"] = "/ui/desk"
    return response


@page_handler
async def post_presence(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    await acd.set_presence(_rt(request), str(form.get("presence", "")), actor=actor)
    return await _side_and(request, actor)


@page_handler
async def post_offer(request: web.Request) -> web.StreamResponse:
    actor, _ = await require_form(request, DESK)
    offer_id = parse_id(request.match_info["offer"])
    how = request.match_info["how"]
    if offer_id is None or how not in ("accept", "decline"):
        raise await not_found(request, actor)
    rt = _rt(request)
    if how == "decline":
        await acd.decline_offer(rt, offer_id, actor=actor)
        return await _side_and(request, actor)
    offer = await acd.accept_offer(rt, offer_id, actor=actor)
    return await _side_and(request, actor, conversation_id=int(offer["id"]))


@page_handler
async def post_reply(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    conversation_id = _conversation_id(request)
    text = str(form.get("body", ""))
    context = await conversation_context(request, actor, conversation_id)
    try:
        await send_reply(_rt(request), conversation_id, text, actor=actor)
    except HotlineError as error:
        context.update(body=text, error=error_text(request, error))
        return await render(
            request, "parts/desk_composer.html", actor, context, status=error.status
        )
    context = await conversation_context(request, actor, conversation_id)
    context.update(body="", error="", oob_messages=True)
    return await render(request, "parts/desk_composer.html", actor, context)


@page_handler
async def post_pick(request: web.Request) -> web.StreamResponse:
    """An agent takes a waiting conversation from the queue table."""
    actor, _ = await require_form(request, DESK)
    conversation_id = _conversation_id(request)
    await acd.pick_conversation(_rt(request), conversation_id, actor=actor)
    return await _side_and(request, actor, conversation_id=conversation_id)


@page_handler
async def post_take_over(request: web.Request) -> web.StreamResponse:
    """A supervisor takes a conversation over from its agent (audited)."""
    actor, _ = await require_form(request, DESK)
    conversation_id = _conversation_id(request)
    await acd.take_over_conversation(_rt(request), conversation_id, actor=actor)
    return await _side_and(request, actor, conversation_id=conversation_id)


@page_handler
async def post_transfer(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    target = str(form.get("target", ""))
    kind, _, value = target.partition(":")
    rt = _rt(request)
    if kind == "q" and value:
        await acd.transfer_conversation(
            rt, _conversation_id(request), actor=actor, to_queue=value, to_agent_id=None
        )
    elif kind == "a" and parse_id(value) is not None:
        await acd.transfer_conversation(
            rt, _conversation_id(request), actor=actor, to_queue=None, to_agent_id=parse_id(value)
        )
    else:
        raise InvalidInput("missing_field", field="target")
    return await _side_and(
        request,
        actor,
        clear_conversation=True,
        notice=rt.text("ui.desk.transferred", ui_locale(request, actor)),
    )


@page_handler
async def post_end(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    rt = _rt(request)
    await acd.end_conversation(
        rt, _conversation_id(request), wrap_up_code=str(form.get("wrap_up_code", "")), actor=actor
    )
    return await _side_and(
        request,
        actor,
        clear_conversation=True,
        notice=rt.text("ui.desk.ended", ui_locale(request, actor)),
    )


# --- tickets from a conversation -------------------------------------------------------------


def citizen_text(items: list[Any]) -> str:
    return "\n".join(m.body for m in items if m.direction == "in")[:4000]


def _draft_values(form: Any) -> dict[str, str]:
    names = ("title", "description", "category", "type", "priority", "address", "lat", "lon")
    return {name: str(form.get(name, "")) for name in names}


def _coordinate(values: dict[str, str], name: str) -> float | None:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput("invalid_field", field=name) from None


def draft_from(values: dict[str, str]) -> TicketDraft:
    ticket_type = values.get("type") or None
    if ticket_type is not None and ticket_type not in TICKET_TYPES:
        raise InvalidInput("invalid_choice", field="type", choices=", ".join(TICKET_TYPES))
    return TicketDraft(
        description=values.get("description", ""),
        title=values.get("title") or None,
        type=ticket_type,
        category=values.get("category") or None,
        priority=values.get("priority") or None,
        address=values.get("address") or None,
        lat=_coordinate(values, "lat"),
        lon=_coordinate(values, "lon"),
    )


async def ticket_form_context(
    request: web.Request, actor: Actor, conversation_id: int, values: dict[str, str] | None
) -> dict[str, Any]:
    rt = _rt(request)
    locale = ui_locale(request, actor)
    context = await conversation_context(request, actor, conversation_id)
    if values is None:
        values = {"description": citizen_text(context["messages"])}
    context.update(
        values=values,
        categories=sorted(rt.directory.categories, key=lambda c: c.code),
        ticket_types=TICKET_TYPES,
        error="",
        locale=locale,
    )
    return context


@page_handler
async def ticket_form(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    kind = request.match_info["kind"]
    context = await ticket_form_context(request, actor, _conversation_id(request), None)
    template = "parts/desk_answer_form.html" if kind == "answer" else "parts/desk_ticket_form.html"
    return await render(request, template, actor, context)


@page_handler
async def suggest(request: web.Request) -> web.StreamResponse:
    """The routing suggestion for what the form holds now, and why."""
    actor, form = await require_form(request, DESK)
    values = _draft_values(form)
    try:
        draft = draft_from(values)
        found = routing_suggestion(
            _rt(request),
            draft.description,
            ui_locale(request, actor),
            category_code=draft.category,
            location=Location(draft.address, draft.lat, draft.lon),
        )
    except HotlineError as error:
        found = {"error": error_text(request, error)}
    return await render(request, "parts/desk_suggestion.html", actor, {"s": found})


@page_handler
async def post_ticket(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    rt = _rt(request)
    conversation_id = _conversation_id(request)
    values = _draft_values(form)
    locale = ui_locale(request, actor)
    try:
        ticket = await acd.ticket_from_conversation(
            rt, conversation_id, draft_from(values), actor=actor, dispatch=True
        )
    except HotlineError as error:
        return await _form_again(request, actor, conversation_id, values, "ticket", error)
    return await _after_ticket(request, actor, conversation_id, ticket, "ticket_created", locale)


@page_handler
async def post_answer(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, DESK)
    rt = _rt(request)
    conversation_id = _conversation_id(request)
    values = {**_draft_values(form), "answer": str(form.get("answer", ""))}
    locale = ui_locale(request, actor)
    try:
        ticket = await acd.answer_directly(
            rt,
            conversation_id,
            description=values["description"],
            answer=values["answer"],
            category=values.get("category") or None,
            actor=actor,
        )
    except HotlineError as error:
        return await _form_again(request, actor, conversation_id, values, "answer", error)
    return await _after_ticket(request, actor, conversation_id, ticket, "direct_answer", locale)


async def _form_again(
    request: web.Request,
    actor: Actor,
    conversation_id: int,
    values: dict[str, str],
    kind: str,
    error: HotlineError,
) -> web.Response:
    """The form as it was sent, with the reason it failed."""
    context = await ticket_form_context(request, actor, conversation_id, values)
    context["error"] = error_text(request, error)
    template = f"parts/desk_{kind}_form.html"
    return await render(request, template, actor, context, status=error.status)


async def _after_ticket(
    request: web.Request,
    actor: Actor,
    conversation_id: int,
    ticket: TicketRecord,
    wrap_up: str,
    locale: str,
) -> web.Response:
    """The panel closes; the notice names the ticket; the wrap-up code is chosen; the
    citizen's history is fetched again."""
    rt = _rt(request)
    context = await conversation_context(request, actor, conversation_id)
    context.update(
        wrap_up=wrap_up,
        notice=rt.text("ui.ticket.created", locale, number=ticket["number"]),
        notice_kind="ok",
        oob=True,
    )
    response = await render(request, "parts/desk_after_ticket.html", actor, context)
    response.headers["HX-Trigger"] = json.dumps({"history-changed": {"number": ticket["number"]}})
    return response
