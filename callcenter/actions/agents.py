"""Agents at the desk: presence, capacity and skills (``agent_states``), and wrap-up.

What an agent may set (available, busy, away), what a supervisor sets
(capacity, languages, categories, queues, the voice skill), and the wrap-up time that follows
the end of a conversation. The ACD reads these rows through
:func:`callcenter.queueing.agent_views`. See ``docs/acd.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.bus import events
from callcenter.domain.acd import SETTABLE_PRESENCE, Presence
from callcenter.domain.errors import Forbidden, InvalidInput
from callcenter.domain.workflow import Actor, Role
from callcenter.queueing import rule_of
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.records import AgentStateRecord, agent_state_record
from callcenter.store.tables import agent_states, users

SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
MAX_SKILLS = 50


def require_desk(actor: Actor) -> None:
    """Agents and supervisors work the desk; anyone else is refused (403)."""
    if actor.role not in (Role.AGENT, Role.SUPERVISOR) or actor.id is None:
        raise Forbidden("role_not_allowed", role=actor.role.value)


async def agent_row(tx: Tx, agent_id: int) -> Any:
    return (
        await tx.execute(select(agent_states).where(agent_states.c.user_id == agent_id))
    ).first()


async def set_agent(tx: Tx, rt: Runtime, agent_id: int, *, actor: Actor, **values: Any) -> Any:
    """Change an agent's ACD row, creating it (away, default capacity) if missing."""
    now = tx.state["now"]
    row = await agent_row(tx, agent_id)
    if row is None:
        base = {
            "user_id": agent_id,
            "presence": Presence.AWAY.value,
            "presence_since": now,
            "wrap_up_until": None,
            "capacity": rt.settings.acd.default_capacity,
            "languages": [],
            "categories": [],
            "queues": [],
            "last_contact_at": None,
            "voice": True,
        }
        await tx.execute(agent_states.insert().values(**{**base, **values}))
        before: dict[str, Any] = {}
    else:
        if values:
            await tx.execute(
                update(agent_states).where(agent_states.c.user_id == agent_id).values(**values)
            )
        before = {k: getattr(row, k) for k in values}
    if set(values) - {"last_contact_at"}:
        await audit.record(
            tx,
            actor=actor,
            entity_type="agent",
            entity_id=agent_id,
            action="agent.update",
            before=before or None,
            after=values,
        )
    updated = await agent_row(tx, agent_id)
    tx.publish(events.agent_changed(updated._asdict(), now))
    return updated


async def agent_user(tx: Tx, agent_id: int) -> Any:
    row = (await tx.execute(select(users).where(users.c.id == agent_id))).first()
    if row is None or not row.active or row.role not in (Role.AGENT.value, Role.SUPERVISOR.value):
        raise InvalidInput("unknown_agent", agent=agent_id)
    return row


async def set_presence(rt: Runtime, presence: str, *, actor: Actor) -> AgentStateRecord:
    """An agent says whether they take new conversations (available, busy, away)."""
    require_desk(actor)
    if presence not in {p.value for p in SETTABLE_PRESENCE}:
        raise InvalidInput("invalid_choice", field="presence", choices="available, busy, away")
    assert actor.id is not None
    async with rt.transaction() as tx:
        row = await set_agent(
            tx,
            rt,
            actor.id,
            actor=actor,
            presence=presence,
            presence_since=tx.state["now"],
            wrap_up_until=None,
        )
        return agent_state_record(row)


def _skill_list(values: Sequence[str] | None, field: str, allowed: set[str] | None) -> list[str]:
    if values is None:
        return []
    cleaned = sorted({str(v).strip() for v in values if str(v).strip()})
    if len(cleaned) > MAX_SKILLS:
        raise InvalidInput("invalid_field", field=field)
    if allowed is not None:
        unknown = [v for v in cleaned if v not in allowed]
        if unknown:
            raise InvalidInput("invalid_choice", field=field, choices=", ".join(sorted(allowed)))
    return cleaned


def agent_values(
    rt: Runtime,
    *,
    capacity: int | None = None,
    languages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    queues: Sequence[str] | None = None,
    channel_capacity: Mapping[str, Any] | None = None,
    voice: bool | None = None,
) -> dict[str, Any]:
    """An agent's capacity and skills, checked (what is None is left as it is).
    ``channel_capacity``: at most so many at once per channel (an empty value: no limit
    of its own on that channel). ``voice``: the voice skill (takes calls)."""
    values: dict[str, Any] = {}
    if capacity is not None:
        if not 1 <= int(capacity) <= 50:
            raise InvalidInput("invalid_field", field="capacity")
        values["capacity"] = int(capacity)
    if languages is not None:
        values["languages"] = _skill_list(languages, "languages", {"zh-CN", "en"})
    if categories is not None:
        values["categories"] = _skill_list(
            categories, "categories", set(rt.directory.category_by_code)
        )
    if queues is not None:
        values["queues"] = _skill_list(queues, "queues", set(rt.settings.acd.queues))
    if voice is not None:
        if not isinstance(voice, bool):
            raise InvalidInput("invalid_field", field="voice")
        values["voice"] = voice
    if channel_capacity is not None:
        known = {c.name for c in rt.channels}
        limits: dict[str, int] = {}
        for channel, raw in channel_capacity.items():
            if channel not in known:
                raise InvalidInput(
                    "invalid_choice", field="channel", choices=", ".join(sorted(known))
                )
            if raw in (None, ""):
                continue
            try:
                limit = int(raw)
            except (TypeError, ValueError):
                raise InvalidInput("invalid_field", field="capacity") from None
            if not 0 <= limit <= 50:
                raise InvalidInput("invalid_field", field="capacity")
            limits[channel] = limit
        values["channel_capacity"] = limits or None
    return values


async def configure_agent(
    rt: Runtime,
    agent_id: int,
    *,
    actor: Actor,
    capacity: int | None = None,
    languages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    queues: Sequence[str] | None = None,
    voice: bool | None = None,
) -> AgentStateRecord:
    """A supervisor sets an agent's capacity and skills (``voice``: takes calls)."""
    if actor.role not in SUPERVISORS:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    values = agent_values(
        rt,
        capacity=capacity,
        languages=languages,
        categories=categories,
        queues=queues,
        voice=voice,
    )
    async with rt.transaction() as tx:
        await agent_user(tx, agent_id)
        row = await set_agent(tx, rt, agent_id, actor=actor, **values)
        return agent_state_record(row)


async def start_wrap_up(tx: Tx, rt: Runtime, agent_id: int, queue: str, *, actor: Actor) -> None:
    now = tx.state["now"]
    row = await agent_row(tx, agent_id)
    wrap = rule_of(rt, queue).wrap_up
    if row is not None and row.presence == Presence.AVAILABLE.value and wrap.total_seconds() > 0:
        await set_agent(
            tx,
            rt,
            agent_id,
            actor=actor,
            presence=Presence.WRAP_UP.value,
            presence_since=now,
            wrap_up_until=now + wrap,
            last_contact_at=now,
        )
    elif row is not None:
        await set_agent(tx, rt, agent_id, actor=actor, last_contact_at=now)
