"""Telling citizens and departments what happens to tickets, by message.

Citizens hear on the channel their ticket came from when it carries text
(SMS, Telegram, web chat), otherwise by SMS to their phone number; in their
own language. Department staff get SMS at their mobile numbers; urgent tickets
also alert the department's duty officer at once, quiet hours or not.

Every text is cut to the SMS budget (``notify.max_segments``); a department's
long answer is shortened so that the rest of the notice, the status link
included, still fits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.actions.conversations import open_conversation
from callcenter.actions.messages import queue_outbound, queue_staff_sms
from callcenter.domain.phone import is_mobile
from callcenter.domain.segments import count_segments, fit
from callcenter.domain.workflow import SYSTEM
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import row_by_id
from callcenter.store.records import TicketRecord
from callcenter.store.tables import citizens, conversations, departments, users

# how long a department answer may grow before it is shortened, in characters
_ANSWER_FLOOR = 10


def status_url(rt: Runtime, number: str) -> str:
    return f"{rt.settings.effective_public_url}/s/{number}"


def ticket_params(rt: Runtime, ticket: TicketRecord, locale: str) -> dict[str, Any]:
    directory = rt.directory
    category = directory.category_by_id.get(ticket.get("category_id") or -1)
    dept = directory.by_id.get(ticket.get("department_id") or -1)
    return {
        "number": ticket["number"],
        "title": ticket.get("title") or "",
        "category": category.name(locale) if category else "",
        "department": dept.name(locale) if dept else "",
        "due": rt.local_text(ticket.get("due_at")),
        "sign_due": rt.local_text(ticket.get("sign_due_at")),
        "hotline": rt.settings.hotline_number,
        "status_url": status_url(rt, ticket["number"]),
    }


def render(rt: Runtime, key: str, locale: str, params: dict[str, Any], *, shorten: str = "") -> str:
    """A template filled in and fitted to the SMS budget.

    ``shorten`` names the parameter to cut first (a department's answer) so that
    the fixed parts of the text survive whole.
    """
    budget = rt.settings.notify.max_segments
    text = rt.text(key, locale, **params)
    if shorten and count_segments(text).segments > budget:
        value = str(params.get(shorten, ""))
        while len(value) > _ANSWER_FLOOR and count_segments(text).segments > budget:
            value = value[: max(_ANSWER_FLOOR, int(len(value) * 0.9))].rstrip() + "…"
            text = rt.text(key, locale, **{**params, shorten: value})
    return fit(text, budget)


async def citizen_conversation(tx: Tx, rt: Runtime, ticket: TicketRecord) -> Any:
    """Where to write to a ticket's citizen, or None when they cannot be reached."""
    conversation_id, citizen_id = ticket["conversation_id"], ticket["citizen_id"]
    if conversation_id is not None:
        conversation = await row_by_id(tx, conversations, conversation_id)
        channel = rt.channels.get(conversation.channel) if conversation else None
        if channel is not None and channel.text_capable:
            return conversation
    if citizen_id is None or rt.channels.get("sms") is None:
        return None
    citizen = await row_by_id(tx, citizens, citizen_id)
    if citizen is None or not citizen.phone or not is_mobile(citizen.phone):
        return None
    found = (
        await tx.execute(
            select(conversations)
            .where(
                conversations.c.citizen_id == citizen.id,
                conversations.c.channel == "sms",
                conversations.c.address == citizen.phone,
            )
            .order_by(conversations.c.id.desc())
            .limit(1)
        )
    ).first()
    if found is not None:
        return found
    now = tx.state["now"]
    values = {
        "citizen_id": citizen.id,
        "channel": "sms",
        "address": citizen.phone,
        "service_address": rt.settings.hotline_number,
        "state": "closed",
        "kind": "message",
        "locale": citizen.locale,
        "created_at": now,
        "updated_at": now,
        "closed_at": now,
    }
    return await open_conversation(tx, values, actor=SYSTEM)


async def notify_citizen(
    tx: Tx,
    rt: Runtime,
    ticket: TicketRecord,
    key: str,
    *,
    kind: str = "notice",
    essential: bool = True,
    shorten: str = "",
    meta: dict[str, Any] | None = None,
    **extra: Any,
) -> int | None:
    """Queue a templated message to the ticket's citizen; None if they cannot be reached."""
    if not rt.settings.notify.citizen_notices:
        return None
    conversation = await citizen_conversation(tx, rt, ticket)
    if conversation is None:
        return None
    locale = conversation.locale
    params = {**ticket_params(rt, ticket, locale), **extra}
    body = render(rt, key, locale, params, shorten=shorten)
    return await queue_outbound(
        tx,
        rt,
        conversation,
        body,
        actor=SYSTEM,
        kind=kind,
        essential=essential,
        ticket_id=ticket["id"],
        meta=meta,
    )


async def notify_department(
    tx: Tx,
    rt: Runtime,
    ticket: TicketRecord,
    key: str,
    *,
    department_id: int | None = None,
    urgent: bool = False,
    duty_officer: bool = False,
    dedupe: str | None = None,
    kind: str = "reminder",
    **extra: Any,
) -> list[int]:
    """SMS to every active staff member with a mobile number in the department
    (and to its duty officer when asked). With ``dedupe``, a second call with the
    same value makes nothing: jobs that may run twice pass their job key."""
    dept_id = department_id or ticket.get("department_id")
    if dept_id is None or rt.channels.get("sms") is None:
        return []
    rows = (
        await tx.execute(
            select(users.c.id, users.c.phone, users.c.locale).where(
                users.c.department_id == dept_id,
                users.c.active.is_(True),
                users.c.phone.is_not(None),
            )
        )
    ).all()
    recipients: list[tuple[int | None, str, str]] = [(r.id, r.phone, r.locale) for r in rows]
    dept = rt.directory.by_id.get(dept_id)
    if duty_officer and dept is not None:
        duty = (
            await tx.execute(select(departments.c.duty_phone).where(departments.c.id == dept_id))
        ).scalar()
        if duty and duty not in {phone for _, phone, _ in recipients}:
            recipients.append((None, duty, rt.settings.default_locale))
    made = []
    for user_id, phone, locale in recipients:
        params = {**ticket_params(rt, ticket, locale), **extra}
        body = render(rt, key, locale, params)
        message_id = await queue_staff_sms(
            tx,
            rt,
            phone,
            body,
            actor=SYSTEM,
            kind=kind,
            user_id=user_id,
            ticket_id=ticket["id"],
            urgent=urgent,
            dedupe_key=f"{dedupe}:{phone}" if dedupe else None,
        )
        if message_id:
            made.append(message_id)
    return made
