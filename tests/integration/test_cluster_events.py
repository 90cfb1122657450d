"""Live events across two web nodes through the Redis bus (real Redis, PostgreSQL):
a staff page on node A sees what a webhook answered on node B did, and resumes
without a gap when it reconnects to node B."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from callcenter.bootstrap import build_runtime, create_app
from callcenter.bus.redis_bus import RedisBus
from tests.conftest import load_test_city, make_settings, redis_names, reset_postgres

BEARER = {"Authorization": "Bearer demo-supervisor"}
pytestmark = pytest.mark.postgres


@pytest.fixture
async def nodes(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[Any, Any]]:
    """Two web nodes on one database and one Redis, each with its own runtime."""
    await reset_postgres(postgres_url)
    prefix = redis_names()
    clients = []
    async with contextlib.AsyncExitStack() as stack:
        for name in ("a", "b"):
            settings = make_settings(
                tmp_path / name, postgres_url, redis_url=redis_url, redis_prefix=prefix
            )
            rt = build_runtime(settings, seed=1)
            client = TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False)))
            await stack.enter_async_context(client)
            client.rt = rt  # type: ignore[attr-defined]
            clients.append(client)
        await load_test_city(clients[0].rt)
        yield clients[0], clients[1]
    cleanup = aioredis.Redis.from_url(redis_url)
    await cleanup.delete(f"{prefix}:events", f"{prefix}:events:last")
    await cleanup.aclose()


async def frames(ws: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == "event":
            got.append(frame)
    return got


async def quiet(ws: Any, seconds: float = 0.5) -> list[dict[str, Any]]:
    """The event frames that come within ``seconds``."""
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            frame = await ws.receive_json(timeout=seconds)
            if frame["type"] == "event":
                got.append(frame)
    return got


async def sms(node: Any, number: str, text: str) -> None:
    answer = await node.post("/channels/simulated/sms?wait=1", json={"from": number, "text": text})
    assert answer.status == 201, await answer.text()


async def test_an_event_from_node_b_reaches_node_a_and_resumes_on_b(nodes: Any) -> None:
    a, b = nodes
    assert isinstance(a.rt.bus, RedisBus) and isinstance(b.rt.bus, RedisBus)
    page = await a.ws_connect("/ui/ws?topics=conversations", headers=BEARER)
    hello = await page.receive_json(timeout=5)
    control = await a.ws_connect("/ui/ws?topics=conversations", headers=BEARER)
    await control.receive_json(timeout=5)

    await sms(b, "+8613800000101", "港湾路垃圾没人清运")  # answered by node B
    first = await quiet(page)
    assert first, "node A's page heard nothing of node B's webhook"
    assert {f["event"] for f in first} >= {"message.created", "conversation.changed"}
    assert any(f["data"].get("body") == "港湾路垃圾没人清运" for f in first)
    last_seen = first[-1]["id"]
    await page.close()

    # while the page is away, more happens on node B
    await sms(b, "+8613800000102", "小区路灯坏了")
    await sms(b, "+8613800000103", "噪音扰民")
    missed = [f for f in await quiet(control) if f["id"] > last_seen]
    missed += [f for f in first if f["id"] > last_seen]
    assert len(missed) >= 4

    again = await b.ws_connect(
        f"/ui/ws?topics=conversations&queue_id={hello['queue_id']}&last_event_id={last_seen}",
        headers=BEARER,
    )
    hello_b = await again.receive_json(timeout=5)
    assert hello_b["type"] == "hello" and hello_b["resumed"] is True, hello_b
    replayed = await frames(again, len(missed))
    assert [(f["id"], f["event"]) for f in replayed] == [(f["id"], f["event"]) for f in missed]
    assert await quiet(again, 0.3) == [], "nothing twice"

    # and live again, on node B, for what node A does
    await sms(a, "+8613800000104", "路面塌陷")
    live = await quiet(again)
    assert any(f["data"].get("body") == "路面塌陷" for f in live)
    for ws in (again, control):
        await ws.close()


async def test_an_id_the_stream_no_longer_has_asks_for_a_refetch(nodes: Any) -> None:
    a, b = nodes
    page = await a.ws_connect("/ui/ws?topics=conversations", headers=BEARER)
    hello = await page.receive_json(timeout=5)
    await sms(b, "+8613800000111", "一")
    await sms(b, "+8613800000112", "二")
    seen = await quiet(page)
    await page.close()
    bus = b.rt.bus
    trim = aioredis.Redis.from_url(bus.url)
    await trim.xtrim(bus.key, maxlen=1, approximate=False)  # as MAXLEN ~N would, in time
    await trim.aclose()
    again = await b.ws_connect(
        f"/ui/ws?topics=conversations&queue_id={hello['queue_id']}&last_event_id={seen[0]['id']}",
        headers=BEARER,
    )
    hello_b = await again.receive_json(timeout=5)
    assert hello_b["resumed"] is False
    refetch = await again.receive_json(timeout=5)
    assert refetch == {"type": "refetch", "reason": "queue_gone"}
    await again.close()
    # an id from the future (Redis lost its data) is no resume either
    assert await bus.since(10**9) is None
    await asyncio.sleep(0)


class PrivateRedis:
    """A Redis server of this test's own (the shared one is never restarted), on a free
    port, keeping nothing on disk: a restart loses every event, as a crash would."""

    def __init__(self, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder = folder
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        self._spawn()
        client = aioredis.Redis.from_url(self.url)
        for _ in range(100):
            with contextlib.suppress(Exception):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        await client.aclose()

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


async def test_redis_restarted_empty_pages_refetch_and_events_flow_again(
    tmp_path: Path, postgres_url: str
) -> None:
    """Redis dies and comes back with nothing: what was stored meanwhile is kept (the
    webhooks answered), the pages are told to refetch, and live events flow again."""
    redis = PrivateRedis(tmp_path)
    await redis.start()
    await reset_postgres(postgres_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for name in ("a", "b"):
                settings = make_settings(tmp_path / name, postgres_url, redis_url=redis.url)
                rt = build_runtime(settings, seed=1)
                app = create_app(settings, runtime=rt, start_jobs=False)
                client = await stack.enter_async_context(TestClient(TestServer(app)))
                client.rt = rt  # type: ignore[attr-defined]
                clients.append(client)
            a, b = clients
            await load_test_city(a.rt)
            page = await a.ws_connect("/ui/ws?topics=conversations", headers=BEARER)
            await page.receive_json(timeout=5)
            await sms(b, "+8613800000121", "停电了")
            assert await quiet(page), "events flow before the loss"

            redis.kill()
            await sms(b, "+8613800000122", "水管爆了")  # stored and answered all the same
            await asyncio.sleep(1.0)
            await redis.start()  # empty

            refetch = None
            deadline = asyncio.get_running_loop().time() + 15
            while refetch is None:
                assert asyncio.get_running_loop().time() < deadline, "no refetch after the loss"
                with contextlib.suppress(TimeoutError):
                    frame = await page.receive_json(timeout=1)
                    if frame["type"] == "refetch":
                        refetch = frame
            # the text answered while Redis was away is in the database for the refetch
            from sqlalchemy import select

            from callcenter.store.tables import messages

            async with a.rt.db.read() as conn:
                bodies = set((await conn.execute(select(messages.c.body))).scalars())
            assert "水管爆了" in bodies
            # and live again, across nodes
            await sms(b, "+8613800000123", "路灯不亮")
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                got = await quiet(page)
                if any(f["data"].get("body") == "路灯不亮" for f in got):
                    break
                assert asyncio.get_running_loop().time() < deadline, "no live event after"
            await page.close()
    finally:
        if redis.process is not None and redis.process.poll() is None:
            redis.kill()
