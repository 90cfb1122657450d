"""Read side of the agent desk: one agent's presence, offers and conversations; who waits
in the queues; the options a desk offers. Nothing here writes; the JSON API and the
staff pages both read through these."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import select

from callcenter.queueing import (
    agent_views,
    held_conversations,
    pending_offers,
    spots,
    waiting_contacts,
    waiting_entries,
)
from callcenter.runtime import Runtime
from callcenter.store.db import Conn
from callcenter.store.tables import citizens, conversations, users
from callcenter.views import ConversationView, conversation_view


class AgentRow(TypedDict):
    """An agent as the ACD page and ``GET /api/acd/agents`` show them."""

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


class OfferRow(TypedDict):
    id: int
    conversation_id: int
    queue: str
    state: str
    created_at: datetime
    expires_at: datetime


class HeldConversation(ConversationView):
    citizen_name: str | None


class AssignedConversation(HeldConversation):
    agent_name: str


class WaitingRow(TypedDict):
    """A conversation waiting for an agent, with its place in line."""

    entry_id: int
    conversation_id: int
    queue: str
    channel: str
    language: str
    category: str | None
    queued_at: datetime
    waited_seconds: float
    position: int
    offered_to: int | None
    citizen_name: str | None


class Choice(TypedDict):
    code: str
    label: str


class CannedReply(Choice):
    text: str


class DeskOptions(TypedDict):
    queues: list[Choice]
    wrap_up_codes: list[Choice]
    canned_replies: list[CannedReply]
    presence: list[Choice]


async def agent_rows(conn: Conn, rt: Runtime, locale: str, now: datetime) -> list[AgentRow]:
    """Every agent with presence, state, load and skills, by id."""
    views = await agent_views(conn, rt, now)
    names = {
        r.id: r
        for r in (await conn.execute(select(users.c.id, users.c.display_name, users.c.role)))
    }
    label = rt.catalog.label
    out: list[AgentRow] = []
    for v in sorted(views, key=lambda a: a.agent_id):
        presence = v.presence_at(now).value
        state = v.state(now)
        user = names.get(v.agent_id)
        out.append(
            {
                "agent_id": v.agent_id,
                "name": user.display_name if user else str(v.agent_id),
                "role": user.role if user else "agent",
                "presence": presence,
                "presence_label": label("presence", presence, locale),
                "state": state,
                "state_label": label("presence", state, locale),
                "presence_since": v.available_since(now),
                "wrap_up_until": v.wrap_up_until if presence == "wrap_up" else None,
                "capacity": v.capacity,
                "active": v.active,
                "pending": v.pending,
                "contacts_today": v.contacts_today,
                "languages": sorted(v.languages),
                "categories": sorted(v.categories),
                "queues": sorted(v.queues),
            }
        )
    return out


async def my_offers(conn: Conn, agent_id: int | None) -> list[OfferRow]:
    return [
        {
            "id": o.id,
            "conversation_id": o.conversation_id,
            "queue": o.queue,
            "state": o.state,
            "created_at": o.created_at,
            "expires_at": o.expires_at,
        }
        for o in await pending_offers(conn, agent_id)
    ]


async def held(conn: Conn, agent_id: int | None) -> list[HeldConversation]:
    """The conversations an agent holds (an open stay in a queue with them)."""
    return [
        {**conversation_view(r), "citizen_name": r.citizen_name}
        for r in await held_conversations(conn, agent_id)
    ]


async def waiting_rows(conn: Conn, rt: Runtime, now: datetime) -> list[WaitingRow]:
    """Conversations waiting for an agent, longest wait first, with their place in line."""
    items = await waiting_entries(conn)
    places = spots(rt, items)
    info = await waiting_contacts(conn, items)
    return [
        {
            "entry_id": w.entry_id,
            "conversation_id": w.conversation_id,
            "queue": w.queue,
            "channel": info[w.conversation_id].channel if w.conversation_id in info else "",
            "language": w.language,
            "category": w.category,
            "queued_at": w.queued_at,
            "waited_seconds": max(0.0, (now - w.queued_at).total_seconds()),
            "position": places[w.conversation_id].position,
            "offered_to": w.offered_to,
            "citizen_name": info[w.conversation_id].name if w.conversation_id in info else None,
        }
        for w in items
    ]


def desk_options(rt: Runtime, locale: str) -> DeskOptions:
    """Queues, wrap-up codes, canned replies and presence states, in ``locale``."""
    return {
        "queues": [
            {"code": q, "label": rt.catalog.label("queue", q, locale)}
            for q in rt.settings.acd.queues
        ],
        "wrap_up_codes": [
            {"code": c, "label": rt.catalog.label("wrap_up", c, locale)}
            for c in rt.settings.acd.wrap_up_codes
        ],
        "canned_replies": [
            {
                "code": c,
                "label": rt.catalog.label("canned_title", c, locale),
                "text": rt.text(f"canned.{c}", locale, hotline=rt.settings.hotline_number),
            }
            for c in rt.settings.acd.canned_replies
        ],
        "presence": [
            {"code": p, "label": rt.catalog.label("presence", p, locale)}
            for p in ("available", "busy", "away")
        ],
    }


async def assigned_conversations(conn: Conn, limit: int = 200) -> list[AssignedConversation]:
    """Conversations agents hold now, with whom (for a supervisor who may take one over)."""
    rows = (
        await conn.execute(
            select(
                conversations,
                citizens.c.name.label("citizen_name"),
                users.c.display_name.label("agent_name"),
            )
            .join(citizens, citizens.c.id == conversations.c.citizen_id)
            .join(users, users.c.id == conversations.c.agent_id)
            .where(conversations.c.state == "assigned")
            .order_by(conversations.c.id)
            .limit(limit)
        )
    ).all()
    return [
        {**conversation_view(r), "citizen_name": r.citizen_name, "agent_name": r.agent_name}
        for r in rows
    ]
