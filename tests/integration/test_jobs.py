"""The durable job executor: retries, dead letters, leases, and a real SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions.intake import Inbound, receive_message
from callcenter.clock import ManualClock
from callcenter.jobs.executor import JobRunner, PermanentFailure, RetryLater
from callcenter.jobs.outbox import Job, enqueue
from callcenter.runtime import Runtime
from callcenter.store.tables import jobs, messages
from tests.helpers import jsonl, replies_to_send, start_worker, until_all_jobs_done

ROOT = Path(__file__).resolve().parents[2]


async def add_job(rt: Runtime, kind: str, key: str, **payload: Any) -> None:
    async with rt.transaction() as tx:
        await enqueue(tx, kind, payload, key=key, now=tx.state["now"], max_attempts=3)


async def job_row(rt: Runtime, key: str) -> Any:
    async with rt.db.read() as conn:
        return (await conn.execute(select(jobs).where(jobs.c.key == key))).one()


async def test_failures_back_off_then_go_dead(rt: Runtime, clock: ManualClock) -> None:
    calls: list[int] = []

    async def flaky(rt: Runtime, job: Job) -> dict[str, Any]:
        calls.append(job.attempts)
        raise ConnectionError("provider down")

    rt.jobs.register("test.flaky", flaky)
    await add_job(rt, "test.flaky", "flaky-1")
    assert rt.runner is not None
    assert await rt.runner.run_due() == 1
    row = await job_row(rt, "flaky-1")
    assert row.state == "pending" and row.attempts == 1 and "provider down" in row.last_error
    first_delay = row.run_at - clock.now()
    assert timedelta(seconds=1.5) <= first_delay <= timedelta(seconds=2.5)
    assert await rt.runner.run_due() == 0  # not due yet
    clock.advance(first_delay)
    await rt.runner.run_due()
    row = await job_row(rt, "flaky-1")
    assert row.attempts == 2 and row.run_at - clock.now() >= timedelta(seconds=3)  # doubled
    clock.advance(hours=1)
    await rt.runner.run_due()
    row = await job_row(rt, "flaky-1")
    assert row.state == "dead" and row.attempts == 3 and calls == [1, 2, 3]
    clock.advance(days=1)
    assert await rt.runner.run_due() == 0  # the dead stay dead


async def test_permanent_failures_and_deferrals(rt: Runtime, clock: ManualClock) -> None:
    async def refuse(rt: Runtime, job: Job) -> None:
        raise PermanentFailure("invalid number")

    async def later(rt: Runtime, job: Job) -> None:
        raise RetryLater(60, "rate limit", count=False)

    rt.jobs.register("test.refuse", refuse)
    rt.jobs.register("test.later", later)
    await add_job(rt, "test.refuse", "refuse-1")
    await add_job(rt, "test.later", "later-1")
    assert rt.runner is not None
    await rt.runner.run_due()
    assert (await job_row(rt, "refuse-1")).state == "dead"
    deferred = await job_row(rt, "later-1")
    assert deferred.state == "pending" and deferred.attempts == 0
    assert deferred.run_at == clock.now() + timedelta(seconds=60)


async def test_unknown_kinds_go_dead_and_keys_are_unique(rt: Runtime) -> None:
    await add_job(rt, "test.nobody", "nobody-1")
    await add_job(rt, "test.nobody", "nobody-1")  # same key: still one job
    assert rt.runner is not None
    assert await rt.runner.run_due() == 1
    row = await job_row(rt, "nobody-1")
    assert row.state == "dead" and "no handler" in row.last_error


async def test_a_lease_that_runs_out_lets_another_runner_take_the_job(
    rt: Runtime, clock: ManualClock
) -> None:
    ran: list[str] = []

    async def work(rt: Runtime, job: Job) -> dict[str, Any]:
        ran.append(job.key)
        return {"ok": True}

    rt.jobs.register("test.work", work)
    await add_job(rt, "test.work", "work-1")
    crashed = JobRunner(rt, name="crashed")
    assert [j.key for j in await crashed.claim(10)] == ["work-1"]  # ...and it never finishes
    survivor = JobRunner(rt, name="survivor")
    assert await survivor.claim(10) == []  # the lease still holds
    clock.advance(seconds=rt.settings.jobs.lease_seconds + 1)
    assert await survivor.run_due() == 1
    row = await job_row(rt, "work-1")
    assert row.state == "done" and row.attempts == 2 and ran == ["work-1"]
    clock.advance(days=1)
    assert await survivor.run_due() == 0  # done is done


async def test_a_job_that_loses_every_worker_goes_dead(rt: Runtime, clock: ManualClock) -> None:
    """A poison job (its worker dies every time) stops after max_attempts claims."""
    rt.jobs.register("test.poison", lambda rt, job: asyncio.sleep(0))
    await add_job(rt, "test.poison", "poison-1")  # max_attempts=3
    for n in range(3):
        assert len(await JobRunner(rt, name=f"dies-{n}").claim(10)) == 1  # ...and dies
        clock.advance(seconds=rt.settings.jobs.lease_seconds + 1)
    assert await JobRunner(rt, name="next").claim(10) == []
    row = await job_row(rt, "poison-1")
    assert (row.state, row.attempts, row.locked_by) == ("dead", 3, None)
    assert "lost with the worker" in row.last_error


async def test_the_in_process_driver_runs_jobs_after_commit(rt: Runtime) -> None:
    import asyncio

    from callcenter.jobs.executor import InProcessDriver

    assert rt.runner is not None
    driver = InProcessDriver(rt.runner)
    rt.driver = driver
    await driver.start()
    try:
        result = await receive_message(
            rt, Inbound("sms", "phone", "+8613800000000", "小区路灯坏了", provider_id="SM1")
        )
        assert result.reply_message_id is not None
        for _ in range(100):
            async with rt.db.read() as conn:
                status = await conn.scalar(
                    select(messages.c.status).where(messages.c.id == result.reply_message_id)
                )
            if status == "sent":
                break
            await asyncio.sleep(0.02)
        assert status == "sent"
    finally:
        await driver.stop()
        rt.driver = None


# --- a real process, really killed --------------------------------------------------------


def _worker(tmp_path: Path, database_url: str) -> subprocess.Popen[bytes]:
    options = {"sms": {"delay_seconds": 0.02, "settle_seconds": 0.25}}
    return start_worker(
        tmp_path,
        database_url,
        CHANNELS='["channels.simulated:SimulatedSms"]',
        CHANNEL_OPTIONS=json.dumps(options),
    )


@pytest.mark.slow
async def test_sigkill_mid_run_loses_nothing_and_repeats_no_effect(
    rt: Runtime, tmp_path: Path, database_url: str
) -> None:
    ids = await replies_to_send(rt, 30)
    keys = {f"msg-{i}" for i in ids}
    provider = tmp_path / "data" / "simulated-sms"

    worker = _worker(tmp_path, database_url)
    try:
        deadline = time.monotonic() + 60
        while len(jsonl(provider / "sent.jsonl")) < 8:
            assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the worker sent nothing"
            await asyncio.sleep(0.02)
        # mid-batch: some sends stored by the provider, not yet recorded here
        await asyncio.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    async with rt.db.read() as conn:
        done_before = set(
            (await conn.execute(select(jobs.c.key).where(jobs.c.state == "done"))).scalars()
        )
        running = (await conn.execute(select(jobs.c.key).where(jobs.c.state == "running"))).all()
    assert done_before and running, "the kill should land mid-run"
    calls_before = Counter(c["key"] for c in jsonl(provider / "calls.jsonl"))

    await until_all_jobs_done(rt, _worker(tmp_path, database_url), len(ids))

    sent = jsonl(provider / "sent.jsonl")
    calls = Counter(c["key"] for c in jsonl(provider / "calls.jsonl"))
    effects = Counter(s["key"] for s in sent)
    assert set(effects) == keys, "every message reached the provider"
    assert max(effects.values()) == 1, "no message was sent twice"
    async with rt.db.read() as conn:
        rows = (await conn.execute(select(jobs.c.key, jobs.c.payload, jobs.c.attempts))).all()
        statuses = set(
            (
                await conn.execute(select(messages.c.status).where(messages.c.direction == "out"))
            ).scalars()
        )
    assert statuses == {"sent"}
    for key, payload, attempts in rows:
        message_key = f"msg-{payload['message_id']}"
        if key in done_before:
            assert attempts == 1 and calls[message_key] == calls_before[message_key] == 1, key
    rerun = [k for k, n in calls.items() if n > 1]
    assert rerun, "a job interrupted by the kill ran again"
    assert all(effects[k] == 1 for k in rerun), "...and had no second effect"


async def test_an_operator_puts_a_dead_job_back_and_it_is_audited(rt: Runtime) -> None:
    from callcenter.actions.audit import verify_chain
    from callcenter.actions.operations import operator, requeue_dead_job
    from callcenter.store.tables import audit_events

    async with rt.transaction() as tx:
        await enqueue(tx, "no.such.kind", {}, key="dead-one", now=tx.state["now"])
    assert rt.runner is not None
    await rt.runner.run_due()
    async with rt.db.read() as conn:
        job = (await conn.execute(select(jobs).where(jobs.c.key == "dead-one"))).one()
    assert job.state == "dead"
    who = operator("ops-zhang")
    assert await requeue_dead_job(rt.db, job.id, actor=who, now=rt.clock.now())
    assert not await requeue_dead_job(rt.db, job.id, actor=who, now=rt.clock.now())
    async with rt.db.read() as conn:
        again = (await conn.execute(select(jobs).where(jobs.c.id == job.id))).one()
        event = (
            await conn.execute(select(audit_events).where(audit_events.c.action == "job.requeue"))
        ).one()
    assert (again.state, again.attempts) == ("pending", 0)
    assert (event.actor_role, event.actor_name, event.entity_id) == (
        "admin",
        "ops-zhang (command line)",
        job.id,
    )
    assert event.details == {"kind": "no.such.kind"}
    assert (await verify_chain(rt.db))[1] is None
