"""The live events the core publishes, one constructor per type.

Each event carries ids and the few fields a list needs to redraw a row;
listeners fetch the rest through the API. ``scope`` says who may see it:
department staff receive only events whose ``department_id`` is theirs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from callcenter.bus import Event
from callcenter.store.records import TicketRecord

TICKET_CHANGED = "ticket.changed"
MESSAGE_CREATED = "message.created"
CONVERSATION_CHANGED = "conversation.changed"
DIRECTORY_CHANGED = "directory.changed"
AGENT_CHANGED = "agent.changed"
OFFER_CHANGED = "offer.changed"
MEDIA_CHANGED = "media.changed"

EVENT_TYPES = (
    TICKET_CHANGED,
    MESSAGE_CREATED,
    CONVERSATION_CHANGED,
    DIRECTORY_CHANGED,
    AGENT_CHANGED,
    OFFER_CHANGED,
    MEDIA_CHANGED,
)


def ticket_changed(ticket: TicketRecord, action: str, at: datetime) -> Event:
    return Event(
        TICKET_CHANGED,
        {
            "ticket_id": ticket["id"],
            "number": ticket["number"],
            "action": action,
            "state": ticket["state"],
            "priority": ticket["priority"],
            "department_id": ticket["department_id"],
            "version": ticket["version"],
        },
        at,
        scope={"department_id": ticket["department_id"], "staff_only": False},
    )


def message_created(message: dict[str, Any], conversation: dict[str, Any], at: datetime) -> Event:
    return Event(
        MESSAGE_CREATED,
        {
            "message_id": message["id"],
            "conversation_id": conversation["id"],
            "citizen_id": conversation["citizen_id"],
            "channel": conversation["channel"],
            "agent_id": conversation.get("agent_id"),
            "direction": message["direction"],
            "status": message["status"],
            "kind": message.get("kind", "text"),
            "body": message["body"],
            "author_id": message.get("author_id"),
            "created_at": message["created_at"].isoformat() if message.get("created_at") else None,
        },
        at,
        scope={"staff_only": True},
    )


def conversation_changed(conversation: dict[str, Any], at: datetime) -> Event:
    return Event(
        CONVERSATION_CHANGED,
        {
            "conversation_id": conversation["id"],
            "citizen_id": conversation["citizen_id"],
            "channel": conversation["channel"],
            "state": conversation["state"],
            "queue": conversation["queue"],
            "agent_id": conversation["agent_id"],
            "ticket_id": conversation["ticket_id"],
            "kind": conversation.get("kind", "message"),
        },
        at,
        scope={"staff_only": True},
    )


def agent_changed(agent: dict[str, Any], at: datetime) -> Event:
    """An agent's presence, capacity or load changed (see callcenter.actions.acd)."""
    return Event(
        AGENT_CHANGED,
        {
            "agent_id": agent["user_id"],
            "presence": agent["presence"],
            "wrap_up_until": (
                agent["wrap_up_until"].isoformat() if agent.get("wrap_up_until") else None
            ),
            "capacity": agent["capacity"],
        },
        at,
        scope={"staff_only": True},
    )


def offer_changed(offer: dict[str, Any], at: datetime) -> Event:
    """An offer was made, accepted, declined, timed out or withdrawn; for its agent only."""
    return Event(
        OFFER_CHANGED,
        {
            "offer_id": offer["id"],
            "conversation_id": offer["conversation_id"],
            "agent_id": offer["agent_id"],
            "queue": offer["queue"],
            "state": offer["state"],
            "expires_at": offer["expires_at"].isoformat(),
        },
        at,
        scope={"staff_only": True, "agent_id": offer["agent_id"]},
    )


def media_changed(node: dict[str, Any], healthy: bool, at: datetime) -> Event:
    """A media node went down or came back; every page that shows media says so."""
    return Event(
        MEDIA_CHANGED,
        {"node": node["name"], "up": node["up"], "error": node["error"], "healthy": healthy},
        at,
        scope={"staff_only": False},
    )
