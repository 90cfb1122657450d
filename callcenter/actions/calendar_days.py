"""The working calendar's local days: a day an administrator makes a holiday (a local
festival, a typhoon day) or a working day, over the ``chinesecalendar`` package and
the settings. Each change is audited and announced on the bus (``directory.changed``),
so every process reloads its calendar and the next deadline counts with it; deadlines
already set stay as they were (they were promised with the calendar of their day)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, select

from callcenter.actions import audit
from callcenter.actions.directory import directory_changed, require_admin
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.tables import calendar_days

KINDS = ("holiday", "workday")


def parse_day(value: object) -> date:
    try:
        day = date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput("invalid_field", field="day") from None
    if not 2000 <= day.year <= 2100:
        raise InvalidInput("invalid_field", field="day")
    return day


async def set_calendar_day(
    rt: Runtime, day: date, kind: str | None, *, actor: Actor, note: str = ""
) -> None:
    """Make ``day`` a holiday or a working day here (``kind`` None: as the calendar says)."""
    require_admin(actor)
    if kind is not None and kind not in KINDS:
        raise InvalidInput("invalid_choice", field="kind", choices=", ".join(KINDS))
    note = note.strip()
    if len(note) > 200:
        raise InvalidInput("field_too_long", field="note", limit=200)
    async with rt.transaction() as tx:
        row = (await tx.execute(select(calendar_days).where(calendar_days.c.day == day))).first()
        before = {"kind": row.kind, "note": row.note} if row is not None else None
        if row is not None:
            await tx.execute(delete(calendar_days).where(calendar_days.c.day == day))
        if kind is not None:
            await tx.execute(
                calendar_days.insert().values(
                    day=day, kind=kind, note=note, updated_at=tx.state["now"]
                )
            )
        if before is None and kind is None:
            return
        await audit.record(
            tx,
            actor=actor,
            entity_type="calendar_day",
            entity_id=None,
            action="calendar.day",
            before=before,
            after={"kind": kind, "note": note} if kind is not None else None,
            details={"day": day.isoformat()},
        )
        await directory_changed(tx)
    await rt.reload_directory()
