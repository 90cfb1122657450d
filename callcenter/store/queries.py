"""Small statements shared by the actions, written once for both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from callcenter.store.db import Tx
from callcenter.store.tables import counters


async def insert_ignore(
    tx: Tx, table: Table, values: dict[str, Any], *, conflict: Sequence[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; returns whether a row was inserted."""
    dialect = postgresql if tx.db.dialect == "postgresql" else sqlite
    statement = (
        dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    )
    result = await tx.execute(statement)
    return bool(result.rowcount)


async def next_value(tx: Tx, name: str) -> int:
    """Increment and return a named counter (inside the serialised transaction)."""
    result = await tx.execute(
        update(counters)
        .where(counters.c.name == name)
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    value = result.scalar_one_or_none()
    if value is not None:
        return int(value)
    await insert_ignore(tx, counters, {"name": name, "value": 0}, conflict=("name",))
    result = await tx.execute(
        update(counters)
        .where(counters.c.name == name)
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    return int(result.scalar_one())


async def fetch_one(tx: Tx, table: Table, id: int) -> Any:
    return (await tx.execute(select(table).where(table.c.id == id))).first()
