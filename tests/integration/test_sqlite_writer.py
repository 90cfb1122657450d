"""SQLite statements run on the event loop's thread, and nothing that waits does.

Another process's write lock is waited for with asynchronous retries (the loop
keeps running), and the write-ahead log is checkpointed on a thread after
writes, not inside a commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from callcenter.store.db import Database


async def test_a_lock_held_elsewhere_is_waited_for_without_stopping_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction(serialize=False) as tx:
            await tx.execute(text("CREATE TABLE t (x INTEGER)"))
        held = threading.Event()

        def hold_the_lock() -> None:  # another writer, as another process would be
            with sqlite3.connect(path, isolation_level=None) as other:
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO t VALUES (1)")
                held.set()
                time.sleep(0.4)
                other.execute("COMMIT")

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        await asyncio.to_thread(held.wait)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(tick())
        began = time.monotonic()
        async with db.transaction(serialize=False) as tx:
            await tx.execute(text("INSERT INTO t VALUES (2)"))
        waited = time.monotonic() - began
        ticking.cancel()
        holder.join()
        assert waited >= 0.2  # it did wait for the other writer
        assert ticks >= 10  # and the loop went on meanwhile
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all() == [
                1,
                2,
            ]
    finally:
        await db.dispose()


async def test_the_log_is_copied_back_after_writes(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction(serialize=False) as tx:
            await tx.execute(text("CREATE TABLE t (x TEXT)"))
        for _ in range(20):
            async with db.transaction(serialize=False) as tx:
                await tx.execute(text("INSERT INTO t VALUES (:x)"), {"x": "y" * 2000})
        # the commits themselves do not checkpoint (the writer's autocheckpoint is off)
        async with db.transaction(serialize=False) as tx:
            value = (await tx.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert value == 0
        # the rows reach the database file itself (40 kB of them: far below SQLite's
        # own threshold of 1000 pages), with no checkpoint asked for here
        deadline = time.monotonic() + 10
        while path.stat().st_size < 20 * 2000:
            assert time.monotonic() < deadline, path.stat().st_size
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


async def test_every_sqlite_connection_syncs_each_commit_to_disk(tmp_path: Path) -> None:
    """``synchronous=FULL`` (2): in WAL mode NORMAL (1) may lose the last commits on a
    power cut, which a provider was already told were stored."""
    from callcenter.bootstrap import build_runtime
    from callcenter.config import Settings

    rt = build_runtime(Settings(data_dir=tmp_path / "data", channels=[], ui=[]))
    db = rt.db
    try:
        async with db.transaction(serialize=False) as tx:
            assert await tx.conn.scalar(text("PRAGMA synchronous")) == 2
        async with db.read() as conn:
            assert await conn.scalar(text("PRAGMA synchronous")) == 2
        async with db.read(long=True) as conn:
            assert await conn.scalar(text("PRAGMA synchronous")) == 2
    finally:
        await db.dispose()
