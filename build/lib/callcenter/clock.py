"""Time and randomness, injected so that SLA, reminders and surveys can be tested.

Every part of the system that needs "now" takes a :class:`Clock`. Production
uses :class:`SystemClock`; tests use :class:`ManualClock` and move it forward
instead of sleeping.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time (always timezone-aware, in UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and for back-dated demo data."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime(2026, 11, 27, 2, 0, tzinfo=UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def utc(when: datetime) -> datetime:
    """Return ``when`` as an aware UTC datetime; naive values are taken to be UTC."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def make_random(seed: int | None = None) -> random.Random:
    """The one place that creates random generators, so tests can seed them."""
    return random.Random(seed)
