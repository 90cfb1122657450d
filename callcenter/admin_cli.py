"""The operators' commands for data: ``backup``, ``restore`` (SQLite; PostgreSQL has
``pg_dump``), ``privacy`` (a citizen's export and erasure, the retention run) and
``config`` (the whole configuration exported to, or imported from, one JSON file).

Kept beside :mod:`callcenter.cli`, which adds them with :func:`add_commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from callcenter.config import Settings


def _settings() -> Settings:
    return Settings()


def cmd_backup(args: argparse.Namespace) -> int:
    from callcenter.store.backup import BackupError, backup_sqlite, sqlite_path

    settings = _settings()
    database = sqlite_path(settings.effective_database_url)
    if database is None:
        print(
            "callcenter backup copies SQLite databases; for PostgreSQL use pg_dump "
            "(docs/security.md#backups): pg_dump --format=custom --file=hotline.dump <database>",
            file=sys.stderr,
        )
        return 2
    try:
        info = backup_sqlite(database, Path(args.target))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup {info.path}: {info.size} bytes, schema {info.revision}, "
        f"{info.messages} messages, {info.tickets} tickets"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from callcenter.store.backup import BackupError, restore_sqlite, sqlite_path
    from callcenter.store.migrate import head_revision

    settings = _settings()
    database = sqlite_path(settings.effective_database_url)
    if database is None:
        print("for PostgreSQL use pg_restore (docs/security.md#backups)", file=sys.stderr)
        return 2
    if database.exists() and not args.replace:
        print(
            f"{database} exists: stop the server and the workers, then run again with "
            "--replace to overwrite it with the backup",
            file=sys.stderr,
        )
        return 2
    try:
        info = restore_sqlite(Path(args.source), database, head=str(head_revision()))
    except BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored {info.path} from {args.source}: {info.messages} messages, {info.tickets} tickets"
    )
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    import json

    from callcenter.actions import privacy
    from callcenter.api.http import error_body
    from callcenter.bootstrap import close_runtime, open_runtime
    from callcenter.domain.errors import HotlineError
    from callcenter.domain.workflow import SYSTEM

    settings = _settings()

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=False)
        try:
            if args.privacy_command == "export":
                document = await privacy.export_citizen(rt, args.citizen_id, actor=SYSTEM)
                text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
                if args.output:
                    await asyncio.to_thread(Path(args.output).write_text, text + "\n", "utf-8")
                else:
                    print(text)
            elif args.privacy_command == "erase":
                counts = await privacy.erase_citizen(
                    rt, args.citizen_id, actor=SYSTEM, reason=args.reason
                )
                print(json.dumps(counts))
            else:
                print(json.dumps(await privacy.apply_retention(rt)))
                if args.daily:
                    await privacy.schedule_retention(rt)
        except HotlineError as error:
            locale = rt.catalog.default_locale
            print(error_body(rt, error, locale)["error"]["message"], file=sys.stderr)
            return 2
        finally:
            await close_runtime(rt)
        return 0

    return asyncio.run(run())


def cmd_config(args: argparse.Namespace) -> int:
    import json

    from callcenter.actions.configuration import export_configuration, import_configuration
    from callcenter.actions.operations import operator
    from callcenter.api.http import error_body
    from callcenter.bootstrap import close_runtime, open_runtime
    from callcenter.domain.errors import HotlineError

    settings = _settings()

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=False)
        try:
            if args.config_command == "export":
                text = json.dumps(await export_configuration(rt), ensure_ascii=False, indent=2)
                if args.output:
                    await asyncio.to_thread(Path(args.output).write_text, text + "\n", "utf-8")
                else:
                    print(text)
                return 0
            try:
                raw = await asyncio.to_thread(Path(args.file).read_text, "utf-8")
                document = json.loads(raw)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                print(f"{args.file}: {exc}", file=sys.stderr)
                return 2
            counts = await import_configuration(rt, document, actor=operator())
            print(json.dumps(counts))
            return 0
        except HotlineError as error:
            locale = rt.catalog.default_locale
            print(error_body(rt, error, locale)["error"]["message"], file=sys.stderr)
            return 2
        finally:
            await close_runtime(rt)

    return asyncio.run(run())


def add_commands(sub: Any) -> None:
    config = sub.add_parser("config", help="the whole configuration as one JSON file")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    export_config = config_sub.add_parser("export", help="write departments, categories...")
    export_config.add_argument("--output", help="write the JSON to this file")
    export_config.set_defaults(func=cmd_config)
    import_config = config_sub.add_parser("import", help="apply a file (checked whole first)")
    import_config.add_argument("file")
    import_config.set_defaults(func=cmd_config)

    backup = sub.add_parser("backup", help="copy the live SQLite database to a new file")
    backup.add_argument("target", help="the backup file to write (must not exist)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="replace the SQLite database with a backup")
    restore.add_argument("source", help="a file written by `callcenter backup`")
    restore.add_argument(
        "--replace", action="store_true", help="overwrite the existing database (server stopped)"
    )
    restore.set_defaults(func=cmd_restore)

    privacy = sub.add_parser("privacy", help="a citizen's data: export, erasure; retention")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    export = privacy_sub.add_parser("export", help="everything held about one citizen (JSON)")
    export.add_argument("citizen_id", type=int)
    export.add_argument("--output", help="write the JSON to this file")
    export.set_defaults(func=cmd_privacy)
    erase = privacy_sub.add_parser("erase", help="erase a citizen's personal data")
    erase.add_argument("citizen_id", type=int)
    erase.add_argument("--reason", required=True, help="the request and its basis (audited)")
    erase.set_defaults(func=cmd_privacy)
    retention = privacy_sub.add_parser("retention", help="remove what outlived its retention")
    retention.add_argument(
        "--daily",
        action="store_true",
        help="and put the nightly run (03:00) on the schedule now (the server does at start)",
    )
    retention.set_defaults(func=cmd_privacy)
