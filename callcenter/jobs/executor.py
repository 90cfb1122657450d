"""Running jobs: claiming, executing, retrying, and the in-process driver."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update

from callcenter.background import Loop
from callcenter.clock import Clock
from callcenter.config import Settings
from callcenter.foreground import Foreground
from callcenter.jobs.outbox import Job, JobOutcome
from callcenter.store.db import Database
from callcenter.store.tables import jobs

log = logging.getLogger(__name__)

# a handler takes the runtime (callcenter.runtime.Runtime, which holds this module's
# registry: the one type this module does not name, so that the imports run one way)
Handler = Callable[[Any, Job], Awaitable[JobOutcome | None]]


class PermanentFailure(Exception):
    """The job can never succeed (invalid number, unsubscribed...): no retry."""


class RetryLater(Exception):
    """Try again after ``delay`` seconds.

    With ``count=False`` the attempt is given back: used for rate limits and
    quiet hours, which are not failures.
    """

    def __init__(self, delay: float, reason: str = "", *, count: bool = True) -> None:
        super().__init__(reason or f"retry in {delay:.1f}s")
        self.delay = delay
        self.count = count


@dataclass
class JobRegistry:
    """Job kinds and their handlers. Adapters add theirs at start-up."""

    handlers: dict[str, Handler]

    def __init__(self) -> None:
        self.handlers = {}

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self.handlers and self.handlers[kind] is not handler:
            raise ValueError(f"job kind {kind!r} is already registered")
        self.handlers[kind] = handler


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobContext(Protocol):
    """What running jobs needs of the runtime (:class:`callcenter.runtime.Runtime` has it)."""

    settings: Settings
    db: Database
    clock: Clock
    random: random.Random
    jobs: JobRegistry
    foreground: Foreground


class JobRunner:
    """Claims due jobs and runs them. Shared by every driver."""

    def __init__(self, rt: JobContext, *, name: str | None = None) -> None:
        self.rt = rt
        self.name = name or worker_name()
        settings = rt.settings.jobs
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.concurrency = settings.concurrency

    def backoff(self, attempts: int) -> timedelta:
        settings = self.rt.settings.jobs
        base = settings.backoff_base_seconds * (2 ** max(attempts - 1, 0))
        jitter = 0.8 + 0.4 * self.rt.random.random()
        return timedelta(seconds=min(base * jitter, settings.backoff_max_seconds))

    def _due(self, now: datetime) -> Any:
        return or_(
            and_(jobs.c.state == "pending", jobs.c.run_at <= now),
            and_(jobs.c.state == "running", jobs.c.locked_until < now),
        )

    async def claim(self, limit: int, *, ids: list[int] | None = None) -> list[Job]:
        """Lease up to ``limit`` due jobs to this runner."""
        now = self.rt.clock.now()
        async with self.rt.db.transaction(serialize=False) as tx:
            query = select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts).where(self._due(now))
            if ids is not None:
                query = query.where(jobs.c.id.in_(ids))
            query = query.order_by(jobs.c.run_at, jobs.c.id).limit(limit)
            query = query.with_for_update(skip_locked=True)
            due = (await tx.execute(query)).all()
            # every attempt spent, yet due again: each attempt was lost with its worker
            # (killed mid-job, no outcome recorded). A job that kills whoever runs it
            # goes to the dead letters instead of going round for ever.
            lost = [row.id for row in due if row.attempts >= row.max_attempts]
            if lost:
                await tx.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(lost), self._due(now))
                    .values(
                        state="dead",
                        last_error="every attempt was lost with the worker running it",
                        locked_by=None,
                        locked_until=None,
                        finished_at=now,
                        updated_at=now,
                    )
                )
            chosen = [row.id for row in due if row.attempts < row.max_attempts]
            if not chosen:
                return []
            result = await tx.execute(
                update(jobs)
                .where(jobs.c.id.in_(chosen), self._due(now))
                .values(
                    state="running",
                    attempts=jobs.c.attempts + 1,
                    locked_by=self.name,
                    locked_until=now + self.lease,
                    updated_at=now,
                )
                .returning(*jobs.c)
            )
            claimed = [Job.from_row(row) for row in result.all()]
        claimed.sort(key=lambda j: (j.run_at, j.id))
        return claimed

    async def execute(self, job: Job) -> str:
        """Run one claimed job and record its outcome; returns the new state."""
        handler = self.rt.jobs.handlers.get(job.kind)
        values: dict[str, Any]
        try:
            if handler is None:
                raise PermanentFailure(f"no handler for job kind {job.kind!r}")
            result = await handler(self.rt, job)
        except RetryLater as exc:
            now = self.rt.clock.now()
            # at least a millisecond: a job may not come back due at the very same instant
            values = {"state": "pending", "run_at": now + timedelta(seconds=max(exc.delay, 0.001))}
            if not exc.count:
                values["attempts"] = jobs.c.attempts - 1
            elif job.attempts >= job.max_attempts:
                values = {"state": "dead", "finished_at": now}
            values["last_error"] = str(exc)
        except PermanentFailure as exc:
            now = self.rt.clock.now()
            values = {"state": "dead", "last_error": str(exc), "finished_at": now}
        except Exception as exc:
            now = self.rt.clock.now()
            log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, exc)
            error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            if job.attempts >= job.max_attempts:
                values = {"state": "dead", "last_error": error, "finished_at": now}
            else:
                values = {
                    "state": "pending",
                    "run_at": now + self.backoff(job.attempts),
                    "last_error": error,
                }
        else:
            if job.finished:  # the handler's own transaction recorded it (finish_in)
                return "done"
            now = self.rt.clock.now()
            values = {"state": "done", "result": result, "finished_at": now, "last_error": None}
        values.update(locked_by=None, locked_until=None, updated_at=now)
        async with self.rt.db.transaction(serialize=False) as tx:
            await tx.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.locked_by == self.name)
                .values(**values)
            )
        return str(values["state"])

    async def run_due(self, limit: int | None = None) -> int:
        """Claim and run one batch of due jobs; returns how many ran."""
        batch = await self.claim(limit or self.concurrency)
        if batch:
            await asyncio.gather(*(self.execute(job) for job in batch))
        return len(batch)

    async def drain(self, max_rounds: int = 1000) -> int:
        """Run due jobs until none is due (for tests, the CLI and shutdown)."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_due()
            if not ran:
                break
            total += ran
        return total

    async def next_due(self) -> datetime | None:
        async with self.rt.db.read() as conn:
            pending = await conn.scalar(
                select(func.min(jobs.c.run_at)).where(jobs.c.state == "pending")
            )
            leased = await conn.scalar(
                select(func.min(jobs.c.locked_until)).where(jobs.c.state == "running")
            )
        candidates = [t for t in (pending, leased) if t is not None]
        return min(candidates) if candidates else None


class JobDriver(ABC):
    """What makes jobs run: a loop in this process, or Celery workers."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def wake(self) -> None:
        """Called after a commit that enqueued jobs."""


class InProcessDriver(Loop, JobDriver):
    """Runs jobs in the server's own event loop (a :class:`~callcenter.background.Loop`).

    Wakes on every commit that enqueued jobs, at the next scheduled job's time,
    and at least every ``poll_seconds`` (to notice jobs written by another
    process, such as the CLI, and leases that ran out). Jobs run as tasks, at
    most ``concurrency`` at once (``busy_concurrency`` while webhooks come).
    """

    name = "jobs"

    def __init__(self, runner: JobRunner) -> None:
        rt = runner.rt
        super().__init__(poll=rt.settings.jobs.poll_seconds, foreground=rt.foreground)
        self.runner = runner
        self._running: set[asyncio.Task[str]] = set()

    async def stop(self) -> None:
        await super().stop()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def run_once(self) -> float | None:
        rt = self.runner.rt
        limit = self.runner.concurrency
        if rt.foreground.busy():  # fewer jobs at once while webhooks come
            limit = min(limit, rt.settings.jobs.busy_concurrency)
        free = limit - len(self._running)
        batch = await self.runner.claim(free) if free > 0 else []
        for job in batch:
            task = asyncio.create_task(self.runner.execute(job))
            self._running.add(task)
            task.add_done_callback(self._done)
        if batch and len(batch) == free:
            return 0.0  # there may be more due right now
        upcoming = await self.runner.next_due()
        if upcoming is None:
            return None
        return max(0.01, (upcoming - rt.clock.now()).total_seconds())

    def _done(self, task: asyncio.Task[str]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job task crashed: %s", task.exception())
        self.wake()
