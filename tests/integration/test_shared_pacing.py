"""Send pacing across processes: two runtimes (two workers) pacing one sender number
share one budget in the real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.bootstrap import build_runtime, close_runtime, start_runtime
from callcenter.channel import SmsChannel
from callcenter.clock import ManualClock
from callcenter.ports import DeliveryError
from tests.conftest import make_settings, redis_names


async def test_two_workers_pace_one_sender_together(
    tmp_path: Path, sqlite_url: str, redis_url: str, clock: ManualClock
) -> None:
    prefix = redis_names()
    runtimes = []
    for name in ("w1", "w2"):
        settings = make_settings(
            tmp_path / name,
            sqlite_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            channel_options={"sms": {"rate_segments_per_second": 2}},
        )
        rt = build_runtime(settings, clock=clock, seed=1)
        await start_runtime(rt, start_jobs=False)
        runtimes.append(rt)
    try:
        first, second = (rt.channels.get("sms") for rt in runtimes)
        assert isinstance(first, SmsChannel) and isinstance(second, SmsChannel)
        await first.pace("+8612345", 1)  # half a second of the sender's budget
        with pytest.raises(DeliveryError) as deferred:
            await second.pace("+8612345", 1)  # another process, the same number
        assert deferred.value.retry_after == pytest.approx(0.5, abs=0.01)
        await second.pace("+8612399", 1)  # another number has its own budget
        clock.advance(seconds=0.5)
        await second.pace("+8612345", 1)
        with pytest.raises(DeliveryError):
            await first.pace("+8612345", 1)  # and the first process sees that too
    finally:
        for rt in runtimes:
            await close_runtime(rt)
