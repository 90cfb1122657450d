"""Reminders to departments, as scheduled jobs (scheduled by
:mod:`callcenter.actions.schedules`; run here).

When a ticket is dispatched (again), three reminders are scheduled: at the
sign-for deadline if it is still not signed for, at 75 % of the handling time
(``notify.reminder_at``), and at the handling deadline, when the system also
urges (催办) the ticket. Each job's key names the ticket, the stage and the
deadline it watches, so scheduling twice makes one job, and a deadline moved
by an extension gets its own new jobs while the old ones find their deadline
gone and do nothing. A reminder that runs twice (after a crash) sends nothing
twice: its messages carry the job's key.
"""

from __future__ import annotations

from datetime import datetime

from callcenter.actions import notify
from callcenter.actions.schedules import (  # noqa: F401  (found here before)
    REMIND,
    due_soon_at,
    epoch,
    schedule_reminders,
)
from callcenter.actions.tickets import apply_step
from callcenter.domain.workflow import SYSTEM, Step
from callcenter.jobs.outbox import Job, JobOutcome
from callcenter.runtime import Runtime
from callcenter.store.queries import once, row_by_id
from callcenter.store.tables import tickets


async def remind_ticket(rt: Runtime, job: Job) -> JobOutcome:
    """Job handler: remind the department if the ticket still needs it."""
    stage = job.payload["stage"]
    deadline = datetime.fromisoformat(job.payload["deadline"])
    async with rt.transaction() as tx:
        row = await row_by_id(tx, tickets, int(job.payload["ticket_id"]))
        if row is None:
            return {"skipped": "no such ticket"}
        ticket = row._asdict()
        watched = ticket["sign_due_at"] if stage == "sign" else ticket["due_at"]
        waiting = ("dispatched",) if stage == "sign" else ("dispatched", "accepted")
        if ticket["state"] not in waiting or watched is None or epoch(watched) != epoch(deadline):
            return {"skipped": "no longer needed"}
        if not await once(tx, job.key):
            return {"skipped": "already reminded"}
        if stage == "overdue":
            # escalation: the system urges (催办) the ticket, which tells the department
            await apply_step(
                tx,
                rt,
                ticket["id"],
                Step.URGE,
                actor=SYSTEM,
                note=rt.text("notify.overdue_note", rt.settings.default_locale),
                overdue=True,
            )
            return {"urged": ticket["number"]}
        key = "notify.remind_sign" if stage == "sign" else "notify.remind_due_soon"
        sent = await notify.notify_department(tx, rt, ticket, key, deadline=rt.local_text(watched))
        return {"messages": sent}
