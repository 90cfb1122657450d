"""Small helpers shared by the tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.store.tables import users


async def actor(rt: Runtime, username: str) -> Actor:
    async with rt.db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).one()
    return Actor(row.id, Role(row.role), row.display_name, row.department_id, row.locale)


def dept_id(rt: Runtime, code: str) -> int:
    return next(d.id for d in rt.directory.departments if d.code == code)


def staff_of(code: str) -> str:
    """The demo username of a department's duty officer."""
    return code.lower()


def cell_point(rt: Runtime, cell_code: str) -> tuple[float, float]:
    cell = next(c for c in rt.directory.cells if c.code == cell_code)
    point: Any = cell.geometry.representative_point()
    return point.y, point.x  # lat, lon


async def settle(rt: Runtime, clock: Any, *, within: float = 300) -> None:
    """Run every due job, letting the manual clock pass over short deferrals (pacing,
    one conversation's messages in order) but not over scheduled work further away."""
    from datetime import timedelta

    from sqlalchemy import func

    from callcenter.store.tables import jobs

    assert rt.runner is not None
    for _ in range(100):
        await rt.runner.drain()
        async with rt.db.read() as conn:
            upcoming = await conn.scalar(
                select(func.min(jobs.c.run_at)).where(jobs.c.state == "pending")
            )
        if upcoming is None or upcoming - clock.now() > timedelta(seconds=within):
            return
        clock.set(max(upcoming, clock.now()))
