"""The web chat channel over real websockets: stored before acknowledged, resumed after a
reconnect with nothing lost or doubled, queue position, leaving a message; the status page
answers by number and last four digits, and stops guessers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.actions import acd
from callcenter.actions.messages import send_reply
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.store.tables import messages
from tests.conftest import load_test_city, make_settings
from tests.helpers import actor


@pytest_asyncio.fixture
async def chat(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        channels=["channels.simulated:SimulatedSms", "channels.webchat:WebChat"],
    )
    rt = build_runtime(settings, clock=clock, seed=1)
    app = create_app(settings, runtime=rt, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        await load_test_city(rt)
        client.rt = rt  # type: ignore[attr-defined]
        yield client


async def frames_until(ws: Any, kind: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        frame = await ws.receive_json(timeout=5)
        seen.append(frame)
        if frame["type"] == kind:
            return seen


async def waiting_chats(chat: Any, count: int, text: str) -> list[str]:
    """``count`` citizens who each wrote ``text`` and closed the widget; their sessions."""
    sessions = []
    for n in range(count):
        ws = await chat.ws_connect("/chat/ws")
        await ws.send_json({"type": "hello", "session": None})
        sessions.append((await frames_until(ws, "welcome"))[-1]["session"])
        await ws.send_json({"type": "message", "id": f"w{n}", "text": text})
        await frames_until(ws, "ack")
        await ws.close()
    return sessions


async def test_resume_without_loss_or_duplicates(chat: Any) -> None:
    ws = await chat.ws_connect("/chat/ws")
    await ws.send_json({"type": "hello", "session": None, "after": 0, "locale": "zh-CN"})
    welcome = (await frames_until(ws, "welcome"))[-1]
    session = welcome["session"]
    await ws.send_json(
        {"type": "message", "id": "m1", "text": "你好 <b>bold</b>", "phone": "13812345678"}
    )
    acks = [f for f in await frames_until(ws, "ack") if f["type"] == "ack"]
    first = acks[0]["message_id"]
    await ws.close()

    # an agent writes while the citizen is away
    rt = chat.rt
    await send_reply(
        rt, acks[0]["conversation_id"], "请问您在哪个小区？", actor=await actor(rt, "agent1")
    )

    # the widget comes back, says what it saw last, and resends the message it was not
    # sure about: it is stored once, and the agent's reply arrives once
    again = await chat.ws_connect("/chat/ws")
    await again.send_json({"type": "hello", "session": session, "after": first, "locale": "zh-CN"})
    welcome = (await frames_until(again, "welcome"))[-1]
    texts = [m["body"] for m in welcome["messages"] if m["kind"] == "text"]
    assert texts == ["请问您在哪个小区？"]  # besides the automatic "please wait"
    await again.send_json({"type": "message", "id": "m1", "text": "你好 <b>bold</b>"})
    ack = next(f for f in await frames_until(again, "ack") if f["type"] == "ack")
    assert ack["duplicate"] is True and ack["message_id"] == first
    async with rt.db.read() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(messages).where(messages.c.direction == "in")
        )
    assert count == 1
    # everything from the start, as a new tab would see it
    fresh = await chat.ws_connect("/chat/ws")
    await fresh.send_json({"type": "hello", "session": session, "after": 0})
    welcome = (await frames_until(fresh, "welcome"))[-1]
    texts = [m["body"] for m in welcome["messages"] if m["kind"] == "text"]
    assert texts == ["你好 <b>bold</b>", "请问您在哪个小区？"]
    for socket in (again, fresh):
        await socket.close()


async def test_queue_position_and_leaving_a_message(chat: Any) -> None:
    sessions = await waiting_chats(chat, 2, "你好，在吗")
    await acd.distribute(chat.rt)  # the queue takes them in; no agent is available
    second = await chat.ws_connect("/chat/ws")
    await second.send_json({"type": "hello", "session": sessions[1]})
    state = next(f for f in await frames_until(second, "state") if f["type"] == "state")
    assert (state["state"], state["position"], state["waiting"]) == ("queued", 2, 2)
    sockets = [second]
    await second.send_json({"type": "leave_message", "id": "l1", "text": "湖滨路路灯坏了"})
    ticket = next(f for f in await frames_until(second, "ticket") if f["type"] == "ticket")
    assert ticket["number"]
    for ws in sockets:
        await ws.close()


async def test_the_place_is_known_before_the_acd_runs(chat: Any) -> None:
    """A waiting chat is never told "number 1" just because the ACD has not run yet."""
    sessions = await waiting_chats(chat, 2, "你好，有人吗")
    second = await chat.ws_connect("/chat/ws")
    await second.send_json({"type": "hello", "session": sessions[1]})
    state = next(f for f in await frames_until(second, "state") if f["type"] == "state")
    assert (state["state"], state["position"], state["waiting"]) == ("queued", 2, 2)
    await second.close()


async def test_status_lookup_and_rate_limit(chat: Any) -> None:
    ws = await chat.ws_connect("/chat/ws")
    await ws.send_json({"type": "hello", "session": None})
    await frames_until(ws, "welcome")
    await ws.send_json({"type": "message", "id": "a", "text": "你好", "phone": "13812345678"})
    await frames_until(ws, "ack")
    await ws.send_json({"type": "leave_message", "id": "b", "text": "港湾路垃圾没人清运"})
    number = next(f for f in await frames_until(ws, "ticket") if f["type"] == "ticket")["number"]
    await ws.close()
    found = await chat.post("/status/lookup?lang=en", json={"number": number, "last4": "5678"})
    assert found.status == 200
    body = await found.json()
    assert body["number"] == number and body["state"] == "dispatched"
    assert body["department"]
    for _ in range(5):  # wrong digits: the same answer as an unknown number, then a lock
        wrong = await chat.post("/status/lookup", json={"number": number, "last4": "0000"})
        assert wrong.status == 404
    locked = await chat.post("/status/lookup", json={"number": number, "last4": "5678"})
    assert locked.status == 429
    unknown = await chat.post("/status/lookup", json={"number": "20991231-0001", "last4": "5678"})
    assert unknown.status == 404
    bad = await chat.post("/status/lookup", json={"number": "<script>", "last4": "5678"})
    assert bad.status == 400
    # the short link in SMS notices leads to the page with the number filled in
    short = await chat.get(f"/s/{number}", allow_redirects=False)
    assert short.status == 302 and short.headers["Location"] == f"/status?ticket={number}"
    junk = await chat.get("/s/nonsense", allow_redirects=False)
    assert junk.headers["Location"] == "/status"


async def test_status_lookups_from_one_address_are_limited_across_tickets(chat: Any) -> None:
    """Guessing many ticket numbers, a few digits each, is limited by the address too (the
    per-ticket lock alone would let one address walk the numbers); the form page and the
    JSON lookup share the count, and the lock says when it ends."""
    from channels.webchat.status import LOOKUPS_PER_IP

    answers = []
    for n in range(LOOKUPS_PER_IP):
        guess = {"number": f"20261127-{n:04d}", "last4": "1234"}
        if n % 2:
            answers.append((await chat.post("/status/lookup", json=guess)).status)
        else:
            answers.append((await chat.post("/status", data=guess)).status)
    assert answers == [404] * LOOKUPS_PER_IP
    locked = await chat.post("/status/lookup", json={"number": "20261127-9999", "last4": "1234"})
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    assert (await locked.json())["error"]["code"] == "rate_limited"
    page = await chat.post("/status", data={"number": "20261127-9998", "last4": "1234"})
    assert page.status == 429 and int(page.headers["Retry-After"]) > 0


async def test_a_chat_sending_faster_than_a_person_types_is_told_and_nothing_more_is_taken(
    chat: Any,
) -> None:
    from channels.webchat.sessions import BURST

    ws = await chat.ws_connect("/chat/ws")
    await ws.send_json({"type": "hello", "session": None, "locale": "en"})
    await frames_until(ws, "welcome")
    for n in range(BURST + 1):
        await ws.send_json({"type": "message", "id": f"f{n}", "text": f"message {n}"})
    answers: dict[str, str] = {}
    while len(answers) < BURST + 1:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] in ("ack", "error"):
            answers[frame["id"]] = frame["type"] if frame["type"] == "ack" else frame["code"]
    await ws.close()
    assert [answers[f"f{n}"] for n in range(BURST)] == ["ack"] * BURST
    assert answers[f"f{BURST}"] == "too_many_messages"
    async with chat.rt.db.read() as conn:
        taken = await conn.scalar(
            select(func.count())
            .select_from(messages)
            .where(messages.c.channel == "webchat", messages.c.direction == "in")
        )
    assert taken == BURST
