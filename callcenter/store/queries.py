"""Small statements shared by the actions, written once for both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from callcenter.store.db import Conn, Database, Tx
from callcenter.store.tables import counters

_IGNORING: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def insert_ignoring(
    db: Database, table: Table, *, conflict: Sequence[str], returning: Sequence[Any] = ()
) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING [RETURNING ...], in the database's own dialect:
    the one place the statement differs between SQLite and PostgreSQL."""
    dialect = postgresql if db.dialect == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(*returning) if returning else statement


async def insert_ignore(
    tx: Tx, table: Table, values: dict[str, Any] | list[dict[str, Any]], *, conflict: Sequence[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING (one row, or many at once); whether any was inserted."""
    key = (tx.db.dialect, table.name, tuple(conflict))
    statement = _IGNORING.get(key)
    if statement is None:
        statement = _IGNORING[key] = insert_ignoring(tx.db, table, conflict=conflict)
    result = await tx.execute(statement, values)
    return bool(result.rowcount)


_BUMP = (
    update(counters)
    .where(counters.c.name == bindparam("counter"))
    .values(value=counters.c.value + 1)
    .returning(counters.c.value)
)


async def next_value(tx: Tx, name: str) -> int:
    """Increment and return a named counter (inside the serialised transaction)."""
    value = (await tx.execute(_BUMP, {"counter": name})).scalar_one_or_none()
    if value is None:
        await insert_ignore(tx, counters, {"name": name, "value": 0}, conflict=("name",))
        value = (await tx.execute(_BUMP, {"counter": name})).scalar_one()
    return int(value)


_INSERTS: dict[str, Any] = {}
_UPDATES: dict[str, Any] = {}
_SELECTS: dict[str, Any] = {}


async def insert_row(tx: Tx, table: Table, values: dict[str, Any]) -> Any:
    """INSERT one row and return it whole (``RETURNING``, no second query)."""
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = table.insert().returning(*table.c)
    return (await tx.execute(statement, values)).one()


_INSERT_IDS: dict[str, Any] = {}


async def insert_id(tx: Tx, table: Table, values: dict[str, Any]) -> int:
    """INSERT one row and return its id (``RETURNING id``: nothing else to read back)."""
    statement = _INSERT_IDS.get(table.name)
    if statement is None:
        statement = _INSERT_IDS[table.name] = table.insert().returning(table.c.id)
    return int((await tx.execute(statement, values)).scalar_one())


async def update_row(tx: Tx, table: Table, id: int, values: dict[str, Any]) -> Any:
    """UPDATE one row by id and return it whole, or None if there is no such row."""
    statement = update(table).where(table.c.id == id).values(**values).returning(*table.c)
    return (await tx.execute(statement)).first()


async def row_by_id(tx: Tx | Conn, table: Table, id: int) -> Any:
    statement = _SELECTS.get(table.name)
    if statement is None:
        statement = _SELECTS[table.name] = select(table).where(table.c.id == bindparam("row_id"))
    return (await tx.execute(statement, {"row_id": id})).first()


async def once(tx: Tx, key: str) -> bool:
    """True the first time ``key`` is seen (inside ``tx``), False ever after.

    Jobs that may run twice after a crash use it to do their work once.
    """
    return await insert_ignore(
        tx, counters, {"name": f"once:{key}"[:64], "value": 1}, conflict=("name",)
    )


def local_bucket(db: Database, column: Any, *, zone: str, offset: timedelta, hour: bool) -> Any:
    """``column`` (UTC) as its local day (``YYYY-MM-DD``) or hour (``HH``), counted in the
    database: PostgreSQL converts with the zone's rules, SQLite shifts by ``offset``
    (the zone's offset now; the hotline's zones keep no daylight saving)."""
    if db.dialect == "postgresql":
        return func.to_char(func.timezone(zone, column), "HH24" if hour else "YYYY-MM-DD")
    shift = f"{int(offset.total_seconds() // 60):+d} minutes"
    return func.strftime("%H" if hour else "%Y-%m-%d", column, shift)


def rarely_true(db: Database, condition: Any) -> Any:
    """``condition``, said to be rare to SQLite's planner (which has no statistics of skew),
    so that it seeks the rows rather than walking an ordered index. PostgreSQL's planner
    knows it from its statistics."""
    if not db.is_sqlite:
        return condition
    return func.likelihood(condition, literal_column("0.02"))
