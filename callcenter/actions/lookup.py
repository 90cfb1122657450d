"""The public ticket status look-up: a ticket's state and the department's answer,
for whoever knows its number and the last four digits of the citizen's phone.

Wrong digits are counted per ticket number (``throttles``, shared by every
server): after ``FAILURES_PER_TICKET`` in ``WINDOW`` the number is locked for
a while. An unknown number and wrong digits get the same answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy import select

from callcenter.actions.staff import count_attempt, locked_until, throttle_state
from callcenter.domain.errors import NotFound, RateLimited
from callcenter.runtime import Runtime
from callcenter.store.tables import citizen_identities, citizens, tickets
from callcenter.views import category_ref, department_ref

FAILURES_PER_TICKET = 5
WINDOW = timedelta(minutes=15)


class StatusLookup(TypedDict):
    """What the public look-up shows of a ticket (the status page, ``/status`` on the bots)."""

    number: str
    state: str
    state_label: str
    type_label: str
    category: str | None
    department: str | None
    created_at: datetime
    due_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    reply: str | None


async def look_up_ticket(rt: Runtime, number: str, digits: str, locale: str) -> StatusLookup:
    """The ticket's public status, or NotFound; counts wrong digits against the number."""
    key = f"lookup-ticket:{number}"
    now = rt.clock.now()
    async with rt.db.read() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.number == number))).first()
        phones: set[str] = set()
        if row is not None and row.citizen_id is not None:
            citizen = (
                await conn.execute(select(citizens.c.phone).where(citizens.c.id == row.citizen_id))
            ).first()
            if citizen and citizen.phone:
                phones.add(citizen.phone)
            phones |= {
                r.value
                for r in await conn.execute(
                    select(citizen_identities.c.value).where(
                        citizen_identities.c.citizen_id == row.citizen_id,
                        citizen_identities.c.kind == "phone",
                    )
                )
            }
    async with rt.db.transaction(serialize=False) as tx:
        tx.state["now"] = now
        blocked = locked_until(await throttle_state(tx, key), now)
        if blocked is not None:
            raise RateLimited("rate_limited", minutes=max(1, int((blocked - now).seconds / 60) + 1))
        matched = row is not None and any(p.endswith(digits) for p in phones)
        if not matched:
            await count_attempt(tx, key, limit=FAILURES_PER_TICKET, window=WINDOW, lock=WINDOW)
    if not matched or row is None:  # raised after the commit, so the failure is counted
        raise NotFound("lookup_failed")
    label = rt.catalog.label
    category = category_ref(rt, row.category_id, locale)
    department = department_ref(rt, row.department_id, locale)
    return {
        "number": row.number,
        "state": row.state,
        "state_label": label("state", row.state, locale),
        "type_label": label("ticket_type", row.type, locale),
        "category": category["name"] if category else None,
        "department": department["name"] if department else None,
        "created_at": row.created_at,
        "due_at": row.due_at,
        "replied_at": row.replied_at,
        "closed_at": row.closed_at,
        "reply": row.reply,
    }
