"""Read side of the agent desk: one agent's presence, offers and conversations; who waits
in the queues; the options a desk offers. Nothing here writes; the JSON API and the
staff pages both read through these.

Citizens' numbers: every list here (offers, the queue, the conversations an agent or
the other agents hold) shows them masked (``+86138****5678``, enough to tell two
callers apart); the full number is for the agent who holds a conversation with the
citizen (:func:`holds_citizen`, :func:`citizen_for`), as on the rest of the desk
(docs/security.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import exists, select

from callcenter.domain.privacy import mask_phone
from callcenter.domain.workflow import Actor
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
from callcenter.store.tables import calls, citizens, conversations, messages, users
from callcenter.views import CitizenProfile, ConversationView, conversation_view


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
    voice: bool  # takes calls


class OfferRow(TypedDict):
    id: int
    conversation_id: int
    queue: str
    channel: str
    address: str | None  # the citizen's address, masked
    kind: str  # the conversation's kind (a call or text)
    state: str
    created_at: datetime
    expires_at: datetime


class HeldConversation(ConversationView):
    citizen_name: str | None


class AssignedConversation(HeldConversation):
    agent_name: str
    kind: str


class WaitingRow(TypedDict):
    """A conversation waiting for an agent, with its place in line."""

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
                "voice": v.voice,
            }
        )
    return out


async def my_offers(conn: Conn, agent_id: int | None) -> list[OfferRow]:
    return [
        {
            "id": o.id,
            "conversation_id": o.conversation_id,
            "queue": o.queue,
            "channel": o.channel,
            "address": mask_phone(o.address),
            "state": o.state,
            "created_at": o.created_at,
            "expires_at": o.expires_at,
            "kind": o.kind,
        }
        for o in await pending_offers(conn, agent_id)
    ]


async def held(conn: Conn, agent_id: int | None) -> list[HeldConversation]:
    """The conversations an agent holds (an open stay in a queue with them)."""
    return [
        {**_masked(conversation_view(r)), "citizen_name": r.citizen_name}
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
            "address": mask_phone(info[w.conversation_id].address)
            if w.conversation_id in info
            else None,
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
        {
            **_masked(conversation_view(r)),
            "citizen_name": r.citizen_name,
            "agent_name": r.agent_name,
            "kind": r.kind,
        }
        for r in rows
    ]


def _masked(conversation: ConversationView) -> ConversationView:
    return {**conversation, "address": mask_phone(conversation["address"])}


async def holds_citizen(conn: Conn, actor: Actor | None, citizen_id: int) -> bool:
    """Whether ``actor`` holds an open conversation with the citizen (and so answers them:
    the one who sees their full number on the desk)."""
    if actor is None:
        return False
    held_one = (
        select(conversations.c.id)
        .where(
            conversations.c.citizen_id == citizen_id,
            conversations.c.agent_id == actor.id,
            conversations.c.state != "closed",
        )
        .limit(1)
    )
    return bool(await conn.scalar(select(exists(held_one))))


def holds_conversation(actor: Actor | None, conversation: Any) -> bool:
    """Whether ``actor`` holds this conversation now."""
    return (
        actor is not None and conversation.agent_id == actor.id and conversation.state != "closed"
    )


def conversation_for(actor: Actor | None, conversation: Any) -> ConversationView:
    """A conversation as ``actor`` may see it: the address in full for the agent who holds
    it, masked for everyone else."""
    view = conversation_view(conversation)
    return view if holds_conversation(actor, conversation) else _masked(view)


async def citizen_for(conn: Conn, actor: Actor | None, profile: CitizenProfile) -> CitizenProfile:
    """A citizen's profile (:func:`callcenter.views.citizen_profile`) as ``actor`` may see
    it: numbers in full for the agent who holds a conversation with them, else masked
    (their number, their identities, their conversations' addresses, their calls')."""
    if await holds_citizen(conn, actor, profile["id"]):
        return profile
    return {
        **profile,
        "phone": mask_phone(profile["phone"]),
        "identities": [{**i, "value": mask_phone(i["value"])} for i in profile["identities"]],
        "conversations": [_masked(c) for c in profile["conversations"]],
        "calls": [{**c, "from_number": mask_phone(c["from_number"])} for c in profile["calls"]],
    }


async def call_panel(
    conn: Conn, conversation_id: int, *, actor: Actor | None = None
) -> dict[str, Any] | None:
    """What the softphone shows with a call: the caller's number (in full for the agent
    who holds a conversation with the caller, else masked), the IVR's path, keys and
    transcript, the wait, whether it is on hold, and the caller's earlier conversations."""
    row = (
        await conn.execute(
            select(calls, conversations.c.citizen_id, conversations.c.locale)
            .join(conversations, conversations.c.id == calls.c.conversation_id)
            .where(calls.c.conversation_id == conversation_id)
        )
    ).first()
    if row is None:
        return None
    earlier = (
        await conn.execute(
            select(
                conversations.c.id,
                conversations.c.channel,
                conversations.c.kind,
                conversations.c.state,
                conversations.c.created_at,
                conversations.c.ticket_id,
            )
            .where(
                conversations.c.citizen_id == row.citizen_id,
                conversations.c.id != conversation_id,
            )
            .order_by(conversations.c.id.desc())
            .limit(20)
        )
    ).all()
    said = (
        await conn.execute(
            select(messages.c.body)
            .where(messages.c.conversation_id == conversation_id, messages.c.kind == "transcript")
            .order_by(messages.c.id)
        )
    ).scalars()
    caller = row.from_number
    if not await holds_citizen(conn, actor, row.citizen_id):
        caller = mask_phone(caller)
    return {
        "call_id": row.id,
        "conversation_id": conversation_id,
        "caller": caller,
        "locale": row.locale,
        "path": list(row.path or []),
        "dtmf": row.dtmf,
        "transcript": row.transcript or "\n".join(said) or None,
        "queue_wait_s": row.queue_wait_s,
        "agent_answered_at": row.agent_answered_at,
        "on_hold": row.held_at is not None,
        "hold_s": row.hold_s,
        "outcome": row.outcome,
        "ended": row.ended_at is not None,
        "history": [dict(r._asdict()) for r in earlier],
    }


async def conversation_exists(conn: Conn, conversation_id: int) -> bool:
    found = await conn.execute(
        select(conversations.c.id).where(conversations.c.id == conversation_id)
    )
    return found.first() is not None
