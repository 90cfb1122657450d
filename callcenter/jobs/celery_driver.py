"""The Celery driver: the outbox stays the truth, Celery carries the work to the workers.

``jobs.driver = "celery"`` (``docs/scaling.md``). Nothing about a job lives only in the
broker: the ``jobs`` table says what is due, what runs where and what is done, and
the broker is a way to wake a worker on another machine.

- The **relay** (:class:`CeleryRelay`, a :class:`~callcenter.background.Loop` in every
  web node and worker with this driver) takes the due jobs that no broker holds, marks
  them handed over (``locked_by = "relay"`` and ``locked_until`` ``jobs.resend_seconds``
  ahead, in one transaction, ``SKIP LOCKED`` so that relays on several nodes share
  them), and sends one task per job whose task id is the job's id. A job whose worker
  died (``running`` with its lease run out) is handed over again the same way. It
  wakes on every commit that enqueued a job, at the next job's ``run_at``, and every
  ``jobs.poll_seconds``.
- A **worker** (``callcenter worker --celery``, or ``celery -A callcenter.celery_app
  worker``) runs :func:`run_job`: it claims that one job with the lease of the
  in-process executor and runs it with the same :class:`~callcenter.jobs.executor.JobRunner`.
  A task whose job is done, cancelled, not due or held by another worker does nothing,
  so a task delivered twice (a redelivery, a resend) runs its job once.
- Tasks are acknowledged after they ran (``task_acks_late``), given back when their
  worker process dies (``task_reject_on_worker_lost``), taken one at a time
  (``worker_prefetch_multiplier = 1``), and handed out again by the broker only after
  ``jobs.visibility_timeout_seconds`` (longer than any lease; the settings refuse
  less). Redeliveries are bounded by the job's own ``max_attempts``: every delivery
  that claims the job spends an attempt, and a job whose attempts were all lost with
  their workers goes to the dead letters (:meth:`JobRunner.claim`).

The tasks run on an event loop of their own per worker process (:class:`WorkerHost`),
in a runtime built by the composition root (``callcenter/celery_app.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import and_, func, or_, select, update

from callcenter.background import Loop
from callcenter.config import Settings
from callcenter.jobs.executor import JobDriver, JobRunner
from callcenter.store.tables import jobs

log = logging.getLogger(__name__)

TASK = "callcenter.run_job"
RELAY = "relay"  # locked_by of a job handed to the broker
T = TypeVar("T")


def make_celery(settings: Settings) -> Celery:
    """The Celery application for these settings (no task registered: see :func:`add_task`)."""
    broker = settings.jobs.broker_url or settings.redis_url
    if not broker:
        raise ValueError('jobs.driver = "celery" needs jobs.broker_url or redis_url')
    app = Celery("callcenter", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.jobs.visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.jobs.celery_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


async def run_job(runner: JobRunner, job_id: int) -> str:
    """What a task does: claim its one job and run it; "skipped" if it is not ours to run."""
    claimed = await runner.claim(1, ids=[job_id])
    if not claimed:
        return "skipped"
    return await runner.execute(claimed[0])


class CeleryRelay(Loop, JobDriver):
    """Hands the due jobs to the broker (see the module's docs)."""

    name = "jobs-relay"

    def __init__(self, runner: JobRunner, app: Celery) -> None:
        rt = runner.rt
        super().__init__(poll=rt.settings.jobs.poll_seconds, foreground=rt.foreground)
        self.runner = runner
        self.app = app
        self.sent = 0  # tasks sent, for tests and the metrics
        # kombu's connections are not for several threads at once: one sender thread
        self._sender = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="relay-send")

    async def stop(self) -> None:
        await super().stop()
        self._sender.shutdown(wait=True)

    def _sendable(self, now: Any) -> Any:
        held = jobs.c.locked_until
        return or_(
            and_(
                jobs.c.state == "pending",
                jobs.c.run_at <= now,
                or_(held.is_(None), held < now),
            ),
            and_(jobs.c.state == "running", held < now),
        )

    async def hand_over(self) -> list[int]:
        """Mark a batch of due jobs handed over; returns their ids (sent after commit)."""
        settings = self.runner.rt.settings.jobs
        now = self.runner.rt.clock.now()
        async with self.runner.rt.db.transaction(serialize=False) as tx:
            query = (
                select(jobs.c.id)
                .where(self._sendable(now))
                .order_by(jobs.c.run_at, jobs.c.id)
                .limit(settings.relay_batch)
                .with_for_update(skip_locked=True)
            )
            chosen = [row.id for row in (await tx.execute(query)).all()]
            if not chosen:
                return []
            # a job whose worker died is pending again: its next claim spends an attempt
            result = await tx.execute(
                update(jobs)
                .where(jobs.c.id.in_(chosen), self._sendable(now))
                .values(
                    state="pending",
                    locked_by=RELAY,
                    locked_until=now + timedelta(seconds=settings.resend_seconds),
                    updated_at=now,
                )
                .returning(jobs.c.id)
            )
            return sorted(row.id for row in result.all())

    async def _give_back(self, ids: list[int]) -> None:
        """The broker did not take them: due again at the next round."""
        async with self.runner.rt.db.transaction(serialize=False) as tx:
            await tx.execute(
                update(jobs)
                .where(jobs.c.id.in_(ids), jobs.c.state == "pending", jobs.c.locked_by == RELAY)
                .values(locked_by=None, locked_until=None)
            )

    def _send(self, ids: list[int]) -> None:
        queue = self.runner.rt.settings.jobs.celery_queue
        with self.app.producer_or_acquire() as producer:
            for job_id in ids:
                self.app.send_task(
                    TASK, args=[job_id], task_id=str(job_id), queue=queue, producer=producer
                )

    async def run_once(self) -> float | None:
        ids = await self.hand_over()
        if ids:
            try:
                await asyncio.get_running_loop().run_in_executor(self._sender, self._send, ids)
            except Exception:
                await self._give_back(ids)
                raise
            self.sent += len(ids)
            if len(ids) == self.runner.rt.settings.jobs.relay_batch:
                return 0.0
        upcoming = await self.next_due()
        if upcoming is None:
            return None
        return max(0.01, (upcoming - self.runner.rt.clock.now()).total_seconds())

    async def next_due(self) -> datetime | None:
        """When the next job becomes due, or a hand-over or a lease runs out."""
        async with self.runner.rt.db.read() as conn:
            free = await conn.scalar(
                select(func.min(jobs.c.run_at)).where(
                    jobs.c.state == "pending", jobs.c.locked_until.is_(None)
                )
            )
            held = await conn.scalar(
                select(func.min(jobs.c.locked_until)).where(
                    jobs.c.state.in_(("pending", "running"))
                )
            )
        candidates = [t for t in (free, held) if t is not None]
        return min(candidates) if candidates else None


class WorkerHost:
    """The event loop and the runtime a Celery worker process runs its tasks in.

    Celery calls tasks as plain functions, in its pool's threads or forked
    processes; the job code is asynchronous and wants one long-lived runtime (its
    database pool, its channels, the bus). So each process gets one event loop in a
    thread of its own, made on first use (a forked pool child makes its own: a loop
    does not survive a fork), and the tasks hand their coroutines to it.

    ``open_runtime(main)`` builds and starts the runtime: ``main`` for the worker's
    main process, which also runs the relay, the inbox and the ACD; a prefork pool's
    children (``child``, set by Celery's ``worker_process_init``) only run tasks, and
    a relay for the jobs their own commits enqueue.
    """

    def __init__(
        self,
        open_runtime: Callable[[bool], Coroutine[Any, Any, Any]],
        close_runtime: Callable[[Any], Coroutine[Any, Any, None]],
    ) -> None:
        self._open = open_runtime
        self._close = close_runtime
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.rt: Any = None
        self.runner: JobRunner | None = None
        self.child = False

    def start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="callcenter-loop", daemon=True)
            thread.start()
            self._pid, self._loop, self._thread = os.getpid(), loop, thread
            self.rt = asyncio.run_coroutine_threadsafe(self._open(not self.child), loop).result()
            self.runner = JobRunner(self.rt)

    def call(self, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        if self._pid != os.getpid():
            self.start()
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work(self.rt), self._loop).result()

    def run(self, job_id: int) -> str:
        if self._pid != os.getpid():
            self.start()
        runner = self.runner
        assert runner is not None
        return self.call(lambda _rt: run_job(runner, job_id))

    def stop(self) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None:
                return
            loop, rt = self._loop, self.rt
            try:
                asyncio.run_coroutine_threadsafe(self._close(rt), loop).result(60)
            except Exception:
                log.exception("the worker's runtime did not close cleanly")
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._pid = self._loop = self._thread = self.rt = self.runner = None


def add_task(app: Celery, host: WorkerHost) -> None:
    """Register the one task, and open and close ``host`` with the worker."""
    from celery import signals

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run(job_id: int) -> str:
        return host.run(int(job_id))

    @signals.worker_process_init.connect(weak=False)
    def child(**_: Any) -> None:
        host.child = True

    @signals.worker_ready.connect(weak=False)
    def ready(**_: Any) -> None:
        host.start()

    @signals.worker_shutdown.connect(weak=False)
    def shutdown(**_: Any) -> None:
        host.stop()

    @signals.worker_process_shutdown.connect(weak=False)
    def child_shutdown(**_: Any) -> None:
        host.stop()
