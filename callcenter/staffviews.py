"""The read side of staff accounts: who works here (with their desk skills and when
they last signed in), a person's open sessions, and what was done to accounts, in
the order it happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from callcenter.domain.workflow import Role
from callcenter.runtime import Runtime
from callcenter.store.tables import agent_states, audit_events, staff_sessions, users


async def list_staff(conn: Any, *, include_inactive: bool = True) -> list[dict[str, Any]]:
    query = (
        select(
            users.c.id,
            users.c.username,
            users.c.display_name,
            users.c.role,
            users.c.department_id,
            users.c.locale,
            users.c.phone,
            users.c.active,
            users.c.created_at,
            users.c.last_login_at,
            users.c.password_hash.is_not(None).label("has_password"),
            users.c.totp_secret.is_not(None).label("two_factor"),
            agent_states.c.capacity,
            agent_states.c.languages,
            agent_states.c.categories,
            agent_states.c.queues,
            agent_states.c.channel_capacity,
        )
        .outerjoin(agent_states, agent_states.c.user_id == users.c.id)
        .where(users.c.role != Role.SYSTEM.value)
        .order_by(users.c.active.desc(), users.c.username)
    )
    if not include_inactive:
        query = query.where(users.c.active.is_(True))
    return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def staff_member(conn: Any, user_id: int) -> dict[str, Any] | None:
    for row in await list_staff(conn):
        if row["id"] == user_id:
            return row
    return None


async def open_sessions(conn: Any, rt: Runtime, user_id: int) -> list[dict[str, Any]]:
    """A person's sessions that still let someone in (not ended, expired or idle)."""
    now: datetime = rt.clock.now()
    idle = timedelta(minutes=rt.settings.staff.idle_minutes)
    rows = (
        await conn.execute(
            select(staff_sessions)
            .where(
                staff_sessions.c.user_id == user_id,
                staff_sessions.c.ended_at.is_(None),
                staff_sessions.c.expires_at > now,
                staff_sessions.c.seen_at > now - idle,
            )
            .order_by(staff_sessions.c.created_at.desc())
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def account_events(conn: Any, *, user_id: int | None = None, limit: int = 50) -> list[Any]:
    """The audit events about staff accounts (newest first): created, changed, signed in,
    failed, locked... for one person (about them or by them at sign-in) or for all."""
    query = select(audit_events).where(audit_events.c.entity_type == "user")
    if user_id is not None:
        query = query.where(
            or_(
                audit_events.c.entity_id == user_id,
                and_(audit_events.c.actor_id == user_id, audit_events.c.entity_type == "user"),
            )
        )
    rows = (await conn.execute(query.order_by(audit_events.c.seq.desc()).limit(limit))).all()
    return list(rows)


ADMIN_ENTITIES = (
    "user",
    "category",
    "department",
    "grid_cell",
    "calendar_day",
    "text",
    "configuration",
    "queue",
    "sla",
)


async def admin_events(
    conn: Any, *, kinds: tuple[str, ...] | None = None, limit: int = 200
) -> list[Any]:
    """Audit events about accounts and configuration, newest first."""
    query = (
        select(audit_events)
        .where(audit_events.c.entity_type.in_(kinds or ADMIN_ENTITIES))
        .order_by(audit_events.c.seq.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
