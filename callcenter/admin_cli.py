"""The operators' commands for data: ``backup``, ``restore`` (SQLite; PostgreSQL has
``pg_dump``) and ``privacy`` (a citizen's export and erasure, the retention run).

Kept beside :mod:`callcenter.cli`, which adds them with :func:`add_commands`.
"""

from __future__ import annotations

import argparse
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


def add_commands(sub: Any) -> None:
    backup = sub.add_parser("backup", help="copy the live SQLite database to a new file")
    backup.add_argument("target", help="the backup file to write (must not exist)")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="replace the SQLite database with a backup")
    restore.add_argument("source", help="a file written by `callcenter backup`")
    restore.add_argument(
        "--replace", action="store_true", help="overwrite the existing database (server stopped)"
    )
    restore.set_defaults(func=cmd_restore)
