"""Background loops: the one way work runs beside the requests in a process.

The job executor, the inbox's handling and the ACD each run a :class:`Loop`: a
task that runs one round of work (:meth:`Loop.run_once`) whenever it is woken
(:meth:`Loop.wake`, after a commit that concerns it), when the round asked to
look again (its return value, in seconds), and at least every ``poll`` seconds
(to notice work written by another process); the first round runs at once.
Each round first waits for a gap in the webhooks
(:class:`~callcenter.foreground.Foreground`). A round that
fails is logged and tried again after ``poll`` seconds; the loop never dies of
it. :meth:`Loop.stop` ends the loop and waits for it.

The composition root makes the loops a process runs and keeps them as typed
fields of the runtime (``rt.driver``, ``rt.inbox``, ``rt.acd``); anything with
``start``, ``stop`` and ``wake`` (:class:`Background`) can stand there, such as
the Celery driver that runs jobs in other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from callcenter.foreground import Foreground

log = logging.getLogger(__name__)


class Background(Protocol):
    """What the runtime starts, wakes and stops."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...


class Loop:
    """One background loop. Subclasses implement :meth:`run_once`."""

    name = "background"

    def __init__(
        self,
        *,
        poll: float,
        foreground: Foreground | None = None,
        error_delay: float | None = None,
    ) -> None:
        self.poll = poll
        self.foreground = foreground
        self.error_delay = poll if error_delay is None else error_delay
        self.runs = 0  # rounds done, for tests and the status page
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def run_once(self) -> float | None:
        """One round of work; the seconds until the next round is wanted (None: ``poll``)."""
        raise NotImplementedError

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        # the flag as well as the cancellation: Python 3.11's wait_for drops a
        # cancellation that comes as the event it waits for is set
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            timeout = self.poll
            try:
                if self.foreground is not None:
                    await self.foreground.gap()  # webhooks first
                self._wake.clear()  # what woke us before now, this round sees
                wanted = await self.run_once()
                self.runs += 1
                if wanted is not None:
                    timeout = min(timeout, max(wanted, 0.0))
            except asyncio.CancelledError:
                raise
            except Exception:
                timeout = self.error_delay
                log.exception("%s: a round failed; trying again in %.1f s", self.name, timeout)
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
