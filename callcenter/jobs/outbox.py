"""Putting jobs into the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update

from callcenter.store.db import Tx
from callcenter.store.queries import insert_ignore
from callcenter.store.tables import jobs

# what a job's handler records as its outcome (the jobs table's JSON ``result``): JSON
# values only (read-only shapes, so that a dict of str or a list of ids is one)
Json = str | int | float | bool | None | Sequence["Json"] | Mapping[str, "Json"]
JobOutcome = Mapping[str, Json]


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    locked_by: str | None = None  # the runner that holds the lease
    # set once a handler's own transaction recorded the job done (see finish_in)
    finished: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            row.id,
            row.kind,
            row.key,
            dict(row.payload),
            row.attempts,
            row.max_attempts,
            row.run_at,
            row.locked_by,
        )


_FINISH = update(jobs).where(
    jobs.c.id == bindparam("b_id"), jobs.c.locked_by == bindparam("b_lease")
)


async def finish_in(tx: Tx, job: Job, result: dict[str, Any] | None) -> None:
    """Record ``job`` done inside the handler's own last transaction.

    The job's outcome then commits with its effect, and the runner has no
    transaction of its own left to run. Without the lease (taken over by another
    runner meanwhile) nothing is recorded here, and the runner's usual record,
    which checks the lease too, does nothing either.
    """
    now = tx.state["now"]
    done = await tx.execute(
        _FINISH,
        {
            "b_id": job.id,
            "b_lease": job.locked_by,
            "state": "done",
            "result": result,
            "finished_at": now,
            "last_error": None,
            "locked_by": None,
            "locked_until": None,
            "updated_at": now,
        },
    )
    if done.rowcount:
        tx.after_commit(lambda: job.finished.update(result=result))


async def enqueue(
    tx: Tx,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    now: datetime,
    run_at: datetime | None = None,
    max_attempts: int = 8,
) -> bool:
    """Add a job unless one with the same ``key`` exists. Returns whether it was added.

    The key makes scheduling idempotent: enqueuing "remind ticket 42 at 75 %"
    twice leaves one job.
    """
    inserted = await insert_ignore(
        tx,
        jobs,
        {
            "kind": kind,
            "key": key,
            "payload": payload,
            "state": "pending",
            "run_at": run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
            "updated_at": now,
        },
        conflict=("key",),
    )
    if inserted:
        tx.jobs_enqueued += 1
    return inserted


async def cancel(tx: Tx, key: str, *, now: datetime) -> bool:
    """Cancel a pending job (e.g. a reminder made moot by a reply)."""
    result = await tx.execute(
        update(jobs)
        .where(jobs.c.key == key, jobs.c.state == "pending")
        .values(state="cancelled", updated_at=now, finished_at=now)
    )
    return bool(result.rowcount)


async def enqueue_many(tx: Tx, entries: list[dict[str, Any]], *, now: datetime) -> None:
    """Several jobs in one statement; each entry has kind, payload, key, run_at and
    max_attempts. Keys already taken are passed over, as with :func:`enqueue`."""
    if not entries:
        return
    rows = [
        {
            "kind": e["kind"],
            "key": e["key"],
            "payload": e["payload"],
            "state": "pending",
            "run_at": e.get("run_at") or now,
            "attempts": 0,
            "max_attempts": e["max_attempts"],
            "created_at": now,
            "updated_at": now,
        }
        for e in entries
    ]
    await insert_ignore(tx, jobs, rows, conflict=("key",))
    tx.jobs_enqueued += len(rows)
