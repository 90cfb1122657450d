"""What an operator does from the command line: put a dead job, or the inbound texts
that failed, back in line once the cause is fixed.

Each is an action like any other: one transaction, the operator as its actor
(:func:`operator`: the login that ran the command), an audit event naming what
was put back. Whichever process runs the jobs and the inbox takes them at its
next look.
"""

from __future__ import annotations

import getpass
from datetime import datetime

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.domain.workflow import Actor, Role
from callcenter.store.db import Database
from callcenter.store.tables import inbox, jobs


def operator(login: str | None = None) -> Actor:
    """The person at the server's command line (an administrator with no staff account)."""
    try:
        who = login or getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = "unknown"
    return Actor(id=None, role=Role.ADMIN, name=f"{who} (command line)")


async def requeue_dead_job(db: Database, job_id: int, *, actor: Actor, now: datetime) -> bool:
    """A dead job runs again from its first attempt; False when there is no such dead job."""
    async with db.transaction() as tx:
        tx.state["now"] = now
        row = (
            await tx.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.state == "dead"))
        ).first()
        if row is None:
            return False
        await tx.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == "dead")
            .values(state="pending", run_at=now, attempts=0, updated_at=now, finished_at=None)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="job",
            entity_id=job_id,
            action="job.requeue",
            before={"state": "dead", "attempts": row.attempts, "last_error": row.last_error},
            after={"state": "pending", "attempts": 0},
            details={"kind": row.kind},
        )
        return True


async def requeue_failed_texts(db: Database, *, actor: Actor, now: datetime) -> int:
    """Inbound texts that failed are handled again; how many."""
    async with db.transaction() as tx:
        tx.state["now"] = now
        failed = (
            await tx.execute(select(inbox.c.id, inbox.c.error).where(inbox.c.state == "failed"))
        ).all()
        if not failed:
            return 0
        ids = [row.id for row in failed]
        await tx.execute(
            update(inbox).where(inbox.c.id.in_(ids)).values(state="pending", error=None)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="inbox",
            entity_id=None,
            action="inbox.requeue",
            before={"state": "failed"},
            after={"state": "pending"},
            details={"rows": ids, "errors": sorted({row.error or "" for row in failed})[:20]},
        )
        return len(ids)
