"""Pacing sends per sender: at most ``rate`` units (SMS segments) per second.

A long code sends about one segment per second; a provider that is handed
more queues or refuses it. The pacer keeps, per sender, the earliest time the
next send may start (a token bucket with no burst, in the form of the generic
cell rate algorithm): a send of ``n`` units at ``t`` moves it to
``t + n / rate``. A send asked for earlier is told how long to wait and takes
nothing, so the caller can defer it and do other work meanwhile.

Pure and per process: several worker processes each pace on their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class SendPacer:
    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("the send rate must be positive")
        self.rate = rate
        self._ready: dict[str, datetime] = {}

    def wait(self, sender: str, now: datetime) -> float:
        """Seconds until ``sender`` may send again (0: now); takes nothing."""
        ready = self._ready.get(sender)
        return (ready - now).total_seconds() if ready is not None and ready > now else 0.0

    def reserve(self, sender: str, units: float, now: datetime) -> float:
        """Take ``units`` for ``sender`` now and return 0, or return the seconds to wait."""
        ready = self._ready.get(sender)
        if ready is not None and ready > now:
            return (ready - now).total_seconds()
        self._ready[sender] = now + timedelta(seconds=units / self.rate)
        return 0.0

    def hold(self, sender: str, seconds: float, now: datetime) -> None:
        """Let nothing start for ``sender`` for ``seconds`` (the provider asked us to wait)."""
        until = now + timedelta(seconds=seconds)
        ready = self._ready.get(sender)
        if ready is None or ready < until:
            self._ready[sender] = until
