"""The jobs that follow a ticket's steps, scheduled: the reminders to its department and
the callback survey to its citizen.

Called by :mod:`callcenter.actions.followups` inside the step's transaction; the
jobs themselves are run by :mod:`callcenter.actions.reminders` and
:mod:`callcenter.actions.surveys`, which take ticket steps (an overdue ticket is
urged, a low score reopens it). Scheduling lives apart from running so that the
imports run one way: tickets -> followups -> schedules, and reminders and
surveys -> tickets.

Reminders: when a ticket is dispatched (again), three are scheduled: at the
sign-for deadline if it is still not signed for, at 75 % of the handling time
(``notify.reminder_at``), and at the handling deadline, when the system also
urges (催办) the ticket. Each job's key names the ticket, the stage and the
deadline it watches, so scheduling twice makes one job, and a deadline moved by
an extension gets its own new jobs while the old ones find their deadline gone
and do nothing.

The survey: ``notify.survey_delay_minutes`` after closure (moved out of the quiet
hours), on the channel the citizen can be reached on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from callcenter.actions import audit, notify
from callcenter.domain.workflow import SYSTEM
from callcenter.jobs.outbox import enqueue, enqueue_many
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_row
from callcenter.store.records import TicketRecord
from callcenter.store.tables import surveys

REMIND = "ticket.remind"
SURVEY_SEND, SURVEY_REMIND, SURVEY_EXPIRE = "survey.send", "survey.remind", "survey.expire"


def epoch(when: datetime | None) -> int:
    return int(when.timestamp()) if when else 0


def due_soon_at(rt: Runtime, priority: str, start: datetime, due: datetime) -> datetime:
    """When a handling clock running from ``start`` to ``due`` reaches the reminder's share."""
    share = rt.settings.notify.reminder_at
    if rt.sla.is_working(priority):
        return rt.calendar.add(start, rt.calendar.between(start, due) * share)
    return start + (due - start) * share


async def schedule_reminders(tx: Tx, rt: Runtime, ticket: TicketRecord) -> None:
    if not rt.settings.notify.reminders or ticket["state"] not in ("dispatched", "accepted"):
        return
    now = tx.state["now"]
    plan: list[tuple[str, datetime, datetime]] = []
    sign_due = ticket["sign_due_at"]
    if ticket["state"] == "dispatched" and sign_due:
        plan.append(("sign", sign_due, sign_due))
    start, due = ticket["handle_started_at"], ticket["due_at"]
    if due and start:
        plan.append(("due_soon", due_soon_at(rt, ticket["priority"], start, due), due))
        plan.append(("overdue", due, due))
    await enqueue_many(
        tx,
        [
            {
                "kind": REMIND,
                "payload": {
                    "ticket_id": ticket["id"],
                    "stage": stage,
                    "deadline": deadline.isoformat(),
                },
                "key": f"remind:{ticket['id']}:{stage}:{epoch(deadline)}",
                "run_at": max(run_at, now),
                "max_attempts": rt.settings.jobs.max_attempts,
            }
            for stage, run_at, deadline in plan
        ],
        now=now,
    )


async def schedule_survey(tx: Tx, rt: Runtime, ticket: TicketRecord) -> int | None:
    """Plan the survey of a ticket that was just closed. None when no survey is due."""
    settings = rt.settings.notify
    if not settings.survey or ticket.get("closure") not in ("replied", "direct_answer"):
        return None
    conversation = await notify.citizen_conversation(tx, rt, ticket)
    if conversation is None:
        return None
    now = tx.state["now"]
    due = now + timedelta(minutes=settings.survey_delay_minutes)
    if rt.quiet_hours is not None:
        due = rt.quiet_hours.next_allowed(due)
    survey = await insert_row(
        tx,
        surveys,
        {
            "ticket_id": ticket["id"],
            "citizen_id": ticket["citizen_id"],
            "department_id": ticket["department_id"],
            "round": ticket["reopen_count"] + 1,
            "channel": conversation.channel,
            "state": "scheduled",
            "clarifications": 0,
            "created_at": now,
            "due_at": due,
        },
    )
    await audit.record(
        tx,
        actor=SYSTEM,
        entity_type="survey",
        entity_id=survey.id,
        action="survey.schedule",
        after={"ticket_id": ticket["id"], "round": survey.round, "due_at": due},
    )
    await enqueue(
        tx,
        SURVEY_SEND,
        {"survey_id": survey.id},
        key=f"survey:{survey.id}:send",
        now=now,
        run_at=due,
        max_attempts=rt.settings.jobs.max_attempts,
    )
    return int(survey.id)
