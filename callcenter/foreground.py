"""Requests first: background work runs in the gaps between them.

A provider waits for its webhook's answer; the work the text causes (the
inbox's handling, the jobs: replies, reminders) can wait a little. Both share
one event loop, and a batch of background work keeps the loop for several
milliseconds, so a webhook that arrives meanwhile waits for it.

So the webhooks mark themselves (:meth:`Foreground.request`), and background
work asks for a gap (:meth:`Foreground.gap`) before each unit: it goes ahead
once no request has been seen for ``quiet`` seconds. When requests never stop
(a burst), it goes ahead anyway after ``max_wait``: the background keeps at
least one unit per ``max_wait``, and catches up when the burst is over.

While requests come (:meth:`Foreground.busy`: one seen in the last ``recent``
seconds), the background also makes its units small: the inbox handles a
text or two per transaction, the jobs run fewer at once. Otherwise they go at
full size, which is cheaper per item.

Scheduling, not domain time: it reads the event loop's monotonic clock, not
the runtime's :class:`~callcenter.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class Foreground:
    """Who is waiting for an answer now, and when the last one came."""

    def __init__(
        self,
        *,
        quiet: float = 0.002,
        max_wait: float = 0.3,
        recent: float = 0.1,
        now: Callable[[], float] = _loop_time,
    ) -> None:
        if min(quiet, max_wait, recent) < 0:
            raise ValueError("quiet, max_wait and recent are durations (seconds, not negative)")
        self.quiet = quiet
        self.max_wait = max_wait
        self.recent = recent
        self._now = now
        self.active = 0
        self._last = -math.inf

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark a request someone waits on, from its arrival to its answer."""
        self.active += 1
        self._last = self._now()
        try:
            yield
        finally:
            self.active -= 1
            self._last = self._now()

    def idle(self) -> bool:
        """No request in hand, and none for ``quiet`` seconds."""
        return self.active == 0 and self._now() - self._last >= self.quiet

    def busy(self) -> bool:
        """A request in hand, or one seen in the last ``recent`` seconds."""
        return self.active > 0 or self._now() - self._last < self.recent

    async def gap(self) -> None:
        """Return when the requests leave a gap, or after ``max_wait`` at the latest."""
        if self.idle():
            return
        deadline = self._now() + self.max_wait
        while not self.idle():
            left = deadline - self._now()
            if left <= 0:
                return
            # a request in hand is answered within a few milliseconds: look again then
            until_quiet = self._last + self.quiet - self._now() if not self.active else self.quiet
            await asyncio.sleep(max(min(left, until_quiet), 0.0))
