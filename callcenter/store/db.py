"""The database handle and the unit of work.

``async with db.transaction() as tx:`` is the unit of work: it commits when the
block ends normally and rolls back on any exception. Work that must wait for
the commit (publishing live events, waking the job executor) is registered on
the transaction and runs only after a successful commit.

SQLite (the embedded default) runs in WAL mode. Writers are serialised: inside
one process by an asyncio lock, across processes by ``BEGIN IMMEDIATE``,
retried with asynchronous sleeps while another process holds the lock. The
writer runs its statements on the event loop's thread
(:mod:`callcenter.store.inline_sqlite`); readers use their own engine on
aiosqlite's thread and never wait for writers.

On PostgreSQL every serialised transaction first locks the single row of
``audit_head``: the audit chain has to be a line, and taking that lock first
also orders find-or-create races. Job bookkeeping, which writes no audit
event, does not take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from callcenter.store.inline_sqlite import inline_creator
from callcenter.store.tables import audit_head

# the writer waits for another process's write lock this long in SQLite itself
# (blocking the event loop), then in asynchronous sleeps, up to the second limit
_INLINE_BUSY_MS = 5
_WRITE_LOCK_WAIT_S = 30.0


class Tx:
    """One open unit of work."""

    def __init__(self, conn: AsyncConnection, db: Database) -> None:
        self.conn = conn
        self.db = db
        self.events: list[Any] = []
        self.jobs_enqueued = 0
        self._after_commit: list[Callable[[], Any]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self.state: dict[str, Any] = {}  # per-transaction scratch space (e.g. the audit head)

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return await self.conn.execute(statement, params)

    def publish(self, event: Any) -> None:
        """Queue a live event, sent only if the transaction commits."""
        self.events.append(event)

    def after_commit(self, callback: Callable[[], Any]) -> None:
        self._after_commit.append(callback)

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` as the last statement of the transaction, once."""
        if callback not in self._before_commit:
            self._before_commit.append(callback)


CommitHook = Callable[[Tx], None]


class Database:
    """Engines and transactions for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self.commit_hooks: list[CommitHook] = []
        if self.is_sqlite:
            ensure_sqlite_folder(url)
            self.engine = self._sqlite_engine(url, "BEGIN IMMEDIATE", echo, inline=True)
            self.read_engine = self._sqlite_engine(url, "BEGIN", echo)
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.read_engine = self.engine
        self._write_lock = asyncio.Lock()

    @staticmethod
    def _sqlite_engine(url: str, begin: str, echo: bool, *, inline: bool = False) -> AsyncEngine:
        if inline:
            path = str(make_url(url).database)
            creator = inline_creator(path, timeout=0, check_same_thread=False)
            engine = create_async_engine(url, echo=echo, async_creator=creator)
        else:
            engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        # the writer must not block the event loop on another process's lock
        busy_ms = _INLINE_BUSY_MS if inline else 30000

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # take transactions into our own hands (see the "begin" listener)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                f"PRAGMA busy_timeout={busy_ms}",
            ):
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine

    @contextlib.asynccontextmanager
    async def transaction(self, *, serialize: bool = True) -> AsyncIterator[Tx]:
        """A unit of work: commit at the end of the block, roll back on error."""
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        async with lock, self.engine.connect() as conn:
            await self._begin(conn)
            tx = Tx(conn, self)
            try:
                if serialize and not self.is_sqlite:
                    await conn.execute(
                        select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()
                    )
                yield tx
                for finish in tx._before_commit:
                    await finish()
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
        for hook in self.commit_hooks:
            hook(tx)
        for callback in tx._after_commit:
            callback()

    async def _begin(self, conn: AsyncConnection) -> None:
        if not self.is_sqlite:
            await conn.begin()
            return
        deadline = time.monotonic() + _WRITE_LOCK_WAIT_S
        pause = 0.002
        while True:
            try:
                await conn.begin()
                return
            except OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                await conn.rollback()  # leaves the connection clean for the next try
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection with a consistent snapshot."""
        async with self.read_engine.connect() as conn:
            await conn.begin()
            try:
                yield conn
            finally:
                await conn.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite database file, so a fresh data directory just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def null_pool_engine(url: str) -> AsyncEngine:
    """An engine that holds no connections between uses (for migrations and tools)."""
    ensure_sqlite_folder(url)
    return create_async_engine(url, poolclass=NullPool)
