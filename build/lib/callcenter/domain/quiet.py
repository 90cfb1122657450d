"""Quiet hours: when non-urgent messages wait for the morning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """A nightly window, e.g. 21:00-08:00 local time (it may or may not cross midnight)."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, span: str, zone: str) -> QuietHours | None:
        """``"21:00-08:00"``; an empty string means no quiet hours."""
        if not span.strip():
            return None
        try:
            start_text, end_text = span.split("-")
            start, end = (
                time.fromisoformat(start_text.strip()),
                time.fromisoformat(end_text.strip()),
            )
        except ValueError as exc:
            raise ValueError(f"quiet hours must look like 21:00-08:00, got {span!r}") from exc
        if start == end:
            raise ValueError("quiet hours that start when they end make no sense")
        return cls(start, end, ZoneInfo(zone))

    def is_quiet(self, at: datetime) -> bool:
        now = at.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_allowed(self, at: datetime) -> datetime:
        """``at`` itself outside the window, else the window's end (in UTC like ``at``)."""
        if not self.is_quiet(at):
            return at
        local = at.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, self.zone)
        return end.astimezone(at.tzinfo)
