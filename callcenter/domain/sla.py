"""Deadlines and traffic lights for tickets.

Two clocks run on a dispatched ticket: the sign-for clock (签收时限, from
dispatch until the department signs for it) and the handling clock (办理时限,
from dispatch until the department replies). Normal tickets count working time
on the :class:`~callcenter.domain.calendar.WorkCalendar`; urgent tickets (急事
特办) count clock time, because an urgent case does not wait for Monday.

A clock is green until ``yellow_at`` (75 %) of its time has elapsed, yellow
after that, and red once the deadline has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from callcenter.config import Limit, SlaSettings
from callcenter.domain.calendar import WorkCalendar


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


_SEVERITY = {Light.GREEN: 0, Light.YELLOW: 1, Light.RED: 2}


def worst(*lights: Light | None) -> Light | None:
    present = [light for light in lights if light is not None]
    return max(present, key=_SEVERITY.__getitem__) if present else None


@dataclass(frozen=True)
class SlaPolicy:
    """The configured limits applied on a calendar."""

    calendar: WorkCalendar
    settings: SlaSettings
    # handling time of categories that set their own, in working days, by category id
    category_days: Mapping[int, float] = field(default_factory=dict)

    def sign_limit(self, priority: str) -> Limit:
        return self.settings.urgent_sign_for if priority == "urgent" else self.settings.sign_for

    def handle_limit(
        self, ticket_type: str, priority: str, category_id: int | None = None
    ) -> Limit:
        """Urgent: the urgent limit; else the category's own, if it has one; else the type's."""
        if priority == "urgent":
            return self.settings.urgent_handle
        if category_id is not None and category_id in self.category_days:
            return Limit(amount=self.category_days[category_id], unit="working_days")
        try:
            return self.settings.handle[ticket_type]
        except KeyError:
            raise ValueError(
                f"no handling limit configured for ticket type {ticket_type!r}"
            ) from None

    def deadline(self, start: datetime, limit: Limit) -> datetime:
        match limit.unit:
            case "working_days":
                return self.calendar.add_days(start, limit.amount)
            case "working_hours":
                return self.calendar.add(start, timedelta(hours=limit.amount))
            case "hours":
                return start + timedelta(hours=limit.amount)
            case "minutes":
                return start + timedelta(minutes=limit.amount)
        raise ValueError(f"unknown unit {limit.unit!r}")

    def extend(self, due: datetime, days: int, priority: str) -> datetime:
        """Move a handling deadline by ``days`` (working days; calendar days if urgent)."""
        if priority == "urgent":
            return due + timedelta(days=days)
        return self.calendar.add_days(due, days)

    def yellow_from(self, start: datetime, deadline: datetime, *, working: bool) -> datetime:
        """The instant a clock from ``start`` to ``deadline`` turns yellow (``yellow_at`` of
        its time gone): stored with the ticket, so that lists count lights in SQL."""
        total = self._measure(start, deadline, working)
        if total <= timedelta():
            return start
        part = total * self.settings.yellow_at
        return self.calendar.add(start, part) if working else start + part

    def _measure(self, start: datetime, end: datetime, working: bool) -> timedelta:
        if working:
            return self.calendar.between(start, end)
        return max(end - start, timedelta())

    def light(self, start: datetime, deadline: datetime, now: datetime, *, working: bool) -> Light:
        if now >= deadline:
            return Light.RED
        total = self._measure(start, deadline, working)
        if total <= timedelta():
            return Light.YELLOW
        fraction = self._measure(start, now, working) / total
        return Light.YELLOW if fraction >= self.settings.yellow_at else Light.GREEN

    def is_working(self, priority: str) -> bool:
        return priority != "urgent"
