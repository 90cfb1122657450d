"""The ``callcenter`` command: serve, migrate, demo-data, simulate, audit, worker, jobs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callcenter.config import Settings

SERVER_URL_FILE = "server-url"  # where `serve` says where it is, for the other commands
# commands that open an existing database (``migrate`` makes it; ``media`` needs none)
NEEDS_DATABASE = frozenset(
    {"serve", "demo-data", "simulate", "audit", "worker", "jobs", "inbox", "staff", "config"}
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    settings = Settings(**overrides)
    if settings.public_url is None and getattr(args, "command", "") != "serve":
        # links in texts a command writes (the status link in an SMS) point where the
        # running server is, not at the default port
        running = settings.data_dir / SERVER_URL_FILE
        if running.is_file():
            url = running.read_text("utf-8").strip()
            if url.startswith(("http://", "https://")):
                settings = settings.model_copy(update={"public_url": url})
    return settings


def _missing_database(settings: Settings) -> str | None:
    """The SQLite file the settings name, if it does not exist (it is never made by
    accident in whatever folder the command was run from)."""
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return None
    path = Path(url.split(":///", 1)[-1])
    return None if path.is_file() else str(path)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from callcenter.api.keys import RUNTIME
    from callcenter.bootstrap import access_report, create_app

    settings = _settings(args)
    _use_uvloop()
    app = create_app(settings)
    _tune_gc()
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / SERVER_URL_FILE).write_text(url + "\n", "utf-8")
    print(f"callcenter: serving on http://{settings.host}:{settings.port}", flush=True)
    for line in access_report(app[RUNTIME]):
        print(f"  {line}", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


def _tune_gc() -> None:
    """A long-lived server: what start-up built is never garbage, and young objects are
    collected less often. Cuts the collector's pauses, which otherwise show in the tail
    latency of busy web chat (see bench/chat.py)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _use_uvloop() -> None:
    """uvloop makes the many small hand-offs to the database driver about twice as fast."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_migrate(args: argparse.Namespace) -> int:
    from callcenter.store.migrate import current_revision, upgrade

    settings = _settings(args)
    url = settings.effective_database_url

    async def run() -> None:
        await upgrade(url, args.revision)
        print(f"database at revision {await current_revision(url)} ({_safe(url)})")

    asyncio.run(run())
    return 0


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from callcenter.bootstrap import close_runtime, open_runtime
    from callcenter.clock import ManualClock, SystemClock
    from callcenter.demo import load_demo
    from callcenter.views import department_count

    settings = _settings(args)

    async def run() -> int:
        clock = ManualClock(SystemClock().now())
        rt = await open_runtime(settings, clock=clock, seed=args.seed, start_jobs=False)
        try:
            async with rt.db.read() as conn:
                existing = await department_count(conn)
            if existing:
                print("demo data: the directory is not empty; nothing loaded")
                return 0
            summary = await load_demo(rt, tickets=args.tickets, days=args.days, seed=args.seed)
        finally:
            await close_runtime(rt)
        print(
            f"demo data: {summary['departments']} departments, {summary['tickets']} tickets, "
            f"{summary['steps']} workflow steps"
        )
        print("API tokens (demo only):")
        for username, token in summary["tokens"].items():
            if not username.startswith(("mh-", "hb-", "qs-", "xg-")):
                print(f"  {username:12} {token}")
        print("  department staff: demo-<department code in lower case>, e.g. demo-mh-municipal")
        return 0

    return asyncio.run(run())


def cmd_simulate_sms(args: argparse.Namespace) -> int:
    from callcenter.actions.inbox import inbox
    from callcenter.actions.intake import Inbound
    from callcenter.bootstrap import close_runtime, open_runtime
    from callcenter.domain.errors import Forbidden, HotlineError
    from callcenter.domain.phone import normalize_phone

    settings = _settings(args)

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=False)
        try:
            locale = rt.catalog.default_locale
            try:
                channel = rt.channels.get("sms")
                if channel is None or not channel.stand_in:  # a real provider carries SMS
                    raise Forbidden("simulated_off")
                sender = normalize_phone(args.sender, settings.default_region)
                # the provider's path: stored in the inbox, then handled (here, or by a
                # server running on the same database, whichever comes first)
                box = inbox(rt)
                accepted = await box.accept(
                    Inbound(
                        "sms",
                        "phone",
                        sender,
                        args.text,
                        provider_id=args.id,
                        service_address=settings.hotline_number,
                    )
                )
                try:
                    # a server on the same database takes it within its poll, and its
                    # staff pages show it live (events are the handling process's)
                    result = await box.result(
                        accepted.inbox_id,
                        wait_seconds=2 * settings.intake.inbox_poll_seconds + 0.5,
                    )
                except TimeoutError:  # no server: handled here
                    await box.process()
                    result = await box.result(accepted.inbox_id)
            except HotlineError as error:
                from callcenter.api.http import error_body

                print(error_body(rt, error, locale)["error"]["message"], file=sys.stderr)
                return 2
            assert rt.runner is not None
            await rt.runner.drain()
            print(f"citizen       #{result.citizen_id} {sender}")
            print(
                f"conversation  #{result.conversation_id} ({result.conversation_state})"
                + (" [duplicate, nothing changed]" if accepted.duplicate else "")
            )
            if result.ticket:
                t = result.ticket
                category = rt.directory.category_by_id.get(t["category_id"] or -1)
                dept = rt.directory.by_id.get(t["department_id"] or -1)
                print(
                    f"ticket        {t['number']} state={t['state']} type={t['type']} "
                    f"priority={t['priority']}"
                )
                print(f"  category    {category.name(locale) if category else '-'}")
                print(f"  department  {dept.name(locale) if dept else '- (dispatch desk)'}")
                print(f"  sign by     {rt.local_text(t['sign_due_at']) or '-'}")
                print(f"  due         {rt.local_text(t['due_at']) or '-'}")
                from callcenter.views import explain_routing

                print(f"  routing     {explain_routing(rt, t['routing'], locale)}")
            else:
                print(f"queue         {result.queue}")
            if not accepted.duplicate:  # the replies this text caused
                await _print_outbox(rt, 5, only=result.conversation_id, after=result.message_id)
        finally:
            await close_runtime(rt)
        return 0

    return asyncio.run(run())


async def _print_outbox(
    rt: Any, limit: int, only: int | None = None, after: int | None = None
) -> None:
    from callcenter.views import outbound_messages

    if limit <= 0:
        return
    async with rt.db.read() as conn:
        rows = await outbound_messages(conn, limit=limit, conversation_id=only, after=after)
    for row in reversed(rows):
        print(
            f"outbound      #{row.id} to {row.address} [{row.status}] via {row.channel} "
            f"at {rt.local_text(row.created_at)}"
        )
        print(f"  {row.body}")


def cmd_simulate_outbox(args: argparse.Namespace) -> int:
    from callcenter.bootstrap import close_runtime, open_runtime

    settings = _settings(args)

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=False)
        try:
            assert rt.runner is not None
            await rt.runner.drain()
            await _print_outbox(rt, args.limit)
        finally:
            await close_runtime(rt)
        return 0

    return asyncio.run(run())


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from callcenter.actions.audit import verify_chain
    from callcenter.i18n import Catalog
    from callcenter.store.db import Database

    settings = _settings(args)
    catalog = Catalog.core(settings.default_locale)

    async def run() -> int:
        db = Database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
        try:
            checked, broken = await verify_chain(db)
        finally:
            await db.dispose()
        if broken is None:
            print(catalog.text("audit.intact", None, count=checked))
            return 0
        reason = catalog.label("audit_reason", broken.reason, None)
        print(catalog.text("audit.broken", None, seq=broken.seq, reason=reason))
        return 1

    return asyncio.run(run())


def cmd_worker(args: argparse.Namespace) -> int:
    """Run only the job executor (no web server)."""
    import signal

    from callcenter.bootstrap import close_runtime, open_runtime

    settings = _settings(args)
    if args.celery:
        return _celery_worker(settings, args.celery_args)

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("callcenter worker: running jobs", flush=True)
        await stop.wait()
        await close_runtime(rt)
        return 0

    return asyncio.run(run())


def _celery_worker(settings: Settings, extra: list[str]) -> int:
    """A Celery worker on the jobs' queue (docs/scaling.md); ``extra`` goes to Celery."""
    from callcenter.celery_app import app  # its own settings, with jobs.driver = "celery"

    argv = [
        "worker",
        "--loglevel=INFO",
        "--pool=threads",  # the jobs wait on the network: one runtime, several at once
        f"--concurrency={settings.jobs.concurrency}",
        "-Q",
        settings.jobs.celery_queue,
        *[a for a in extra if a != "--"],
    ]
    print("callcenter worker: running jobs from Celery", flush=True)
    app.worker_main(argv)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from callcenter.store.db import Database
    from callcenter.views import recent_jobs

    settings = _settings(args)

    async def run() -> int:
        db = Database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
        try:
            if args.jobs_command == "retry":
                from callcenter.actions.operations import operator, requeue_dead_job
                from callcenter.clock import SystemClock

                done = await requeue_dead_job(
                    db, args.job_id, actor=operator(), now=SystemClock().now()
                )
                print("requeued" if done else "no dead job with that id")
                return 0 if done else 1
            async with db.read() as conn:
                rows = await recent_jobs(conn, state=args.state, limit=args.limit)
            for row in rows:
                print(
                    f"#{row.id:<6} {row.state:9} {row.kind:22} attempts={row.attempts}/"
                    f"{row.max_attempts} run_at={row.run_at:%Y-%m-%d %H:%M:%S}Z "
                    f"{(row.last_error or '')[:80]}"
                )
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_inbox(args: argparse.Namespace) -> int:
    """How many inbound texts wait, and put failed ones back in line."""
    from callcenter.actions.operations import operator, requeue_failed_texts
    from callcenter.clock import SystemClock
    from callcenter.store.db import Database
    from callcenter.views import failed_texts, inbox_counts

    settings = _settings(args)

    async def run() -> int:
        db = Database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
        try:
            if args.inbox_command == "retry":
                again = await requeue_failed_texts(db, actor=operator(), now=SystemClock().now())
                print(f"requeued {again}")
                return 0
            async with db.read() as conn:
                by_state = await inbox_counts(conn)
                failed = await failed_texts(conn, limit=args.limit)
            print(" ".join(f"{s}={by_state.get(s, 0)}" for s in ("pending", "done", "failed")))
            for row in failed:
                print(
                    f"#{row.id:<8} {row.channel:10} {row.provider_id or '-':36} "
                    f"{row.received_at:%Y-%m-%d %H:%M:%S}Z {(row.error or '')[:80]}"
                )
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description="Citizen hotline")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hotline server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo-data", help="load the demo city and its history")
    demo.add_argument("--tickets", type=int, default=None, help="contacts (the city's month: 300)")
    demo.add_argument(
        "--days", type=int, default=None, help="days of history (the city's month: 30)"
    )
    demo.add_argument("--seed", type=int, default=12345)
    demo.set_defaults(func=cmd_demo_data)

    simulate = sub.add_parser("simulate", help="play a citizen on the simulated provider")
    simulate_sub = simulate.add_subparsers(dest="simulate_command", required=True)
    sms = simulate_sub.add_parser("sms", help="deliver an inbound SMS")
    sms.add_argument("--from", dest="sender", required=True, help="the citizen's number")
    sms.add_argument("--id", help="provider message id (a repeat is ignored)")
    sms.add_argument("text")
    sms.set_defaults(func=cmd_simulate_sms)
    outbox = simulate_sub.add_parser("outbox", help="show messages sent to citizens")
    outbox.add_argument("--limit", type=int, default=20)
    outbox.set_defaults(func=cmd_simulate_outbox)

    audit_parser = sub.add_parser("audit", help="the audit log")
    audit_sub = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain")
    verify.set_defaults(func=cmd_audit_verify)

    worker = sub.add_parser("worker", help="run the job executor without the web server")
    worker.add_argument(
        "--celery",
        action="store_true",
        help="take jobs from Celery (jobs.broker_url or redis_url) instead of the table",
    )
    worker.add_argument(
        "celery_args", nargs=argparse.REMAINDER, help="after --: more Celery worker options"
    )
    worker.set_defaults(func=cmd_worker)

    jobs_parser = sub.add_parser("jobs", help="look at and retry jobs")
    jobs_sub = jobs_parser.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list")
    listing.add_argument("--state", choices=["pending", "running", "done", "dead", "cancelled"])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_jobs)
    retry = jobs_sub.add_parser("retry", help="requeue a dead job")
    retry.add_argument("job_id", type=int)
    retry.set_defaults(func=cmd_jobs)

    inbox_parser = sub.add_parser("inbox", help="inbound texts stored and not yet handled")
    inbox_sub = inbox_parser.add_subparsers(dest="inbox_command", required=True)
    status = inbox_sub.add_parser("status", help="counts, and the texts that failed")
    status.add_argument("--limit", type=int, default=50)
    status.set_defaults(func=cmd_inbox)
    inbox_sub.add_parser("retry", help="handle failed texts again").set_defaults(func=cmd_inbox)

    media = sub.add_parser(
        "media-config", help="write a Janus node's configuration from the [media] settings"
    )
    media.add_argument("--out", required=True, help="the folder Janus reads (janus -F)")
    media.add_argument("--bind", default="0.0.0.0", help="address of its API ports")
    media.set_defaults(func=cmd_media_config)

    from callcenter.admin_cli import add_commands

    add_commands(sub)  # backup, restore, privacy, config
    from callcenter.staff_cli import add_commands as add_staff_commands

    add_staff_commands(sub)  # staff add / passwd / list
    return parser


def cmd_media_config(args: argparse.Namespace) -> int:
    """For a Janus node of its own (``media.janus = "external"``): the same files the
    embedded Janus gets, ports from the settings (8088/8188/7088 when left at 0)."""
    from dataclasses import replace
    from pathlib import Path

    from callcenter.media.janus_config import write_config
    from callcenter.media.process import embedded_config

    media = _settings(args).media
    media = media.model_copy(
        update={
            "http_port": media.http_port or 8088,
            "ws_port": media.ws_port or 8188,
            "admin_port": media.admin_port or 7088,
        }
    )
    cfg = replace(embedded_config(media), bind_ip=args.bind)
    out = Path(args.out).resolve()
    write_config(cfg, out)
    print(f"janus configuration written to {out}; run: janus -F {out} -C {out}/janus.jcfg")
    print("give the hotline this node's secrets in its [[media.nodes]] entry:")
    print(f'  admin_secret = "{cfg.admin_secret}"')
    print(f'  admin_key = "{cfg.admin_key}"')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from callcenter.domain.privacy import install_log_masking

    install_log_masking()  # no citizen's number in a log
    if args.command in NEEDS_DATABASE:
        settings = _settings(args)
        missing = _missing_database(settings)
        if missing is not None:
            from callcenter.i18n import Catalog

            catalog = Catalog.core(settings.default_locale)
            print(catalog.text("cli.no_database", path=missing, cwd=Path.cwd()), file=sys.stderr)
            return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
