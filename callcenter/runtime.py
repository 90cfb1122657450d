"""The runtime: the long-lived parts every action and handler works with.

Built once by the composition root (:mod:`callcenter.bootstrap`) and passed
explicitly; there are no module-level singletons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from callcenter.background import Background
from callcenter.bus import EventBus
from callcenter.clock import Clock
from callcenter.config import QueueSettings, Settings, SlaSettings
from callcenter.domain.calendar import WorkCalendar
from callcenter.domain.quiet import QuietHours
from callcenter.domain.routing import Category, Department, Directory, GridCell
from callcenter.domain.sla import SlaPolicy
from callcenter.foreground import Foreground
from callcenter.i18n import Catalog
from callcenter.jobs.executor import JobDriver, JobRegistry, JobRunner
from callcenter.media.service import MediaService
from callcenter.ports import ChannelRegistry
from callcenter.store.db import Database, Tx
from callcenter.store.tables import (
    calendar_days,
    categories,
    config_version,
    departments,
    grid_cells,
    queue_settings,
    sla_policy,
    text_overrides,
)

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    random: random.Random
    catalog: Catalog
    calendar: WorkCalendar
    sla: SlaPolicy
    bus: EventBus
    jobs: JobRegistry
    channels: ChannelRegistry
    directory: Directory = field(default_factory=lambda: Directory([], [], []))
    quiet_hours: QuietHours | None = None
    runner: JobRunner | None = None
    foreground: Foreground = field(default_factory=Foreground)
    # the background work this process runs (callcenter.background), started by the
    # composition root: the jobs (in-process or Celery), the inbox, the ACD
    driver: JobDriver | None = None
    inbox: Background | None = None  # callcenter.actions.inbox.Inbox, made on first use
    acd: Background | None = None
    media: MediaService | None = None  # Janus, when the media setting is not "off"
    extras: dict[str, Any] = field(default_factory=dict)
    # reloads the directory when any process changed it (callcenter.bus DIRECTORY_CHANGED)
    directory_watch: asyncio.Task[None] | None = None
    config_seen: int | None = None  # the config_version the loaded configuration is of
    configured_queues: dict[str, QueueSettings] | None = None  # [acd.queues] as started

    def __post_init__(self) -> None:
        self.db.commit_hooks.append(self._after_commit)

    def _after_commit(self, tx: Tx) -> None:
        for event in tx.events:
            self.bus.publish(event)
        if tx.jobs_enqueued and self.driver is not None:
            self.driver.wake()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A unit of work stamped with the clock's "now" (``tx.state["now"]``)."""
        async with self.db.transaction() as tx:
            tx.state["now"] = self.clock.now()
            yield tx

    def text(self, key: str, locale: str | None = None, /, **params: Any) -> str:
        return self.catalog.text(key, locale, **params)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.calendar.zone)

    def local_text(self, when: datetime | None, *, with_time: bool = True) -> str:
        if when is None:
            return ""
        return self.local(when).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")

    def watch_directory(self) -> None:
        """Reload the configuration when another process changed it: every change moves
        ``config_version`` in its transaction, and this looks at it every
        ``config_poll_seconds``, so an administrator's change (a category, a holiday, a
        text) takes effect on every server and worker without a restart. The process
        that made the change has reloaded already."""
        if self.directory_watch is not None:
            return

        async def watch() -> None:
            while True:
                await asyncio.sleep(self.settings.config_poll_seconds)
                try:
                    async with self.db.read() as conn:
                        version = await conn.scalar(select(config_version.c.version))
                    if version != self.config_seen:
                        await self.reload_directory()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database restart: look again at the next turn
                    log.exception("could not check the configuration version")

        self.directory_watch = asyncio.create_task(watch(), name="config-watch")

    async def stop_watching_directory(self) -> None:
        task, self.directory_watch = self.directory_watch, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _apply_queues(self, rows: Sequence[Any]) -> None:
        """The configured queues with the administrators' queues over them."""
        if self.configured_queues is None:
            self.configured_queues = dict(self.settings.acd.queues)
        queues = dict(self.configured_queues)
        for r in rows:
            queues[r.name] = QueueSettings(
                strategy=r.strategy,
                overflow_to=r.overflow_to,
                overflow_after_s=r.overflow_after_s,
                offer_timeout_s=r.offer_timeout_s,
                wrap_up_s=r.wrap_up_s,
            )
        if queues != self.settings.acd.queues:
            acd = self.settings.acd.model_copy(update={"queues": queues})
            self.settings = self.settings.model_copy(update={"acd": acd})

    def _apply_calendar_days(self, days: dict[date, str]) -> None:
        """The settings' calendar with the administrators' local days over it."""
        cal = self.settings.calendar
        base = WorkCalendar.from_settings(
            self.settings.timezone, cal.work_hours, cal.extra_holidays, cal.extra_workdays
        )
        holidays = {d for d, kind in days.items() if kind == "holiday"}
        workdays = {d for d, kind in days.items() if kind == "workday"}
        self.calendar = replace(
            base,
            extra_holidays=frozenset((base.extra_holidays - workdays) | holidays),
            extra_workdays=frozenset((base.extra_workdays - holidays) | workdays),
        )
        self.sla = replace(self.sla, calendar=self.calendar)

    async def reload_directory(self) -> Directory:
        """Departments, categories, grid cells, the calendar's local days and the texts
        administrators rewrote, as stored."""
        async with self.db.read() as conn:
            # first: a change committed while the rest is read is seen at the next look
            seen = await conn.scalar(select(config_version.c.version))
            dept_rows = (await conn.execute(select(departments))).all()
            cat_rows = (
                await conn.execute(select(categories).where(categories.c.active.is_(True)))
            ).all()
            cell_rows = (await conn.execute(select(grid_cells))).all()
            day_rows = (await conn.execute(select(calendar_days))).all()
            text_rows = (await conn.execute(select(text_overrides))).all()
            queue_rows = (await conn.execute(select(queue_settings))).all()
            policy = await conn.scalar(select(sla_policy.c.policy).where(sla_policy.c.id == 1))
        self.config_seen = seen
        self._apply_calendar_days({r.day: r.kind for r in day_rows})
        self.catalog.apply_overrides({(r.locale, r.key): r.body for r in text_rows})
        self._apply_queues(queue_rows)
        self.sla = replace(
            self.sla,
            settings=SlaSettings.model_validate(policy) if policy else self.settings.sla,
        )
        self.directory = Directory(
            [
                Department(
                    r.id, r.code, r.kind, r.name_zh, r.name_en, r.parent_id, tuple(r.keywords or ())
                )
                for r in dept_rows
                if r.active
            ],
            [
                Category(
                    r.id,
                    r.code,
                    r.name_zh,
                    r.name_en,
                    r.department_kind,
                    r.default_type,
                    tuple(r.keywords_zh or ()),
                    tuple(r.keywords_en or ()),
                    r.default_priority,
                    r.handle_working_days,
                )
                for r in cat_rows
            ],
            [
                GridCell.from_geojson(r.id, r.code, r.name, r.owner_id, r.geometry)
                for r in cell_rows
            ],
        )
        self.sla = replace(
            self.sla,
            category_days={
                c.id: c.handle_working_days
                for c in self.directory.categories
                if c.handle_working_days is not None
            },
        )
        return self.directory
