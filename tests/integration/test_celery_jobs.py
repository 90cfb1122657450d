"""The Celery driver: real Redis as the broker, real ``callcenter worker --celery``
processes, on PostgreSQL; one killed with SIGKILL mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, close_runtime, start_runtime
from callcenter.clock import ManualClock
from callcenter.config import Settings
from callcenter.jobs.celery_driver import TASK, CeleryRelay, make_celery
from callcenter.jobs.executor import JobRunner
from callcenter.jobs.outbox import Job, enqueue
from callcenter.runtime import Runtime
from callcenter.store.tables import jobs, messages
from tests.conftest import load_test_city, make_settings, redis_names
from tests.helpers import jsonl, replies_to_send, start_worker

HOUR = timedelta(hours=1)


def _celery_worker(
    tmp_path: Path, database_url: str, redis_url: str, queue: str
) -> subprocess.Popen[bytes]:
    options = {"sms": {"delay_seconds": 0.02, "settle_seconds": 0.25}}
    return start_worker(
        tmp_path,
        database_url,
        "--celery",
        "--",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        output=tmp_path / "worker.log",
        CHANNELS='["channels.simulated:SimulatedSms"]',
        CHANNEL_OPTIONS=json.dumps(options),
        REDIS_URL=redis_url,
        JOBS__CELERY_QUEUE=queue,
        JOBS__RESEND_SECONDS="2",
        JOBS__VISIBILITY_TIMEOUT_SECONDS="600",
        ACD__ENABLED="false",
    )


async def _states(rt: Runtime) -> Counter[str]:
    async with rt.db.read() as conn:
        return Counter((await conn.execute(select(jobs.c.state))).scalars())


async def _wait(
    rt: Runtime, worker: subprocess.Popen[bytes], done: int, seconds: float, tmp: Path
) -> None:
    deadline = time.monotonic() + seconds
    while (states := await _states(rt)) != Counter({"done": done}):
        assert worker.poll() is None, (tmp / "worker.log").read_text()[-4000:]
        if time.monotonic() > deadline:
            worker.kill()
            async with rt.db.read() as conn:
                left = (await conn.execute(select(jobs).where(jobs.c.state != "done"))).all()
            raise AssertionError(f"jobs left: {states}: {left}")
        await asyncio.sleep(0.1)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


@pytest.mark.slow
async def test_celery_workers_send_each_message_once_through_a_sigkill(
    rt: Runtime, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("Celery workers across processes run on PostgreSQL")
    queue = redis_names()
    ids = await replies_to_send(rt, 30)
    keys = {f"msg-{i}" for i in ids}
    provider = tmp_path / "data" / "simulated-sms"

    worker = _celery_worker(tmp_path, database_url, redis_url, queue)
    try:
        deadline = time.monotonic() + 60
        while len(jsonl(provider / "sent.jsonl")) < 8:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the worker sent nothing"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # mid-run: some sends stored by the provider, not recorded
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    states = await _states(rt)
    assert states["done"] and states["running"], f"the kill should land mid-run: {states}"

    worker = _celery_worker(tmp_path, database_url, redis_url, queue)
    try:
        await _wait(rt, worker, len(ids), 60, tmp_path)
        # every task delivered again (as a broker's redelivery would): nothing runs twice
        app = make_celery(Settings(redis_url=redis_url, jobs={"celery_queue": queue}))
        async with rt.db.read() as conn:
            before = dict((await conn.execute(select(jobs.c.id, jobs.c.attempts))).all())
        for job_id in before:
            app.send_task(TASK, args=[job_id], task_id=str(job_id), queue=queue)
        await asyncio.sleep(2)
        async with rt.db.read() as conn:
            after = dict((await conn.execute(select(jobs.c.id, jobs.c.attempts))).all())
        assert after == before
    finally:
        _stop(worker)

    effects = Counter(s["key"] for s in jsonl(provider / "sent.jsonl"))
    assert set(effects) == keys, "every message reached the provider"
    assert max(effects.values()) == 1, "no message was sent twice"
    async with rt.db.read() as conn:
        statuses = set(
            (
                await conn.execute(select(messages.c.status).where(messages.c.direction == "out"))
            ).scalars()
        )
    assert statuses == {"sent"}


async def test_the_relay_hands_each_due_job_over_once(
    tmp_path: Path, database_url: str, redis_url: str, clock: ManualClock
) -> None:
    """A web node's relay: due jobs go to the broker with their id as the task id, once
    per resend interval; a job whose worker died goes again; one not due waits."""
    queue = redis_names()
    settings = make_settings(
        tmp_path,
        database_url,
        redis_url=redis_url,
        jobs={"driver": "none", "celery_queue": queue, "resend_seconds": 120},
    )
    rt = build_runtime(settings, clock=clock, seed=3)
    await start_runtime(rt, start_jobs=False)
    try:
        await load_test_city(rt)
        async with rt.transaction() as tx:
            for n in range(3):
                await enqueue(tx, "test.x", {}, key=f"x-{n}", now=tx.state["now"])
            await enqueue(
                tx, "test.x", {}, key="later", now=tx.state["now"], run_at=clock.now() + HOUR
            )
        assert rt.runner is not None
        app = make_celery(settings)
        relay = CeleryRelay(rt.runner, app)
        try:
            assert await relay.run_once() == 120.0  # the next look: when the resend is due
            assert relay.sent == 3
            await relay.run_once()
            assert relay.sent == 3, "handed over once per resend interval"
            with app.connection_for_write() as conn:
                client = conn.default_channel.client
                bodies = client.lrange(queue, 0, -1)
            task_ids = sorted(json.loads(b)["headers"]["id"] for b in bodies)
            async with rt.db.read() as conn_db:
                due = select(jobs.c.id).where(jobs.c.key != "later")
                job_ids = sorted(str(i) for i in (await conn_db.execute(due)).scalars())
            assert task_ids == job_ids
            # a worker claims one and dies: when its lease runs out, it goes again
            dying = JobRunner(rt, name="dying")
            claimed: list[Job] = await dying.claim(1)
            assert len(claimed) == 1
            clock.advance(seconds=rt.settings.jobs.lease_seconds + 1)
            await relay.run_once()
            assert relay.sent == 4
            clock.advance(seconds=60)  # the first hand-over's interval is over, not the third's
            await relay.run_once()
            assert relay.sent == 6, "not taken within the resend interval: sent again"
        finally:
            await relay.stop()
            with app.connection_for_write() as conn:
                conn.default_channel.client.delete(queue)
    finally:
        await close_runtime(rt)
