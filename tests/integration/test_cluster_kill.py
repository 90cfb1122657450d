"""Two web nodes and two Celery workers on one PostgreSQL and one Redis, under a load of
signed Twilio SMS webhooks, while a worker and then a web node are killed with SIGKILL
and started again.

Twilio (the stand-in, through the real ``twilio`` client on the hotline's side) retries
a webhook that got no 200, here on the other node. Afterwards: every acknowledged text
is stored once and became at most one ticket; every message the hotline wrote went to
Twilio exactly once (the receipt among them); nothing is left in the outbox but what
is due later; the inbox is empty.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from callcenter.runtime import Runtime
from callcenter.store.tables import conversations, inbox, jobs, messages, tickets
from tests.conftest import redis_names
from tests.fakes.twilio_api import TwilioStandIn, new_sid

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PUBLIC = "https://hotline.example.gov.cn"
OUR = "+14155550100"
TEXTS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, tmp: Path, database_url: str, redis_url: str, standin: TwilioStandIn):
        self.tmp = tmp
        prefix = redis_names()
        options = {
            "sms": {
                "account_sid": standin.account_sid,
                "auth_token": standin.auth_token,
                "from_number": OUR,
                "api_base_url": standin.base_url,
                "rate_segments_per_second": 1000,
                "timeout_seconds": 10,
            }
        }
        self.env = dict(os.environ)
        self.env.update(
            CALLCENTER_DATABASE_URL=database_url,
            CALLCENTER_REDIS_URL=redis_url,
            CALLCENTER_REDIS_PREFIX=prefix,
            CALLCENTER_PUBLIC_URL=PUBLIC,
            CALLCENTER_CHANNELS='["channels.twilio.sms:TwilioSms"]',
            CALLCENTER_CHANNEL_OPTIONS=json.dumps(options),
            CALLCENTER_UI="[]",
            CALLCENTER_MEDIA__JANUS="off",
            CALLCENTER_ACD__ENABLED="false",
            CALLCENTER_JOBS__DRIVER="celery",
            CALLCENTER_JOBS__CELERY_QUEUE=prefix,
            CALLCENTER_JOBS__LEASE_SECONDS="3",
            CALLCENTER_JOBS__POLL_SECONDS="0.3",
            CALLCENTER_JOBS__RESEND_SECONDS="3",
            CALLCENTER_JOBS__CONCURRENCY="4",
        )
        self.ports = [_free_port(), _free_port()]
        self.webs: list[subprocess.Popen[bytes] | None] = [None, None]
        self.workers: list[subprocess.Popen[bytes] | None] = [None, None]

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        data = self.tmp / name
        data.mkdir(exist_ok=True)
        env = {**self.env, "CALLCENTER_DATA_DIR": str(data)}
        log = (self.tmp / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "callcenter.cli", *args],
            env=env,
            cwd=data,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def start_web(self, n: int) -> None:
        port = self.ports[n]
        self.webs[n] = self._spawn(f"web{n}", ["serve", "--port", str(port)])
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.webs[n].poll() is None, self.log(f"web{n}")  # type: ignore[union-attr]
                try:
                    async with session.get(f"http://127.0.0.1:{port}/ready") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, self.log(f"web{n}")
                await asyncio.sleep(0.2)

    def start_worker(self, n: int) -> None:
        self.workers[n] = self._spawn(
            f"worker{n}",
            ["worker", "--celery", "--", "--without-gossip", "--without-mingle", "-n", f"w{n}@%h"],
        )

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        assert process is not None and process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n]}"

    def stop(self) -> None:
        for process in [*self.webs, *self.workers]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.webs, *self.workers]:
            if process is None:
                continue
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def test_two_nodes_two_workers_sigkill_lose_nothing_and_repeat_nothing(
    rt: Runtime, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several nodes share PostgreSQL")
    async with TwilioStandIn() as standin:
        cluster = Cluster(tmp_path, database_url, redis_url, standin)
        try:
            await asyncio.gather(cluster.start_web(0), cluster.start_web(1))
            cluster.start_worker(0)
            cluster.start_worker(1)
            acked: dict[str, str] = {}  # MessageSid -> the citizen's number
            refused = [0]  # webhooks that got no 200 and went again
            quarter, half = asyncio.Event(), asyncio.Event()
            texts = [(new_sid(), f"+86139{n:08d}", f"第{n}号：路灯坏了") for n in range(TEXTS)]

            async def deliver(i: int, sid: str, sender: str, body: str) -> None:
                """As Twilio does: retry until a 200, on the other node after a failure."""
                node = i % 2
                for _ in range(100):
                    try:
                        status, _text = await standin.send_inbound(
                            PUBLIC + "/channels/twilio/sms",
                            sender,
                            body,
                            OUR,
                            sid=sid,
                            via=cluster.url(node),
                        )
                    except aiohttp.ClientError:
                        status = 0
                    if status == 200:
                        acked[sid] = sender
                        if len(acked) >= TEXTS // 4:
                            quarter.set()
                        if len(acked) >= TEXTS // 2:
                            half.set()
                        return
                    refused[0] += 1
                    node = 1 - node
                    await asyncio.sleep(0.2)
                raise AssertionError(f"{sid} was never acknowledged")

            async def load() -> None:
                gate = asyncio.Semaphore(4)

                async def one(i: int, text: tuple[str, str, str]) -> None:
                    async with gate:
                        await deliver(i, *text)

                await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)))

            async def chaos() -> None:
                await quarter.wait()
                cluster.kill(cluster.workers[0])
                cluster.start_worker(0)
                await half.wait()
                cluster.kill(cluster.webs[0])
                await cluster.start_web(0)

            await asyncio.wait_for(asyncio.gather(load(), chaos()), 180)
            assert len(acked) == TEXTS
            assert refused[0] > 0, "the node's death was felt by the webhooks"

            # everything settles: the inbox handled, the outbox empty but for what is due later
            deadline = time.monotonic() + 120
            while True:
                async with rt.db.read() as conn:
                    unhandled = await conn.scalar(
                        select(func.count()).where(inbox.c.state != "done")
                    )
                    now = datetime.now(UTC)  # the nodes' clock, not the fixture's
                    left = (
                        await conn.execute(
                            select(jobs.c.kind, jobs.c.state).where(
                                jobs.c.state.in_(("pending", "running")), jobs.c.run_at <= now
                            )
                        )
                    ).all()
                    queued = await conn.scalar(
                        select(func.count()).where(
                            messages.c.direction == "out", messages.c.status == "queued"
                        )
                    )
                if not unhandled and not left and not queued:
                    break
                assert time.monotonic() < deadline, (
                    f"inbox {unhandled}, jobs {left}, queued {queued}\n"
                    + cluster.log("worker0")
                    + cluster.log("worker1")
                )
                await asyncio.sleep(0.3)
        finally:
            cluster.stop()

        async with rt.db.read() as conn:
            inbound = Counter(
                (
                    await conn.execute(
                        select(messages.c.provider_id).where(messages.c.direction == "in")
                    )
                ).scalars()
            )
            per_conversation = Counter(
                (
                    await conn.execute(
                        select(tickets.c.conversation_id).where(
                            tickets.c.conversation_id.is_not(None)
                        )
                    )
                ).scalars()
            )
            outbound = (
                await conn.execute(
                    select(
                        messages.c.id,
                        func.coalesce(conversations.c.address, messages.c.to_address).label("to"),
                        messages.c.status,
                    )
                    .outerjoin(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(messages.c.direction == "out")
                )
            ).all()
            dead = (await conn.execute(select(jobs.c.kind).where(jobs.c.state == "dead"))).all()
        assert set(inbound) == set(acked), "every acknowledged text is stored"
        assert max(inbound.values()) == 1, "...once"
        assert not per_conversation or max(per_conversation.values()) == 1, "at most one ticket"
        assert dead == []
        assert outbound and {row.status for row in outbound} <= {"sent", "delivered"}
        at_twilio = Counter(m["to"] for m in standin.accepted)
        written = Counter(row.to for row in outbound)
        assert set(at_twilio) == set(acked.values()), "every citizen got the receipt"
        assert at_twilio == written, "each message the hotline wrote reached Twilio exactly once"
