"""The read side of the admin pages' configuration: categories as stored (inactive ones
too; the running directory holds only those in use)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.store.tables import categories


async def list_categories(conn: Any) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            select(categories).order_by(categories.c.active.desc(), categories.c.code)
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def category(conn: Any, category_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(categories).where(categories.c.id == category_id))).first()
    return dict(row._mapping) if row is not None else None


async def local_days(conn: Any, year: int) -> list[dict[str, Any]]:
    from datetime import date

    from callcenter.store.tables import calendar_days

    rows = (
        await conn.execute(
            select(calendar_days)
            .where(
                calendar_days.c.day >= date(year, 1, 1), calendar_days.c.day <= date(year, 12, 31)
            )
            .order_by(calendar_days.c.day)
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def national_days(year: int) -> list[dict[str, Any]]:
    """The year's public holidays and 调休 working days as ``chinesecalendar`` has them."""
    import chinese_calendar

    days = [
        {"day": d, "kind": "holiday", "name": chinese_calendar.get_holiday_detail(d)[1] or ""}
        for d in sorted(chinese_calendar.holidays)
        if d.year == year
    ] + [
        {"day": d, "kind": "workday", "name": chinese_calendar.get_holiday_detail(d)[1] or ""}
        for d in sorted(chinese_calendar.workdays)
        if d.year == year
    ]
    return sorted(days, key=lambda d: d["day"])


async def list_departments(conn: Any) -> list[dict[str, Any]]:
    from callcenter.store.tables import departments

    rows = (await conn.execute(select(departments).order_by(departments.c.code))).all()
    return [dict(r._mapping) for r in rows]


async def count_cells(conn: Any) -> dict[int, int]:
    """Grid cells per owning department."""
    from sqlalchemy import func

    from callcenter.store.tables import grid_cells

    rows = (
        await conn.execute(
            select(grid_cells.c.owner_id, func.count()).group_by(grid_cells.c.owner_id)
        )
    ).all()
    return {owner: int(n) for owner, n in rows}
