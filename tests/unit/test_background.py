"""The background loop the jobs, the inbox and the ACD share: woken, on its own time,
surviving a failed round, stopped cleanly. Bounded: every wait here is under a second."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.background import Loop
from callcenter.foreground import Foreground


class Counting(Loop):
    name = "counting"

    def __init__(self, *, poll: float, wanted: list[float | None], **kw: object) -> None:
        super().__init__(poll=poll, **kw)  # type: ignore[arg-type]
        self.wanted = wanted
        self.fail_next = False
        self.ran = asyncio.Event()

    async def run_once(self) -> float | None:
        self.ran.set()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the database is away for a moment")
        return self.wanted.pop(0) if self.wanted else None


async def _rounds(loop: Counting, at_least: int, within: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while loop.runs < at_least:
        assert asyncio.get_running_loop().time() < deadline, loop.runs
        await asyncio.sleep(0.005)


async def test_a_round_at_once_then_on_wake_and_when_asked() -> None:
    loop = Counting(poll=60, wanted=[None, 0.02])
    await loop.start()
    try:
        await _rounds(loop, 1)  # at start
        await asyncio.sleep(0.05)
        assert loop.runs == 1  # nothing asked for a round: it waits up to poll
        loop.wake()
        await _rounds(loop, 2)
        await _rounds(loop, 3, within=0.5)  # the second round asked to look again in 20 ms
    finally:
        await loop.stop()
    assert loop._task is None


async def test_a_failed_round_is_tried_again_after_the_error_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Counting(poll=60, wanted=[], error_delay=0.02)
    loop.fail_next = True
    await loop.start()
    try:
        await _rounds(loop, 1)  # the second round counts; the failed one does not
        assert "a round failed" in caplog.text
    finally:
        await loop.stop()


async def test_rounds_wait_for_a_gap_in_the_webhooks() -> None:
    foreground = Foreground(quiet=0.001, max_wait=0.5)
    loop = Counting(poll=60, wanted=[], foreground=foreground)
    with foreground.request():  # a webhook in hand: the first round waits
        await loop.start()
        await asyncio.sleep(0.05)
        assert loop.runs == 0
    try:
        await _rounds(loop, 1)
    finally:
        await loop.stop()


async def test_stop_while_woken_ends_the_loop() -> None:
    loop = Counting(poll=60, wanted=[])
    await loop.start()
    await _rounds(loop, 1)
    loop.wake()
    await asyncio.wait_for(loop.stop(), 1)
    runs = loop.runs
    loop.wake()
    await asyncio.sleep(0.02)
    assert loop.runs == runs
