"""What follows a ticket's step: notices to the citizen, messages to the
department, reminders and the survey. Called by the ticket actions inside
their transaction, so a step and its follow-ups commit together.

- create (not dispatched): the citizen hears it is registered, with number and link;
- dispatch: the citizen hears which department and the due date; reminders are
  scheduled; an urgent ticket alerts the department's staff and duty officer;
- approve_extension: the citizen hears the new due date; reminders move;
- urge 催办 / supervise 督办: SMS to the department;
- close / direct_answer: the citizen gets the answer (shortened) and a status
  link; the survey is scheduled;
- reopen 重办: the citizen hears it, the department gets the reason; reminders.

Tickets opened by auto-intake skip the citizen's notices at creation: the
intake reply already says all of it.
"""

from __future__ import annotations

from typing import Any

from callcenter.actions import notify
from callcenter.actions.schedules import schedule_reminders, schedule_survey
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.records import TicketRecord


async def after_create(
    tx: Tx, rt: Runtime, ticket: TicketRecord, *, dispatched: bool, tell_citizen: bool
) -> None:
    if dispatched:
        await _dispatched(tx, rt, ticket)
    if not tell_citizen:
        return
    key = "notify.ticket_dispatched_new" if dispatched else "notify.ticket_created"
    # the answer to what the citizen just told us: not held for the quiet hours
    await notify.notify_citizen(tx, rt, ticket, key, kind="auto_reply")


async def _dispatched(tx: Tx, rt: Runtime, ticket: TicketRecord) -> None:
    await schedule_reminders(tx, rt, ticket)
    if ticket["priority"] == "urgent":
        await notify.notify_department(
            tx,
            rt,
            ticket,
            "notify.urgent_alert",
            urgent=True,
            duty_officer=True,
            kind="alert",
            deadline=rt.local_text(ticket["sign_due_at"]),
        )


async def after_step(
    tx: Tx, rt: Runtime, step: str, ticket: TicketRecord, *, actor: Actor, params: dict[str, Any]
) -> None:
    urgent = ticket["priority"] == "urgent"
    match step:
        case "dispatch":
            await _dispatched(tx, rt, ticket)
            await notify.notify_citizen(tx, rt, ticket, "notify.ticket_dispatched")
        case "approve_extension":
            await schedule_reminders(tx, rt, ticket)
            await notify.notify_citizen(tx, rt, ticket, "notify.extension")
        case "urge":
            key = "notify.remind_overdue" if params.get("overdue") else "notify.urged"
            await notify.notify_department(
                tx,
                rt,
                ticket,
                key,
                urgent=urgent,
                note=params.get("note") or "",
                deadline=rt.local_text(ticket["due_at"]),
            )
        case "supervise":
            await notify.notify_department(
                tx, rt, ticket, "notify.supervised", urgent=urgent, note=params.get("note") or ""
            )
        case "close" | "direct_answer":
            if not params.get("in_conversation"):  # an answer given in a chat is already there
                await notify.notify_citizen(
                    tx, rt, ticket, "notify.closed", shorten="answer", answer=ticket["reply"] or ""
                )
            await schedule_survey(tx, rt, ticket)
        case "reopen":
            await schedule_reminders(tx, rt, ticket)
            await notify.notify_citizen(tx, rt, ticket, "notify.reopened")
            await notify.notify_department(
                tx,
                rt,
                ticket,
                "notify.reopened_department",
                urgent=urgent,
                reason=params.get("reason") or "",
            )
