"""Working time on the Chinese calendar.

A day is a working day when the ``chinesecalendar`` package says so: weekends
and public holidays are off, and the weekend days the State Council turns into
working days (调休) are on. Local overrides come first, and cover the years the
package does not know yet; for such a year with no override, Monday to Friday
are working days.

Within a working day only the configured working hours count, so that "two
working days" from Friday 16:00 ends on Tuesday afternoon, not on Sunday.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

_MAX_DAYS = 3 * 366  # no deadline looks further ahead than this


def parse_hours(spans: Iterable[str]) -> tuple[tuple[time, time], ...]:
    """Parse ``["09:00-12:00", "13:30-17:30"]`` into sorted, non-overlapping spans."""
    parsed: list[tuple[time, time]] = []
    for span in spans:
        try:
            start_text, end_text = span.split("-")
            start, end = (
                time.fromisoformat(start_text.strip()),
                time.fromisoformat(end_text.strip()),
            )
        except ValueError as exc:
            raise ValueError(f"working hours must look like 09:00-12:00, got {span!r}") from exc
        if end <= start:
            raise ValueError(f"working hours end before they start: {span!r}")
        parsed.append((start, end))
    parsed.sort()
    for (_, end), (start, _) in itertools.pairwise(parsed):
        if start < end:
            raise ValueError(f"working hours overlap: {spans!r}")
    if not parsed:
        raise ValueError("at least one span of working hours is needed")
    return tuple(parsed)


# the years whose arrangement the installed chinesecalendar knows
_KNOWN_YEARS = frozenset(d.year for d in chinese_calendar.holidays) | frozenset(
    d.year for d in chinese_calendar.workdays
)


@lru_cache(maxsize=4096)
def _package_workday(day: date) -> bool | None:
    """The package's answer, or None for a year it does not know yet."""
    if day.year not in _KNOWN_YEARS:
        return None
    return bool(chinese_calendar.is_workday(day))


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and hours in one time zone."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    hours: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13, 30), time(17, 30)))
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @classmethod
    def from_settings(
        cls,
        zone: str,
        work_hours: Iterable[str],
        extra_holidays: Iterable[str] = (),
        extra_workdays: Iterable[str] = (),
    ) -> WorkCalendar:
        return cls(
            zone=ZoneInfo(zone),
            hours=parse_hours(work_hours),
            extra_holidays=frozenset(date.fromisoformat(d) for d in extra_holidays),
            extra_workdays=frozenset(date.fromisoformat(d) for d in extra_workdays),
        )

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day."""
        return sum(
            (
                datetime.combine(date.min, end) - datetime.combine(date.min, start)
                for start, end in self.hours
            ),
            timedelta(),
        )

    def is_workday(self, day: date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        known = _package_workday(day)
        if known is None:
            return day.weekday() < 5
        return known

    def is_holiday(self, day: date) -> bool:
        """A public holiday (not merely a weekend)."""
        if day in self.extra_holidays:
            return True
        if day.year not in _KNOWN_YEARS:
            return False
        return bool(chinese_calendar.get_holiday_detail(day)[1]) and not self.is_workday(day)

    def is_working_time(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if not self.is_workday(local.date()):
            return False
        return any(start <= local.time() < end for start, end in self.hours)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def _spans(self, start_day: date) -> Iterator[tuple[datetime, datetime]]:
        """Working spans (aware UTC) from ``start_day`` on, day by day."""
        for offset in range(_MAX_DAYS):
            day = start_day + timedelta(days=offset)
            if not self.is_workday(day):
                continue
            for start, end in self.hours:
                yield (
                    datetime.combine(day, start, self.zone).astimezone(UTC),
                    datetime.combine(day, end, self.zone).astimezone(UTC),
                )
        raise ValueError("no working time within three years; check the calendar overrides")

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of working time after ``start``."""
        if amount < timedelta():
            raise ValueError("cannot add negative working time")
        start = start.astimezone(UTC)
        remaining = amount
        for span_start, span_end in self._spans(start.astimezone(self.zone).date()):
            if span_end <= start:
                continue
            begin = max(span_start, start)
            available = span_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable")  # _spans raises first

    def add_days(self, start: datetime, days: float) -> datetime:
        return self.add(start, self.day_length * days)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (zero when ``end`` is not after ``start``)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta()
        total = timedelta()
        for span_start, span_end in self._spans(start.astimezone(self.zone).date()):
            if span_start >= end:
                break
            overlap = min(span_end, end) - max(span_start, start)
            if overlap > timedelta():
                total += overlap
        return total

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when within working hours, else the start of the next span."""
        at = at.astimezone(UTC)
        for span_start, span_end in self._spans(at.astimezone(self.zone).date()):
            if span_end > at:
                return max(span_start, at)
        raise AssertionError("unreachable")
