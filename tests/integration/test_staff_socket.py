"""The staff websocket's event queue: a reconnect that names its queue and the last event
it handled gets exactly what followed; a queue that is gone asks for a refetch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from callcenter.actions import acd
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from tests.conftest import load_test_city, make_settings
from tests.helpers import actor

BEARER = {"Authorization": "Bearer demo-supervisor"}


@pytest_asyncio.fixture
async def client(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, sqlite_url)
    rt = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
        await load_test_city(rt)
        c.rt = rt  # type: ignore[attr-defined]
        yield c


async def presence(client: Any, user: str, value: str) -> None:
    await acd.set_presence(client.rt, value, actor=await actor(client.rt, user))


async def next_event(ws: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == "event":
            return frame  # type: ignore[no-any-return]


async def test_resume_gets_exactly_what_was_missed(client: Any) -> None:
    ws = await client.ws_connect("/ui/ws?topics=agents", headers=BEARER)
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["resumed"] is False
    await presence(client, "agent1", "available")
    first = await next_event(ws)
    assert first["event"] == "agent.changed"
    await ws.close()

    # while the tab is away
    await presence(client, "agent2", "available")
    await presence(client, "agent3", "busy")

    again = await client.ws_connect(
        f"/ui/ws?queue_id={hello['queue_id']}&last_event_id={first['id']}", headers=BEARER
    )
    hello2 = await again.receive_json(timeout=5)
    assert hello2["resumed"] is True and hello2["queue_id"] == hello["queue_id"]
    missed = [await next_event(again), await next_event(again)]
    assert [e["data"]["presence"] for e in missed] == ["available", "busy"]
    assert missed[0]["id"] > first["id"] and missed[1]["id"] > missed[0]["id"]
    await again.close()

    # a tab that lost events it had not confirmed gets them again, once
    third = await client.ws_connect(
        f"/ui/ws?queue_id={hello['queue_id']}&last_event_id={missed[0]['id']}", headers=BEARER
    )
    hello3 = await third.receive_json(timeout=5)
    assert hello3["resumed"] is True, hello3
    frame = await third.receive_json(timeout=5)
    assert frame["type"] == "event" and frame["id"] == missed[1]["id"], frame
    await third.close()


async def test_a_queue_that_is_gone_asks_for_a_refetch(client: Any) -> None:
    ws = await client.ws_connect("/ui/ws?queue_id=nosuchqueue&last_event_id=5", headers=BEARER)
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["resumed"] is False
    assert (await ws.receive_json(timeout=5)) == {"type": "refetch", "reason": "queue_gone"}
    await ws.close()
    # someone else's queue is not yours
    mine = await client.ws_connect("/ui/ws?topics=tickets", headers=BEARER)
    queue_id = (await mine.receive_json(timeout=5))["queue_id"]
    await mine.close()
    other = await client.ws_connect(
        f"/ui/ws?queue_id={queue_id}&last_event_id=0",
        headers={"Authorization": "Bearer demo-admin"},
    )
    assert (await other.receive_json(timeout=5))["resumed"] is False
    assert (await other.receive_json(timeout=5))["type"] == "refetch"
    await other.close()
