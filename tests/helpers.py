"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.store.tables import users


async def actor(rt: Runtime, username: str) -> Actor:
    async with rt.db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).one()
    return Actor(row.id, Role(row.role), row.display_name, row.department_id, row.locale)


async def signed_in_client(app: Any, user: str, password: str = "demo12345") -> Any:
    """A new test client on ``app`` holding a staff session cookie (pages need one)."""
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app), loop=None)
    await client.start_server()
    page = await client.get("/ui/login")
    assert page.status == 200
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_login_csrf"]
    response = await client.post(
        "/ui/login",
        data={"username": user, "password": password, "csrf": token.value},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return client


async def assign_to(rt: Runtime, conversation_id: int, username: str = "agent1") -> Actor:
    """The agent becomes available, is offered the waiting conversation and takes it."""
    from callcenter.actions import acd
    from callcenter.store.tables import offers

    agent = await actor(rt, username)
    await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer_id = (
            await conn.execute(
                select(offers.c.id).where(
                    offers.c.conversation_id == conversation_id,
                    offers.c.agent_id == agent.id,
                    offers.c.state == "pending",
                )
            )
        ).scalar_one()
    await acd.accept_offer(rt, offer_id, actor=agent)
    return agent


def dept_id(rt: Runtime, code: str) -> int:
    return next(d.id for d in rt.directory.departments if d.code == code)


def staff_of(code: str) -> str:
    """The demo username of a department's duty officer."""
    return code.lower()


def cell_point(rt: Runtime, cell_code: str) -> tuple[float, float]:
    cell = next(c for c in rt.directory.cells if c.code == cell_code)
    point: Any = cell.geometry.representative_point()
    return point.y, point.x  # lat, lon


async def settle(rt: Runtime, clock: Any, *, within: float = 300) -> None:
    """Run every due job, letting the manual clock pass over short deferrals (pacing,
    one conversation's messages in order) but not over scheduled work further away."""
    from datetime import timedelta

    from sqlalchemy import func

    from callcenter.store.tables import jobs

    assert rt.runner is not None
    for _ in range(100):
        await rt.runner.drain()
        async with rt.db.read() as conn:
            upcoming = await conn.scalar(
                select(func.min(jobs.c.run_at)).where(jobs.c.state == "pending")
            )
        if upcoming is None or upcoming - clock.now() > timedelta(seconds=within):
            return
        clock.set(max(upcoming, clock.now()))


def start_worker(
    tmp_path: Path, database_url: str, *args: str, output: Path | None = None, **settings: str
) -> subprocess.Popen[bytes]:
    """A real ``callcenter worker`` process with short leases, on the test's database.

    ``args`` go to the command (``--celery``); ``settings`` are more ``CALLCENTER_*``
    variables (without the prefix). What it prints goes to a pipe, or appended to the
    file ``output`` (for a chatty process: a pipe nobody reads stops it when full).
    """
    env = dict(os.environ)
    env.update(
        CALLCENTER_DATABASE_URL=database_url,
        CALLCENTER_DATA_DIR=str(tmp_path / "data"),
        CALLCENTER_JOBS__LEASE_SECONDS="1.5",
        CALLCENTER_JOBS__POLL_SECONDS="0.2",
        CALLCENTER_JOBS__CONCURRENCY="4",
        **{f"CALLCENTER_{name}": value for name, value in settings.items()},
    )
    return subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "worker", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE if output is None else output.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def until_all_jobs_done(
    rt: Runtime, worker: subprocess.Popen[bytes], count: int, seconds: float = 60
) -> None:
    """Wait (bounded) for ``count`` jobs to be done, then stop the worker."""
    from collections import Counter

    from callcenter.store.tables import jobs

    try:
        deadline = time.monotonic() + seconds
        while True:
            async with rt.db.read() as conn:
                states = Counter((await conn.execute(select(jobs.c.state))).scalars())
            if states == Counter({"done": count}):
                return
            assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"jobs left: {states}"
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)


@contextlib.contextmanager
def counted_commits(rt: Runtime) -> Iterator[list[int]]:
    """How many transactions the writer commits inside the block (in ``[0]``)."""
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(rt.db.sync_engine, "commit", on_commit)
    try:
        yield commits
    finally:
        event.remove(rt.db.sync_engine, "commit", on_commit)


async def replies_to_send(rt: Runtime, count: int) -> list[int]:
    """A citizen's text and ``count`` replies from agent1: messages waiting in the outbox."""
    from callcenter.actions.intake import Inbound, receive_message
    from callcenter.actions.messages import send_reply

    agent = await actor(rt, "agent1")
    result = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000001", "你好", provider_id="SM0")
    )
    assert result.reply_message_id is not None
    ids = [result.reply_message_id]
    for i in range(count):
        ids.append(await send_reply(rt, result.conversation_id, f"第 {i} 条", actor=agent))
    return ids


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (none if it is not there yet)."""
    import json

    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
