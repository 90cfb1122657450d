"""Backups of the SQLite database: online, consistent, through SQLite's backup API.

:func:`backup_sqlite` copies a live database (the server and workers may go on
writing) to a new file: SQLite's online backup copies one consistent snapshot,
every commit before it and none after, whatever the writers do meanwhile (in
WAL mode they are not even held up). The copy is written beside its target,
synced, checked (``PRAGMA integrity_check``) and only then renamed into place,
so a backup file that exists is a whole one.

:func:`restore_sqlite` checks a backup (integrity, a schema this code knows)
and copies it over the database through the same API. Stop the server and the
workers first: a restore replaces what they were writing.

PostgreSQL is backed up with its own tools (``pg_dump``/``pg_restore``, see
docs/security.md#backups); :func:`sqlite_path` says which database a URL names.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    revision: str | None
    messages: int
    tickets: int


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def _describe(path: Path) -> BackupInfo:
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path}: not a SQLite database ({exc})") from None
        if check != "ok":
            raise BackupError(f"{path}: integrity check failed: {check}")
        try:
            revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
            messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
            tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path}: not a hotline database ({exc})") from None
    return BackupInfo(
        path, path.stat().st_size, revision[0] if revision else None, messages, tickets
    )


def _copy(source: sqlite3.Connection, target: Path) -> None:
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as copy:
        source.backup(copy)  # one consistent snapshot, every page in one step
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    copy.close()
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def backup_sqlite(database: Path, target: Path) -> BackupInfo:
    """Copy the live database ``database`` to ``target`` (a new file); returns what it holds."""
    if not database.exists():
        raise BackupError(f"{database}: no such database")
    if target.exists():
        raise BackupError(f"{target} exists already; name a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        _copy(source, target)
    finally:
        source.close()
    return _describe(target)


def restore_sqlite(backup: Path, database: Path, *, head: str) -> BackupInfo:
    """Check ``backup`` and copy it over ``database`` (the server and workers stopped)."""
    info = _describe(backup)
    if info.revision != head:
        raise BackupError(
            f"{backup} is at schema revision {info.revision}, this code needs {head}: "
            "restore it with the release that wrote it, then migrate"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        _copy(source, database)
    finally:
        source.close()
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
    return _describe(database)
