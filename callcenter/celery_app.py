"""The Celery application of a worker: ``celery -A callcenter.celery_app worker``.

Part of the composition root: it builds the worker's runtime with
:mod:`callcenter.bootstrap` from the same settings as every other process
(``CALLCENTER_*``, ``CALLCENTER_CONFIG``), so a worker runs the job handlers of the
channels the settings name. ``callcenter worker --celery`` starts the same worker.
See :mod:`callcenter.jobs.celery_driver` and ``docs/scaling.md``.
"""

from __future__ import annotations

from celery import Celery

from callcenter.bootstrap import build_runtime, close_runtime, start_relay, start_runtime
from callcenter.config import Settings
from callcenter.jobs.celery_driver import WorkerHost, add_task, make_celery
from callcenter.runtime import Runtime


def worker_app(settings: Settings) -> tuple[Celery, WorkerHost]:
    """A Celery application whose task runs jobs in a runtime built from ``settings``."""
    settings = settings.model_copy(
        update={"jobs": settings.jobs.model_copy(update={"driver": "celery"})}
    )

    async def open_runtime(main: bool) -> Runtime:
        rt = build_runtime(settings)
        # the main process runs what `callcenter serve` runs in the background (the relay,
        # the inbox, the ACD); a pool child runs tasks, and relays what its commits enqueue
        await start_runtime(rt, start_jobs=main)
        if not main:
            await start_relay(rt)
        return rt

    host = WorkerHost(open_runtime, close_runtime)
    app = make_celery(settings)
    add_task(app, host)
    return app, host


app, host = worker_app(Settings())
