"""The database handle and the unit of work.

``async with db.transaction() as tx:`` is the unit of work: it commits when the
block ends normally and rolls back on any exception. Work that must wait for
the commit (publishing live events, waking the job executor) is registered on
the transaction and runs only after a successful commit.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL``: the
log is synced to the disk at every commit, so a commit that was acknowledged
(a provider got its 200) survives a power cut; NORMAL would keep the file
consistent but could lose the last commits. Writers are serialised: inside
one process by :class:`WriteLock`, across processes by ``BEGIN IMMEDIATE``,
retried with asynchronous sleeps while another process holds the lock.

SQLite's statements run synchronously on the event loop's thread (the
standard ``sqlite3`` driver behind :class:`SyncConnection`). A hop to a helper
thread and back for each statement, as aiosqlite does, costs more than the
statement: two thread switches, a wake-up of the loop and a fight for the
GIL, a few hundred microseconds when the server is busy against tens for an
indexed lookup. Nothing that waits runs there: in WAL mode readers and the
writer do not block each other; another process's write lock is waited for
in asynchronous sleeps (the busy timeout is a millisecond); checkpoints of
the write-ahead log run on a thread after writes rather than inside a commit;
and queries that may run long (reports, exports, the audit check:
``read(long=True)``) keep aiosqlite and its thread.

On PostgreSQL every serialised transaction first locks the single row of
``audit_head``: the audit chain has to be a line, and taking that lock first
also orders find-or-create races. Job bookkeeping, which writes no audit
event, does not take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from callcenter.store.tables import audit_head

# the writer waits for another process's write lock this long in SQLite itself
# (blocking the event loop), then in asynchronous sleeps, up to the second limit
_INLINE_BUSY_MS = 1
_WRITE_LOCK_WAIT_S = 30.0
_CHECKPOINT_EVERY_S = 1.0


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns through orjson: several per statement (audit events, payloads, meta)
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


class SyncConnection:
    """The asynchronous face of a synchronous connection (SQLite, on the loop's thread).

    It offers what the code asks of an :class:`AsyncConnection` (``execute``,
    ``scalar``, and the transaction calls); results are the same buffered
    ``CursorResult`` objects.
    """

    def __init__(self, conn: Connection) -> None:
        self.sync = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.scalar(statement, parameters)

    async def begin(self) -> None:
        self.sync.begin()

    async def commit(self) -> None:
        self.sync.commit()

    async def rollback(self) -> None:
        self.sync.rollback()


# what actions, views and reports read and write through
Conn = AsyncConnection | SyncConnection


@contextlib.asynccontextmanager
async def _connect(engine: Engine | AsyncEngine) -> AsyncIterator[Conn]:
    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            yield conn
    else:
        with engine.connect() as sync:
            yield SyncConnection(sync)


class WriteLock:
    """One SQLite writer at a time in this process; urgent writers go first.

    An urgent writer is one someone is waiting on: the inbox storing webhooks
    whose provider waits for its answer. Background work (the inbox's
    handling, jobs) queues behind them, in order of arrival.
    """

    def __init__(self) -> None:
        self._held = False
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held or any(self._queues):
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            queue = self._queues[0 if urgent else 1]
            queue.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn in queue:
                    queue.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._release()  # handed over just as the waiter gave up
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in self._queues:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # the lock passes on, still held
                    return
        self._held = False


class Tx:
    """One open unit of work."""

    def __init__(self, conn: Conn, db: Database) -> None:
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

    def release(self) -> None:
        """Drop what the transaction held once it is over.

        The callbacks usually refer back to the transaction (the audit events'
        flush does): left alone, every transaction would be a reference cycle,
        its connection and results kept until the garbage collector's next pass,
        and that pass, over thousands of them, stalls the event loop for 100 ms
        and more.
        """
        self._before_commit.clear()
        self._after_commit.clear()
        self.state.clear()


CommitHook = Callable[[Tx], None]


class Database:
    """Engines and transactions for one database URL."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, synchronous: str = "FULL"
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self.commit_hooks: list[CommitHook] = []
        self.engine: Engine | AsyncEngine
        self.read_engine: Engine | AsyncEngine
        self.long_read_engine: AsyncEngine
        if self.is_sqlite:
            ensure_sqlite_folder(url)
            sync = synchronous
            self.engine = self._sqlite_engine(url, "BEGIN IMMEDIATE", echo, sync, inline=True)
            self.read_engine = self._sqlite_engine(url, "BEGIN", echo, sync, inline=True)
            self.long_read_engine = self._sqlite_engine(url, "BEGIN", echo, sync)
        else:
            self.long_read_engine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                **_JSON,
            )
            self.engine = self.read_engine = self.long_read_engine
        self._write_lock = WriteLock()
        self._checkpointer: asyncio.Task[None] | None = None
        self._written = asyncio.Event()

    @property
    def sync_engine(self) -> Engine:
        """The writer's engine as SQLAlchemy's events see it."""
        return self.engine if isinstance(self.engine, Engine) else self.engine.sync_engine

    @staticmethod
    def _sqlite_engine(
        url: str, begin: str, echo: bool, synchronous: str, *, inline: bool = False
    ) -> Any:
        engine: Any
        if inline:
            # synchronous, on the event loop's thread; many coroutines may each hold a
            # connection between their statements
            engine = create_engine(
                make_url(url).set(drivername="sqlite+pysqlite"),
                echo=echo,
                pool_size=20,
                max_overflow=20,
                connect_args={"check_same_thread": False},
                **_JSON,
            )
        else:
            engine = create_async_engine(url, echo=echo, **_JSON)
        events_of = engine if inline else engine.sync_engine
        # the writer must not block the event loop on another process's lock
        busy_ms = _INLINE_BUSY_MS if inline else 30000
        pragmas = [
            f"PRAGMA busy_timeout={busy_ms}",  # first: switching to WAL may meet a lock
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            "PRAGMA foreign_keys=ON",
        ]
        if inline:  # checkpoints (and their fsync) run on a thread: Database._checkpoints
            pragmas.append("PRAGMA wal_autocheckpoint=0")

        @event.listens_for(events_of, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # take transactions into our own hands (see the "begin" listener)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in pragmas:
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(events_of, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine

    @contextlib.asynccontextmanager
    async def transaction(
        self, *, serialize: bool = True, urgent: bool = False
    ) -> AsyncIterator[Tx]:
        """A unit of work: commit at the end of the block, roll back on error.

        ``urgent``: someone waits for this one (see :class:`WriteLock`).
        """
        lock = self._write_lock.hold(urgent=urgent) if self.is_sqlite else contextlib.nullcontext()
        async with lock, _connect(self.engine) as conn:
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
                tx.release()
                await conn.rollback()
                raise
            await conn.commit()
        if self.is_sqlite:
            self._written.set()
            if self._checkpointer is None:
                self._checkpointer = asyncio.create_task(self._checkpoints(), name="checkpoint")
        try:
            for hook in self.commit_hooks:
                hook(tx)
            for callback in tx._after_commit:
                callback()
        finally:
            tx.release()

    async def _begin(self, conn: Conn) -> None:
        if not self.is_sqlite:
            await conn.begin()
            return
        deadline = time.monotonic() + _WRITE_LOCK_WAIT_S
        pause = 0.001
        while True:
            try:
                await conn.begin()
                return
            except OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                await conn.rollback()  # leaves the connection clean for the next try
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.005)

    @contextlib.asynccontextmanager
    async def read(self, *, long: bool = False) -> AsyncIterator[Conn]:
        """A read-only connection with a consistent snapshot.

        ``long``: for queries that may run long (reports, exports, the audit
        check); on SQLite they run on a thread instead of the event loop's.
        """
        engine = self.long_read_engine if long else self.read_engine
        async with _connect(engine) as conn:
            await conn.begin()
            try:
                yield conn
            finally:
                await conn.rollback()

    async def _checkpoints(self) -> None:
        """Copy the write-ahead log back into the database, on a thread, after writes.

        SQLite would do it inside a commit now and then, fsync included; on the
        event loop's thread that would stall every request for that long.
        """
        path = str(self.url.database)
        while True:
            await self._written.wait()
            self._written.clear()
            await asyncio.to_thread(_checkpoint, path)
            await asyncio.sleep(_CHECKPOINT_EVERY_S)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
            await asyncio.to_thread(_checkpoint, str(self.url.database))
        for engine in {self.engine, self.read_engine, self.long_read_engine}:
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                engine.dispose()


def _checkpoint(path: str) -> None:
    # PASSIVE: copies what no reader still needs, waits for no one
    with contextlib.closing(sqlite3.connect(path, timeout=1)) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite database file, so a fresh data directory just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def null_pool_engine(url: str) -> AsyncEngine:
    """An engine that holds no connections between uses (for migrations and tools)."""
    ensure_sqlite_folder(url)
    return create_async_engine(url, poolclass=NullPool, **_JSON)


# what a read runs on: a connection, or an open unit of work (reads inside an action)
Reader = Conn | Tx
