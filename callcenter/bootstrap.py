"""The composition root: builds the runtime and the web server from settings.

This is the one module of the core that imports adapters, and only the ones
the ``channels`` setting names (``"package.module:Class"``) and the web front
ends the ``ui`` setting names (``"package.module:function"``, called with the
application and the runtime: ``agent_ui.app:setup`` by default).
"""

from __future__ import annotations

import html
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from callcenter.actions import mediation_files, mediations, privacy, reminders, surveys
from callcenter.actions.acd import AcdDriver
from callcenter.actions.inbox import inbox
from callcenter.actions.mediation_files import TRANSCRIBER, Transcriber
from callcenter.actions.messages import DELIVER, deliver_message
from callcenter.api import create_api
from callcenter.api.guard import setup_guard
from callcenter.api.http import error_middleware
from callcenter.api.keys import RUNTIME, SETTINGS, SITE_PAGES
from callcenter.bus import EventBus, MemoryBus
from callcenter.channel import Channel, ChannelRegistry
from callcenter.clock import Clock, SystemClock, make_random
from callcenter.config import Settings
from callcenter.domain.calendar import WorkCalendar
from callcenter.domain.quiet import QuietHours
from callcenter.domain.sla import SlaPolicy
from callcenter.foreground import Foreground
from callcenter.i18n import Catalog
from callcenter.jobs.executor import InProcessDriver, JobRegistry, JobRunner
from callcenter.lease import lease_for
from callcenter.media.proxy import setup_media_routes
from callcenter.media.service import MediaService
from callcenter.ops import setup_ops
from callcenter.ports import Page
from callcenter.runtime import Runtime
from callcenter.store.db import Database
from callcenter.store.migrate import current_revision, head_revision

log = logging.getLogger(__name__)


class NotMigrated(RuntimeError):
    pass


def load_channel_class(spec: str) -> type[Channel]:
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"channel {spec!r} must look like 'package.module:Class'")
    cls = getattr(importlib.import_module(module_name), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise TypeError(f"{spec} is not a Channel")
    return cls


def load_ui_setup(spec: str) -> Callable[[web.Application, Runtime], None]:
    """A web front end named in the ``ui`` setting: ``"package.module:function"``."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"ui {spec!r} must look like 'package.module:function'")
    setup = getattr(importlib.import_module(module_name), attribute)
    if not callable(setup):
        raise TypeError(f"{spec} is not callable")
    return setup


def build_runtime(
    settings: Settings, *, clock: Clock | None = None, seed: int | None = None
) -> Runtime:
    """Construct every part; nothing is opened or started yet."""
    calendar = WorkCalendar.from_settings(
        settings.timezone,
        settings.calendar.work_hours,
        settings.calendar.extra_holidays,
        settings.calendar.extra_workdays,
    )
    registry = JobRegistry()
    registry.register(DELIVER, deliver_message)
    registry.register(reminders.REMIND, reminders.remind_ticket)
    registry.register(surveys.SEND, surveys.send_survey)
    registry.register(surveys.REMIND, surveys.remind_survey)
    registry.register(surveys.EXPIRE, surveys.expire_survey)
    registry.register(privacy.RETENTION, privacy.retention_job)
    mediations.register_jobs(registry)
    mediation_files.register_jobs(registry)
    rt = Runtime(
        settings=settings,
        db=Database(settings.effective_database_url, synchronous=settings.sqlite_synchronous),
        clock=clock or SystemClock(),
        random=make_random(seed),
        catalog=Catalog.core(settings.default_locale),
        calendar=calendar,
        sla=SlaPolicy(calendar, settings.sla),
        bus=make_bus(settings),
        jobs=registry,
        channels=ChannelRegistry(),
        quiet_hours=QuietHours.parse(settings.notify.quiet_hours, settings.timezone),
        foreground=Foreground(
            quiet=settings.jobs.gap_ms / 1000,
            max_wait=settings.jobs.gap_max_wait_ms / 1000,
            recent=settings.jobs.busy_ms / 1000,
        ),
    )
    for cls in _without_yielding_stand_ins([load_channel_class(s) for s in settings.channels]):
        if cls.strings_dir is not None:
            rt.catalog.load_dir(cls.strings_dir, prefix=f"channels.{cls.name}")
        rt.channels.add(cls(rt, settings.options_for(cls.name)))
    rt.runner = JobRunner(rt)
    rt.media = MediaService(settings, rt.bus, rt.clock)
    rt.media.on_up.append(lambda node: mediations.rebuild_rooms(rt, node))
    if settings.mediation.transcribe:
        rt.extras[TRANSCRIBER] = _lazy_transcriber(rt)
    return rt


def make_bus(settings: Settings) -> EventBus:
    """In this process alone, or through Redis for several nodes (``redis_url``)."""
    if not settings.redis_url:
        return MemoryBus()
    from callcenter.bus.redis_bus import RedisBus

    return RedisBus(
        settings.redis_url,
        key=f"{settings.redis_prefix}:events",
        max_events=settings.bus_max_events,
    )


def _without_yielding_stand_ins(classes: list[type[Channel]]) -> list[type[Channel]]:
    """A stand-in (the simulated SMS provider) is off when a real adapter of its channel is
    configured too: citizens' numbers must not be writable by anyone but the real provider."""
    real = {cls.name for cls in classes if not cls.stand_in}
    kept = []
    for cls in classes:
        if cls.stand_in and cls.name in real:
            log.warning(
                "channel %s: %s.%s is off, a real adapter is configured",
                cls.name,
                cls.__module__,
                cls.__qualname__,
            )
            continue
        kept.append(cls)
    return kept


def access_report(rt: Runtime) -> list[str]:
    """Which channels are open, where, and to whom, in the default language (said at start)."""
    locale = rt.catalog.default_locale
    lines = []
    for channel in rt.channels:
        ways = channel.access()
        if not ways:
            lines.append(rt.text("access.line_none", locale, channel=channel.name))
        for way in ways:
            detail = f" ({way.detail})" if way.detail else ""
            who = rt.text(f"access.{way.who}", locale, detail=detail)
            lines.append(
                rt.text("access.line", locale, channel=channel.name, route=way.route, who=who)
            )
    return lines


def _lazy_transcriber(rt: Runtime) -> Transcriber:
    """The voice front's recognisers for recordings, loaded on the first transcript."""
    made: list[Transcriber] = []

    async def transcribe(path: Path, language: str) -> str | None:
        if not made:
            from ivr.transcribe import transcriber

            made.append(transcriber(rt))
        return await made[0](path, language)

    return transcribe


async def start_runtime(
    rt: Runtime, *, start_jobs: bool = True, check_schema: bool = True, listen: bool = False
) -> None:
    """Check the schema, load the directory, initialise channels, start the job driver.

    ``listen``: this process serves (the web server): channels that open their
    own listening socket (``Channel.listens``, e.g. SIP) are started too, and so is
    the media server (workers and the command line start neither); with
    ``start_jobs``, it also puts the nightly retention run on the schedule.
    """
    if check_schema:
        url = rt.settings.effective_database_url
        current, head = await current_revision(url), head_revision()
        if current != head:
            raise NotMigrated(
                f"the database is at revision {current or 'none'}, the code needs {head}: "
                "run `callcenter migrate`"
            )
    await rt.reload_directory()
    await rt.bus.start()
    rt.watch_directory()
    for channel in rt.channels:
        if channel.listens and not listen:
            continue
        await channel.initialize()
    if listen and rt.media is not None:
        await rt.media.start()
    if start_jobs and listen:
        # the server keeps the recurring jobs on the schedule (each run schedules the
        # next; this puts back one that was never scheduled or was lost): idempotent,
        # so every node of a cluster may do it
        await privacy.schedule_retention(rt)
    if start_jobs and rt.settings.acd.enabled:
        rt.acd = AcdDriver(
            rt,
            lease=lease_for(
                rt.settings.redis_url, rt.settings.redis_prefix, "acd", AcdDriver.LEASE_SECONDS
            ),
        )
        await rt.acd.start()
    driver = rt.settings.jobs.driver
    if start_jobs and driver in ("inprocess", "celery"):
        # the inbox is background work like the jobs: where they run (or are relayed
        # to Celery from), it runs; several nodes share it (SKIP LOCKED)
        await inbox(rt).start()
        assert rt.runner is not None
        if driver == "celery":
            await start_relay(rt)
        else:
            rt.driver = InProcessDriver(rt.runner)
            await rt.driver.start()


async def start_relay(rt: Runtime) -> None:
    """Hand this process's due jobs to Celery (``jobs.driver = "celery"``)."""
    from callcenter.jobs.celery_driver import CeleryRelay, make_celery  # only when asked for

    assert rt.runner is not None
    rt.driver = CeleryRelay(rt.runner, make_celery(rt.settings))
    await rt.driver.start()


async def open_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    seed: int | None = None,
    start_jobs: bool = True,
    check_schema: bool = True,
) -> Runtime:
    """Build and start a runtime (for the CLI, workers and tests)."""
    rt = build_runtime(settings, clock=clock, seed=seed)
    await start_runtime(rt, start_jobs=start_jobs, check_schema=check_schema)
    return rt


async def close_runtime(rt: Runtime) -> None:
    for running in (rt.driver, rt.acd, rt.inbox):
        if running is not None:
            await running.stop()
    rt.acd = rt.inbox = None
    for channel in rt.channels:
        try:
            await channel.shutdown()
        except Exception:
            log.exception("channel %s did not shut down cleanly", channel.name)
        shared = getattr(channel, "shared_pacer", None)  # SmsChannel's, with redis_url
        if shared is not None:
            await shared.close()
    if rt.media is not None:
        await rt.media.stop()
    await rt.stop_watching_directory()
    await rt.bus.stop()
    await rt.db.dispose()


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    start_jobs: bool = True,
    check_schema: bool = True,
) -> web.Application:
    """The aiohttp application: the API under /api and every channel's routes."""
    rt = runtime or build_runtime(settings)
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[RUNTIME] = rt

    async def runtime_context(app: web.Application) -> AsyncIterator[None]:
        await start_runtime(rt, start_jobs=start_jobs, check_schema=check_schema, listen=True)
        yield
        await close_runtime(rt)

    app.cleanup_ctx.append(runtime_context)
    setup_guard(app, settings)  # first: channels add the paths they let other sites frame
    app.add_subapp("/api", create_api())
    setup_media_routes(app)
    app[SITE_PAGES] = []
    for channel in rt.channels:
        channel.setup_web(app)
        app[SITE_PAGES].extend(channel.pages)
    for spec in settings.ui:
        load_ui_setup(spec)(app, rt)
    app.router.add_get("/", _index)
    # innermost, so that the other middlewares see its answers like any other
    app.middlewares.append(error_middleware)
    setup_ops(app, rt)  # /ready, /metrics, and the request counts (outermost)
    return app


async def _index(request: web.Request) -> web.Response:
    """A plain page in the visitor's language pointing to what the server offers."""
    rt = request.app[RUNTIME]
    locale = rt.catalog.negotiate(request.headers.get("Accept-Language"))
    hotline = rt.settings.hotline_number

    def t(key: str) -> str:
        return html.escape(rt.text(key, locale, hotline=hotline))

    # what the web front ends and the channels declared (Channel.pages), and the API
    pages = [*request.app[SITE_PAGES], Page("/api/openapi.json", "site.api")]
    items = "".join(f'<li><a href="{p.path}">{t(p.text_key)}</a></li>' for p in pages)
    body = (
        f'<!doctype html><html lang="{locale}"><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{t('site.title')}</title><h1>{t('site.title')}</h1><p>{t('site.intro')}</p>"
        f"<ul>{items}</ul>"
    )
    return web.Response(text=body, content_type="text/html")
