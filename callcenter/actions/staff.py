"""Staff sign-in: passwords, server-side sessions, lockout after repeated failures,
and throttles that the public pages share (ticket look-up).

A session is a random value in an HttpOnly cookie; the database keeps only its
SHA-256, the user, a CSRF token, and when it expires (a fixed lifetime and an
idle timeout). Signing in and out are audited; a failed attempt counts towards
a lockout (``staff.max_failures`` within ``staff.failure_window_minutes`` locks
the username for ``staff.lockout_minutes``) and the lock itself is audited.
Throttle counters and "last seen" times are bookkeeping, like job leases:
they are written without an audit event.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from callcenter.actions import audit
from callcenter.domain import totp
from callcenter.domain.errors import InvalidInput, RateLimited, Unauthenticated
from callcenter.domain.passwords import verify_password
from callcenter.domain.totp import accepted_step
from callcenter.domain.workflow import SYSTEM, Actor, Role
from callcenter.runtime import Runtime
from callcenter.store.db import Reader, Tx
from callcenter.store.queries import insert_ignore
from callcenter.store.tables import staff_sessions, staff_tokens, throttles, users
from callcenter.views import throttle_by_key

TOUCH_EVERY = timedelta(seconds=60)
SECOND_FACTOR = "second_factor"


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def actor_of(row: Any) -> Actor:
    return Actor(row.id, Role(row.role), row.display_name, row.department_id, row.locale)


@dataclass(frozen=True)
class Session:
    token: str  # the cookie value; only its hash is stored
    csrf_token: str
    actor: Actor
    expires_at: datetime


# --- throttles -----------------------------------------------------------------------------


async def throttle_state(tx: Reader, key: str) -> Any:
    return await throttle_by_key(tx, key)


async def count_attempt(
    tx: Tx, key: str, *, limit: int, window: timedelta, lock: timedelta
) -> tuple[int, datetime | None]:
    """Count one attempt against ``key``; returns (count in the window, locked until)."""
    now = tx.state["now"]
    await insert_ignore(
        tx, throttles, {"key": key, "count": 0, "window_start": now}, conflict=("key",)
    )
    row = await throttle_state(tx, key)
    count, start = row.count, row.window_start
    if start + window <= now:
        count, start = 0, now
    count += 1
    locked = now + lock if count >= limit else row.locked_until
    await tx.execute(
        update(throttles)
        .where(throttles.c.key == key)
        .values(count=count, window_start=start, locked_until=locked)
    )
    return count, locked


def locked_until(row: Any, now: datetime) -> datetime | None:
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def minutes_left(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() + 59) // 60)


async def check_rate(
    rt: Runtime, key: str, *, limit: int, window: timedelta, lock: timedelta | None = None
) -> None:
    """Count one attempt; raise :class:`RateLimited` once ``limit`` is reached in ``window``."""
    now = rt.clock.now()
    async with rt.db.transaction(serialize=False) as tx:
        tx.state["now"] = now
        blocked = locked_until(await throttle_state(tx, key), now)
        if blocked is None:
            count, _ = await count_attempt(
                tx, key, limit=limit + 1, window=window, lock=lock or window
            )
            if count > limit:
                blocked = now + (lock or window)
    if blocked is not None:
        raise RateLimited("rate_limited", minutes=minutes_left(blocked, now))


# --- signing in and out ---------------------------------------------------------------------


def _login_key(username: str) -> str:
    return "login:" + username.strip().lower()[:150]


async def log_in(
    rt: Runtime, username: str, password: str, *, user_agent: str | None = None
) -> Session | SecondStep:
    """Check the password and open a session, or count a failure (and maybe lock). For an
    account with two-factor sign-in (or a role that requires it) a right password opens
    only the second step (:func:`complete_sign_in`)."""
    settings = rt.settings.staff
    if not isinstance(username, str) or not isinstance(password, str) or not username.strip():
        raise Unauthenticated("login_failed")
    key = _login_key(username)
    now = rt.clock.now()
    async with rt.db.read() as conn:
        row = (
            await conn.execute(select(users).where(users.c.username == username.strip()))
        ).first()
        lock = (await conn.execute(select(throttles).where(throttles.c.key == key))).first()
    blocked = locked_until(lock, now)
    if blocked is not None:
        raise RateLimited("account_locked", minutes=minutes_left(blocked, now))
    ok = await asyncio.to_thread(
        verify_password, row.password_hash if row is not None else None, password
    )
    if not ok or row is None or not row.active or row.role == Role.SYSTEM.value:
        async with rt.transaction() as tx:
            _, locked = await count_attempt(
                tx,
                key,
                limit=settings.max_failures,
                window=timedelta(minutes=settings.failure_window_minutes),
                lock=timedelta(minutes=settings.lockout_minutes),
            )
            await audit.record(
                tx,
                actor=SYSTEM,
                entity_type="user",
                entity_id=row.id if row is not None else None,
                action="user.login_failed",
                details={
                    "username": username.strip()[:64],
                    "reason": _failure_reason(row, ok),
                    "user_agent": (user_agent or "")[:300],
                },
            )
            if locked is not None and locked > tx.state["now"] and row is not None:
                await audit.record(
                    tx,
                    actor=SYSTEM,
                    entity_type="user",
                    entity_id=row.id,
                    action="user.locked",
                    after={"locked_until": locked},
                )
        raise Unauthenticated("login_failed")
    if row.totp_secret is not None or row.role in settings.two_factor_roles:
        return await _second_step(rt, row)
    async with rt.transaction() as tx:
        await tx.execute(delete(throttles).where(throttles.c.key == key))
        return await _open_session(tx, rt, row, user_agent)


async def _open_session(tx: Tx, rt: Runtime, row: Any, user_agent: str | None) -> Session:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = tx.state["now"]
    expires = now + timedelta(hours=rt.settings.staff.session_hours)
    await tx.execute(update(users).where(users.c.id == row.id).values(last_login_at=now))
    await tx.execute(
        staff_sessions.insert().values(
            id=session_key(token),
            user_id=row.id,
            csrf_token=csrf,
            created_at=now,
            seen_at=now,
            expires_at=expires,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    await audit.record(
        tx,
        actor=actor_of(row),
        entity_type="user",
        entity_id=row.id,
        action="user.login",
        after={"user_agent": (user_agent or "")[:300]},
    )
    return Session(token, csrf, actor_of(row), expires)


# --- the second step: a TOTP code, or enrolling an authenticator app -------------------------


@dataclass(frozen=True)
class SecondStep:
    """The password was right; a code must follow (``enrol``: first scan ``qr``)."""

    token: str  # the cookie value of this step; only its hash is stored
    enrol: bool
    secret: str | None = None  # shown (as text and as a QR code) only while enrolling
    qr: str | None = None


def _totp_issuer(rt: Runtime) -> str:
    return f"{rt.settings.hotline_number} hotline"


async def start_enrolment(rt: Runtime, *, actor: Actor) -> SecondStep:
    """Someone whose role does not require it turns two-factor sign-in on: the same
    step as a first sign-in's enrolment; the first right code keeps the app's secret."""
    async with rt.db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == actor.id))).first()
    if row is None or not row.active or row.totp_secret is not None:
        raise InvalidInput("invalid_choice", field="code", choices="-")
    return await _second_step(rt, row)


async def _second_step(rt: Runtime, row: Any) -> SecondStep:
    enrol = row.totp_secret is None
    secret = totp.new_secret() if enrol else None
    token = secrets.token_urlsafe(32)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        await tx.execute(
            staff_tokens.insert().values(
                id=session_key(token),
                user_id=row.id,
                kind=SECOND_FACTOR,
                secret=secret,
                failures=0,
                created_at=now,
                expires_at=now + timedelta(minutes=rt.settings.staff.second_step_minutes),
            )
        )
    if secret is None:
        return SecondStep(token, enrol=False)
    uri = totp.provisioning_uri(secret, row.username, _totp_issuer(rt))
    return SecondStep(token, enrol=True, secret=secret, qr=totp.qr_data_uri(uri))


async def pending_step(rt: Runtime, token: str) -> SecondStep | None:
    """The second step behind a cookie value, if it is still open (to show it again)."""
    found = await _step_row(rt, token)
    if found is None:
        return None
    step, user = found
    if step.secret is None:
        return SecondStep(token, enrol=False)
    uri = totp.provisioning_uri(step.secret, user.username, _totp_issuer(rt))
    return SecondStep(token, enrol=True, secret=step.secret, qr=totp.qr_data_uri(uri))


async def _step_row(rt: Runtime, token: str) -> tuple[Any, Any] | None:
    if not token or len(token) > 200:
        return None
    now = rt.clock.now()
    async with rt.db.read() as conn:
        step = (
            await conn.execute(
                select(staff_tokens).where(
                    staff_tokens.c.id == session_key(token),
                    staff_tokens.c.kind == SECOND_FACTOR,
                    staff_tokens.c.used_at.is_(None),
                    staff_tokens.c.expires_at > now,
                )
            )
        ).first()
        if step is None:
            return None
        user = (await conn.execute(select(users).where(users.c.id == step.user_id))).first()
    if user is None or not user.active:
        return None
    return step, user


async def complete_sign_in(
    rt: Runtime, token: str, code: str, *, user_agent: str | None = None
) -> Session:
    """The code from the authenticator app: right (for now, and never used before) opens
    the session, and while enrolling keeps the app's secret; wrong counts as a failed
    sign-in (towards the lock-out) and after ``staff.max_failures`` the step is spent."""
    settings = rt.settings.staff
    found = await _step_row(rt, token)
    if found is None:
        raise Unauthenticated("second_step_expired")
    step, user = found
    secret = step.secret or user.totp_secret
    now = rt.clock.now()
    async with rt.db.read() as conn:
        lock = (
            await conn.execute(
                select(throttles).where(throttles.c.key == _login_key(user.username))
            )
        ).first()
    blocked = locked_until(lock, now)
    if blocked is not None:
        raise RateLimited("account_locked", minutes=minutes_left(blocked, now))
    good = accepted_step(secret, str(code)[:20], now, last_step=user.totp_last_step)
    async with rt.transaction() as tx:
        if good is None:
            failures = step.failures + 1
            await tx.execute(
                update(staff_tokens)
                .where(staff_tokens.c.id == step.id)
                .values(
                    failures=failures,
                    used_at=tx.state["now"] if failures >= settings.max_failures else None,
                )
            )
            _, locked = await count_attempt(
                tx,
                _login_key(user.username),
                limit=settings.max_failures,
                window=timedelta(minutes=settings.failure_window_minutes),
                lock=timedelta(minutes=settings.lockout_minutes),
            )
            await audit.record(
                tx,
                actor=SYSTEM,
                entity_type="user",
                entity_id=user.id,
                action="user.login_failed",
                details={"username": user.username, "reason": "wrong_code"},
            )
            if locked is not None and locked > tx.state["now"]:
                await audit.record(
                    tx,
                    actor=SYSTEM,
                    entity_type="user",
                    entity_id=user.id,
                    action="user.locked",
                    after={"locked_until": locked},
                )
        else:
            spent = await tx.execute(
                update(staff_tokens)
                .where(staff_tokens.c.id == step.id, staff_tokens.c.used_at.is_(None))
                .values(used_at=tx.state["now"])
            )
            if spent.rowcount != 1:
                raise Unauthenticated("second_step_expired")
            # the step is taken only if no other sign-in took it (or a later one) meanwhile
            taken = await tx.execute(
                update(users)
                .where(
                    users.c.id == user.id,
                    or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < good),
                )
                .values(totp_last_step=good, totp_secret=secret)
            )
            if taken.rowcount != 1:
                good = None
            else:
                if step.secret is not None:
                    await audit.record(
                        tx,
                        actor=actor_of(user),
                        entity_type="user",
                        entity_id=user.id,
                        action="user.two_factor_on",
                        details={"username": user.username},
                    )
                await tx.execute(
                    delete(throttles).where(throttles.c.key == _login_key(user.username))
                )
                return await _open_session(tx, rt, user, user_agent)
    raise InvalidInput("totp_invalid")


def _failure_reason(row: Any, password_ok: bool) -> str:
    if row is None or row.role == Role.SYSTEM.value:
        return "unknown_user"
    if not row.active:
        return "inactive"
    return "wrong_password" if not password_ok else "refused"


async def find_session(rt: Runtime, token: str) -> tuple[Session, Any] | None:
    """The live session behind a cookie value, or None (expired, idle, ended, unknown)."""
    if not token or len(token) > 200:
        return None
    now = rt.clock.now()
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(staff_sessions, users)
                .join(users, users.c.id == staff_sessions.c.user_id)
                .where(staff_sessions.c.id == session_key(token))
            )
        ).first()
    if row is None or row.ended_at is not None or not row.active:
        return None
    idle = timedelta(minutes=rt.settings.staff.idle_minutes)
    if row.expires_at <= now or row.seen_at + idle <= now:
        return None
    user = row
    session = Session(
        token,
        row.csrf_token,
        Actor(user.user_id, Role(user.role), user.display_name, user.department_id, user.locale),
        row.expires_at,
    )
    return session, row


async def touch_session(rt: Runtime, token: str, seen_at: datetime) -> None:
    """Keep an active session from idling out (at most once a minute; bookkeeping)."""
    now = rt.clock.now()
    if now - seen_at < TOUCH_EVERY:
        return
    async with rt.db.transaction(serialize=False) as tx:
        await tx.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_key(token))
            .values(seen_at=now)
        )


async def log_out(rt: Runtime, token: str) -> None:
    found = await find_session(rt, token)
    if found is None:
        return
    session, _ = found
    async with rt.transaction() as tx:
        await tx.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session_key(token))
            .values(ended_at=tx.state["now"])
        )
        await audit.record(
            tx,
            actor=session.actor,
            entity_type="user",
            entity_id=session.actor.id,
            action="user.logout",
        )


async def set_locale(rt: Runtime, locale: str, *, actor: Actor) -> str:
    """A staff user's language (the language switch)."""
    if locale not in ("zh-CN", "en"):
        raise InvalidInput("invalid_choice", field="locale", choices="zh-CN, en")
    async with rt.transaction() as tx:
        row = (await tx.execute(select(users.c.locale).where(users.c.id == actor.id))).first()
        if row is not None and row.locale != locale:
            await tx.execute(update(users).where(users.c.id == actor.id).values(locale=locale))
            await audit.record(
                tx,
                actor=actor,
                entity_type="user",
                entity_id=actor.id,
                action="user.update",
                before={"locale": row.locale},
                after={"locale": locale},
            )
    return locale
