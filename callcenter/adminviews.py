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
