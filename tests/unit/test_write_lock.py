"""The SQLite write lock: one holder at a time, urgent waiters first, then in order."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.store.db import WriteLock


async def test_one_holder_and_urgent_waiters_first() -> None:
    lock = WriteLock()
    order: list[str] = []
    inside = 0

    async def writer(name: str, *, urgent: bool = False) -> None:
        nonlocal inside
        async with lock.hold(urgent=urgent):
            inside += 1
            assert inside == 1
            order.append(name)
            await asyncio.sleep(0.001)
            inside -= 1

    first = asyncio.create_task(writer("first"))
    await asyncio.sleep(0)  # first holds the lock
    waiting = [
        asyncio.create_task(writer("background 1")),
        asyncio.create_task(writer("background 2")),
        asyncio.create_task(writer("webhooks", urgent=True)),
    ]
    await asyncio.gather(first, *waiting)
    assert order == ["first", "webhooks", "background 1", "background 2"]


async def test_a_waiter_that_gives_up_does_not_keep_the_lock() -> None:
    lock = WriteLock()
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    quitter = asyncio.create_task(asyncio.wait_for(lock.hold().__aenter__(), 0.01))
    with pytest.raises(TimeoutError):
        await quitter
    release.set()
    await held
    async with asyncio.timeout(1):  # free again
        async with lock.hold():
            pass
