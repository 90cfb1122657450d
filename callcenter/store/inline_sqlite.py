"""SQLite for the writer: aiosqlite's interface, run on the event loop's own thread.

aiosqlite hands every statement to a helper thread and waits for the answer.
For short writes that hop costs more than the statement: two thread switches,
a wake-up of the event loop and a fight for the GIL, a few hundred
microseconds when the server is busy, against tens for the statement itself.

Most statements are short (indexed lookups and inserts) and none waits for
a lock once its transaction has begun: in WAL mode readers and the writer do
not block each other. So they run right here. The waits that remain are kept
off the event loop: another process holding the write lock (the busy timeout
is a few milliseconds and :meth:`Database.transaction` retries ``BEGIN
IMMEDIATE`` with asynchronous sleeps), checkpoints (run on a thread by
:class:`Database`), and queries that may run long (``Database.read(long=True)``
keeps aiosqlite's thread).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs the call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the waiter, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        # SQLAlchemy's adapter also queues some calls directly (isolation level)
        self._tx = _RunNow()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def inline_creator(path: str, **kwargs: Any) -> Callable[[], Any]:
    """An ``async_creator`` for :func:`create_async_engine`: inline connections to ``path``."""

    async def create() -> InlineConnection:
        return await InlineConnection(lambda: sqlite3.connect(path, **kwargs))

    return create
