"""Staff accounts as an administrator keeps them: create and invite, change role,
department and skills, deactivate and reactivate, reset a password, sign someone out
everywhere; and what a person does with their own account (set a password from a
one-time link, end one of their sessions).

Who may: an administrator, for anyone (the command line's operator is one); each
person for their own sessions and password. Every change is one transaction with
an audit event naming the person it changed. Deactivating or resetting ends the
person's sessions in that same transaction, so the next request of any open tab is
signed out; their history (tickets, audit events) stays theirs.

A one-time set-password link carries a random value of which only the SHA-256 is
kept (``staff_tokens``, kind ``set_password``); it lasts ``staff.link_hours``, is
good once, and a newer link (or a password set) voids the older ones.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.actions.agents import agent_values, set_agent
from callcenter.actions.directory import add_user
from callcenter.actions.messages import queue_staff_sms
from callcenter.actions.staff import actor_of, session_key
from callcenter.domain.acd import Presence
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from callcenter.domain.passwords import check_password, hash_password, verify_password
from callcenter.domain.phone import normalize_phone
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import agent_states, staff_sessions, staff_tokens, throttles, users

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN)
DESK_ROLES = frozenset({Role.AGENT.value, Role.SUPERVISOR.value})
SET_PASSWORD = "set_password"


@dataclass(frozen=True)
class Invitation:
    """A new or reset account: its id and the one-time link (shown once, or sent by SMS)."""

    user_id: int
    link: str | None
    sent_by_sms: bool = False


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("role_not_allowed", role=actor.role.value)


def link_url(rt: Runtime, token: str) -> str:
    return rt.settings.effective_public_url.rstrip("/") + "/ui/password/" + token


def _token_key(token: str) -> str:
    return session_key(token)


async def _user(tx: Tx, user_id: int) -> Any:
    row = (await tx.execute(select(users).where(users.c.id == user_id))).first()
    if row is None or row.role == Role.SYSTEM.value:
        raise NotFound("unknown_user", user=user_id)
    return row


async def end_sessions(tx: Tx, user_id: int) -> int:
    """End every open session of a user now; how many were open."""
    result = await tx.execute(
        update(staff_sessions)
        .where(staff_sessions.c.user_id == user_id, staff_sessions.c.ended_at.is_(None))
        .values(ended_at=tx.state["now"])
    )
    return int(result.rowcount or 0)


async def _void_links(tx: Tx, user_id: int) -> None:
    await tx.execute(
        update(staff_tokens)
        .where(
            staff_tokens.c.user_id == user_id,
            staff_tokens.c.kind == SET_PASSWORD,
            staff_tokens.c.used_at.is_(None),
        )
        .values(used_at=tx.state["now"])
    )


async def _new_link(tx: Tx, rt: Runtime, user: Any, *, actor: Actor, sms: bool) -> Invitation:
    """A one-time set-password link for ``user``: returned to show once, or texted to
    their mobile number (then not returned)."""
    await _void_links(tx, user.id)
    token = secrets.token_urlsafe(32)
    now = tx.state["now"]
    await tx.execute(
        staff_tokens.insert().values(
            id=_token_key(token),
            user_id=user.id,
            kind=SET_PASSWORD,
            failures=0,
            created_at=now,
            expires_at=now + timedelta(hours=rt.settings.staff.link_hours),
        )
    )
    if not sms:
        return Invitation(user.id, link_url(rt, token))
    if not user.phone:
        raise InvalidInput("missing_field", field="phone")
    if rt.channels.get("sms") is None:
        raise Conflict("sms_unavailable")
    body = rt.text(
        "notify.staff_invitation",
        user.locale,
        hotline=rt.settings.hotline_number,
        name=user.display_name,
        username=user.username,
        link=link_url(rt, token),
        hours=int(rt.settings.staff.link_hours),
    )
    await queue_staff_sms(
        tx, rt, user.phone, body, actor=actor, kind="staff_invitation", user_id=user.id
    )
    return Invitation(user.id, None, sent_by_sms=True)


def _clean_username(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("missing_field", field="username")
    username = value.strip()
    if not USERNAME.match(username):
        raise InvalidInput("invalid_username")
    return username


async def create_staff(
    rt: Runtime,
    data: Mapping[str, Any],
    *,
    actor: Actor,
    password: str | None = None,
    send_sms: bool = False,
) -> Invitation:
    """A new member of staff. With ``password`` (the command line) they can sign in at
    once; without, they get a one-time link to choose their own."""
    require_admin(actor)
    username = _clean_username(data.get("username"))
    hashed = None
    if password is not None:
        check_password(password, username=username)
        hashed = await asyncio.to_thread(hash_password, password)
    skills = _desk_skills(rt, data)
    async with rt.transaction() as tx:
        taken = (
            await tx.execute(select(users.c.id).where(users.c.username.ilike(username)))
        ).first()
        if taken is not None:
            raise Conflict("duplicate_username", username=username)
        user_id, _ = await add_user(
            tx,
            rt,
            {**data, "username": username, "password_hash": hashed},
            actor=actor,
            api_token=False,
        )
        if hashed is not None:
            await tx.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_changed_at=tx.state["now"])
            )
        user = await _user(tx, user_id)
        if user.role in DESK_ROLES:
            await set_agent(tx, rt, user_id, actor=actor, **skills)
        if hashed is not None:
            return Invitation(user_id, None)
        return await _new_link(tx, rt, user, actor=actor, sms=send_sms)


def _desk_skills(rt: Runtime, data: Mapping[str, Any]) -> dict[str, Any]:
    def listed(name: str) -> Sequence[str] | None:
        value = data.get(name)
        return None if value is None else [str(v) for v in value]

    capacity = data.get("capacity")
    try:
        capacity = int(capacity) if capacity not in (None, "") else None
    except (TypeError, ValueError):
        raise InvalidInput("invalid_field", field="capacity") from None
    per_channel = data.get("channel_capacity")
    return agent_values(
        rt,
        capacity=capacity,
        languages=listed("languages"),
        categories=listed("categories"),
        queues=listed("queues"),
        channel_capacity=per_channel if isinstance(per_channel, Mapping) else None,
    )


async def update_staff(rt: Runtime, user_id: int, data: Mapping[str, Any], *, actor: Actor) -> None:
    """Change a person's name, role, department, language, mobile number and (at the
    desk) skills and capacity; one audit event with what was and what is."""
    require_admin(actor)
    skills = _desk_skills(rt, data)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        values: dict[str, Any] = {}
        if data.get("display_name") is not None:
            name = str(data["display_name"]).strip()
            if not name:
                raise InvalidInput("missing_field", field="display_name")
            if len(name) > 200:
                raise InvalidInput("field_too_long", field="display_name", limit=200)
            values["display_name"] = name
        role = data.get("role", row.role)
        if role not in {r.value for r in STAFF_ROLES}:
            raise InvalidInput(
                "invalid_choice", field="role", choices=", ".join(r.value for r in STAFF_ROLES)
            )
        if role != row.role and row.id == actor.id:
            raise Conflict("cannot_change_own_role")
        values["role"] = role
        department = data.get("department", ...)
        if role == Role.DEPARTMENT.value:
            if department is ...:
                department_id = row.department_id
            else:
                department_id = next(
                    (d.id for d in rt.directory.departments if d.code == department), None
                )
            if department_id is None:
                raise InvalidInput("unknown_department", department=department or "")
            values["department_id"] = department_id
        else:
            values["department_id"] = None
        if data.get("locale") is not None:
            values["locale"] = rt.catalog.normalize(str(data["locale"]))
        if "phone" in data:
            phone = str(data["phone"] or "").strip()
            values["phone"] = normalize_phone(phone, rt.settings.default_region) if phone else None
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if changed:
            await tx.execute(update(users).where(users.c.id == user_id).values(**changed))
            await audit.record(
                tx,
                actor=actor,
                entity_type="user",
                entity_id=user_id,
                action="user.update",
                before={k: getattr(row, k) for k in changed},
                after=changed,
                details={"username": row.username},
            )
        if role in DESK_ROLES and skills:
            await set_agent(tx, rt, user_id, actor=actor, **skills)


async def deactivate_staff(rt: Runtime, user_id: int, *, actor: Actor) -> int:
    """No more sign-ins; every open session ends now, the desk shows them away. Their
    records stay. Returns how many sessions were ended."""
    require_admin(actor)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        if row.id == actor.id:
            raise Conflict("cannot_deactivate_self")
        if not row.active:
            return 0
        await tx.execute(update(users).where(users.c.id == user_id).values(active=False))
        ended = await end_sessions(tx, user_id)
        await _void_links(tx, user_id)
        desk = (
            await tx.execute(
                select(agent_states.c.presence).where(agent_states.c.user_id == user_id)
            )
        ).first()
        if desk is not None and desk.presence != Presence.AWAY.value:
            await set_agent(
                tx,
                rt,
                user_id,
                actor=actor,
                presence=Presence.AWAY.value,
                presence_since=tx.state["now"],
                wrap_up_until=None,
            )
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.deactivate",
            before={"active": True},
            after={"active": False},
            details={"username": row.username, "sessions_ended": ended},
        )
        return ended


async def reactivate_staff(rt: Runtime, user_id: int, *, actor: Actor) -> None:
    require_admin(actor)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        if row.active:
            return
        await tx.execute(update(users).where(users.c.id == user_id).values(active=True))
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.reactivate",
            before={"active": False},
            after={"active": True},
            details={"username": row.username},
        )


async def reset_password(
    rt: Runtime, user_id: int, *, actor: Actor, send_sms: bool = False
) -> Invitation:
    """The old password stops working and every session ends; the person chooses a new
    one from a one-time link (shown to the administrator once, or texted to them)."""
    require_admin(actor)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        await tx.execute(update(users).where(users.c.id == user_id).values(password_hash=None))
        ended = await end_sessions(tx, user_id)
        invitation = await _new_link(tx, rt, row, actor=actor, sms=send_sms)
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.password_reset",
            details={"username": row.username, "sessions_ended": ended, "by_sms": send_sms},
        )
        return invitation


async def sign_out_everywhere(rt: Runtime, user_id: int, *, actor: Actor) -> int:
    """End every session of a person (an administrator, or the person themself)."""
    if actor.role is not Role.ADMIN and actor.id != user_id:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        ended = await end_sessions(tx, user_id)
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.signed_out",
            details={"username": row.username, "sessions_ended": ended},
        )
        return ended


async def end_session(rt: Runtime, session_id: str, *, actor: Actor) -> None:
    """End one session: its owner's own, or anyone's for an administrator."""
    async with rt.transaction() as tx:
        row = (
            await tx.execute(select(staff_sessions).where(staff_sessions.c.id == session_id))
        ).first()
        if row is None or (row.user_id != actor.id and actor.role is not Role.ADMIN):
            raise NotFound("unknown_session")
        if row.ended_at is not None:
            return
        await tx.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_id)
            .values(ended_at=tx.state["now"])
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=row.user_id,
            action="user.session_ended",
            details={"user_agent": row.user_agent or "", "started_at": row.created_at},
        )


async def link_user(rt: Runtime, token: str) -> Any:
    """The person a set-password link is for, or None (unknown, used, expired)."""
    if not token or len(token) > 200:
        return None
    now = rt.clock.now()
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(users)
                .join(staff_tokens, staff_tokens.c.user_id == users.c.id)
                .where(
                    staff_tokens.c.id == _token_key(token),
                    staff_tokens.c.kind == SET_PASSWORD,
                    staff_tokens.c.used_at.is_(None),
                    staff_tokens.c.expires_at > now,
                    users.c.active.is_(True),
                )
            )
        ).first()
    return row


async def set_password_from_link(rt: Runtime, token: str, password: str) -> Actor:
    """The person chooses their password; the link is spent. Returns who they are."""
    user = await link_user(rt, token)
    if user is None:
        raise NotFound("password_link_invalid")
    check_password(password, username=user.username)
    hashed = await asyncio.to_thread(hash_password, password)
    async with rt.transaction() as tx:
        spent = await tx.execute(
            update(staff_tokens)
            .where(staff_tokens.c.id == _token_key(token), staff_tokens.c.used_at.is_(None))
            .values(used_at=tx.state["now"])
        )
        if spent.rowcount != 1:  # used by a second tab a moment ago
            raise NotFound("password_link_invalid")
        await _store_password(tx, user, hashed)
        who = actor_of(user)
        await audit.record(
            tx,
            actor=who,
            entity_type="user",
            entity_id=user.id,
            action="user.password",
            details={"username": user.username, "from_link": True},
        )
        return who


async def _store_password(tx: Tx, user: Any, hashed: str) -> None:
    await tx.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(password_hash=hashed, password_changed_at=tx.state["now"])
    )
    await _void_links(tx, user.id)
    await tx.execute(throttles.delete().where(throttles.c.key == "login:" + user.username.lower()))


async def change_password(
    rt: Runtime, user_id: int, password: str, *, actor: Actor, end_others: bool = True
) -> int:
    """Set a password now (the command line's ``staff passwd``, an administrator, or the
    person themself): the policy applies, a lock on the username is lifted, and the
    person's sessions end (it may be that someone else knew the old one). Returns how
    many sessions ended."""
    if actor.role is not Role.ADMIN and actor.id != user_id:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None or row.role == Role.SYSTEM.value:
        raise NotFound("unknown_user", user=user_id)
    check_password(password, username=row.username)
    hashed = await asyncio.to_thread(hash_password, password)
    async with rt.transaction() as tx:
        await _store_password(tx, row, hashed)
        ended = await end_sessions(tx, user_id) if end_others else 0
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.password",
            details={"username": row.username, "sessions_ended": ended},
        )
        return ended


async def find_username(rt: Runtime, username: str) -> int:
    async with rt.db.read() as conn:
        found = await conn.scalar(select(users.c.id).where(users.c.username == username.strip()))
    if found is None:
        raise NotFound("unknown_username", username=username)
    return int(found)


async def reset_two_factor(rt: Runtime, user_id: int, *, actor: Actor) -> None:
    """Forget a person's authenticator app (a lost phone): they enrol a new one at their
    next sign-in (required roles) or may turn it on again. Their sessions end."""
    if actor.role is not Role.ADMIN and actor.id != user_id:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    async with rt.transaction() as tx:
        row = await _user(tx, user_id)
        if actor.id == user_id and row.role in rt.settings.staff.two_factor_roles:
            raise Conflict("totp_required")
        await tx.execute(
            update(users).where(users.c.id == user_id).values(totp_secret=None, totp_last_step=None)
        )
        ended = await end_sessions(tx, user_id) if actor.id != user_id else 0
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="user.two_factor_off",
            before={"two_factor": row.totp_secret is not None},
            after={"two_factor": False},
            details={"username": row.username, "sessions_ended": ended},
        )


async def change_own_password(
    rt: Runtime, current: str, new: str, *, actor: Actor, keep_session: str | None = None
) -> int:
    """A person changes their own password: the current one first (a session left open
    on a shared PC is not enough), the policy for the new one; their other sessions end,
    the one they are in stays. Returns how many ended."""
    if actor.id is None:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == actor.id))).first()
    if row is None:
        raise NotFound("unknown_user", user=actor.id)
    if not await asyncio.to_thread(verify_password, row.password_hash, str(current)[:256]):
        raise InvalidInput("current_password_wrong")
    check_password(new, username=row.username)
    hashed = await asyncio.to_thread(hash_password, new)
    async with rt.transaction() as tx:
        await _store_password(tx, row, hashed)
        query = update(staff_sessions).where(
            staff_sessions.c.user_id == actor.id, staff_sessions.c.ended_at.is_(None)
        )
        if keep_session is not None:
            query = query.where(staff_sessions.c.id != keep_session)
        ended = int((await tx.execute(query.values(ended_at=tx.state["now"]))).rowcount or 0)
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=actor.id,
            action="user.password",
            details={"username": row.username, "sessions_ended": ended, "own": True},
        )
        return ended
