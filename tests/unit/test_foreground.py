"""Background work waits for a gap in the requests, but never longer than ``max_wait``."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.foreground import Foreground


class Ticking:
    """A time source the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0.001)


async def test_without_requests_the_background_goes_at_once() -> None:
    fg = Foreground(quiet=0.01, max_wait=1, now=Ticking())
    assert fg.idle()
    await asyncio.wait_for(fg.gap(), 0.5)


async def test_the_background_waits_until_requests_leave_a_quiet_gap() -> None:
    now = Ticking()
    fg = Foreground(quiet=0.01, max_wait=1, now=now)
    request = fg.request()
    request.__enter__()
    waiting = asyncio.create_task(fg.gap())
    await turns()
    assert not waiting.done() and fg.active == 1
    now.t += 0.5
    request.__exit__(None, None, None)  # answered; the next one may be close behind
    await turns()
    assert not waiting.done() and fg.active == 0
    now.t += 0.011  # quiet for long enough
    await asyncio.wait_for(waiting, 0.5)
    assert fg.idle()


async def test_requests_that_never_stop_hold_the_background_for_max_wait_at_most() -> None:
    now = Ticking()
    fg = Foreground(quiet=0.01, max_wait=1, now=now)
    with fg.request():
        waiting = asyncio.create_task(fg.gap())
        await turns()
        now.t += 0.9
        await turns()
        assert not waiting.done()
        now.t += 0.2  # past max_wait, the request still in hand
        await asyncio.wait_for(waiting, 0.5)
        assert fg.active == 1


def test_durations_are_not_negative() -> None:
    with pytest.raises(ValueError, match="not negative"):
        Foreground(quiet=-1)


def test_busy_while_requests_are_recent() -> None:
    now = Ticking()
    fg = Foreground(quiet=0.01, max_wait=1, recent=0.5, now=now)
    assert not fg.busy()
    with fg.request():
        now.t += 10
        assert fg.busy()  # in hand, however long
    now.t += 0.4
    assert fg.busy() and fg.idle()  # a gap, but webhooks are still coming
    now.t += 0.2
    assert not fg.busy()
