"""The ACD's write paths on both databases: any queued conversation is offered, accepted,
declined, timed out, overflowed, transferred, wrapped up, or left as a message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import TicketDraft
from callcenter.clock import ManualClock
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from callcenter.foreground import Foreground
from callcenter.runtime import Runtime
from callcenter.store.tables import agent_states, conversations, offers, queue_entries, tickets
from tests.helpers import actor


async def _queued(rt: Runtime, phone: str, text: str = "你好，我想咨询一下") -> int:
    result = await receive_message(rt, Inbound("sms", "phone", phone, text))
    assert result.conversation_state == "queued"
    return result.conversation_id


async def _rows(rt: Runtime, table: object, *where: object) -> list[object]:
    async with rt.db.read() as conn:
        return list((await conn.execute(select(table).where(*where))).all())  # type: ignore[arg-type]


async def test_offer_accept_reply_and_wrap_up(rt: Runtime, clock: ManualClock) -> None:
    a1 = await actor(rt, "agent1")
    conv = await _queued(rt, "+8613800000001")
    assert (await acd.distribute(rt)).offers == []  # nobody is available
    await acd.set_presence(rt, "available", actor=a1)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv, a1.id)]
    offer = (await _rows(rt, offers, offers.c.agent_id == a1.id))[0]
    a2 = await actor(rt, "agent2")
    with pytest.raises(NotFound):
        await acd.accept_offer(rt, offer.id, actor=a2)  # not theirs
    await acd.accept_offer(rt, offer.id, actor=a1)
    row = (await _rows(rt, conversations, conversations.c.id == conv))[0]
    assert (row.state, row.agent_id) == ("assigned", a1.id)
    with pytest.raises(Conflict):
        await acd.accept_offer(rt, offer.id, actor=a1)
    with pytest.raises(InvalidInput):
        await acd.end_conversation(rt, conv, wrap_up_code="nonsense", actor=a1)
    with pytest.raises(Forbidden):
        await acd.end_conversation(rt, conv, wrap_up_code="resolved", actor=a2)
    await acd.end_conversation(rt, conv, wrap_up_code="resolved", actor=a1)
    state = (await _rows(rt, agent_states, agent_states.c.user_id == a1.id))[0]
    assert state.presence == "wrap_up"
    assert state.wrap_up_until == clock.now() + timedelta(seconds=30)
    entry = (await _rows(rt, queue_entries, queue_entries.c.conversation_id == conv))[0]
    assert (entry.outcome, entry.wrap_up_code, entry.agent_id) == ("handled", "resolved", a1.id)
    # a new conversation waits until the wrap-up is over
    conv2 = await _queued(rt, "+8613800000002")
    assert (await acd.distribute(rt)).offers == []
    clock.advance(seconds=30)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv2, a1.id)]


async def test_decline_and_timeout_go_to_the_next_agent(rt: Runtime, clock: ManualClock) -> None:
    a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
    await acd.set_presence(rt, "available", actor=a1)
    clock.advance(seconds=5)
    await acd.set_presence(rt, "available", actor=a2)
    conv = await _queued(rt, "+8613800000003")
    first = (await acd.distribute(rt)).offers[0]
    assert first.agent_id == a1.id  # idle longest
    offer = (await _rows(rt, offers, offers.c.state == "pending"))[0]
    await acd.decline_offer(rt, offer.id, actor=a1)
    second = (await acd.distribute(rt)).offers[0]
    assert (second.conversation_id, second.agent_id) == (conv, a2.id)
    clock.advance(seconds=31)
    third = await acd.distribute(rt)
    assert [e.agent_id for e in third.expired] == [a2.id]
    assert third.offers == []  # both passed; it waits for someone else or the overflow
    state = (await _rows(rt, agent_states, agent_states.c.user_id == a2.id))[0]
    assert state.presence == "away"  # a missed offer means the agent is not at the desk


async def test_overflow_then_transfer_and_citizens_leaving(rt: Runtime, clock: ManualClock) -> None:
    a1, a3 = await actor(rt, "agent1"), await actor(rt, "agent3")
    conv = await _queued(rt, "+8613800000004")
    await acd.distribute(rt)
    clock.advance(seconds=301)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.to_queue) for o in decided.overflows] == [(conv, "overflow")]
    row = (await _rows(rt, conversations, conversations.c.id == conv))[0]
    assert row.queue == "overflow"
    await acd.set_presence(rt, "available", actor=a1)
    offer_row = await _rows(rt, offers, offers.c.conversation_id == conv)
    assert offer_row == []
    await acd.distribute(rt)
    offer = (await _rows(rt, offers, offers.c.conversation_id == conv))[0]
    assert offer.queue == "overflow"
    await acd.accept_offer(rt, offer.id, actor=a1)
    with pytest.raises(Conflict):  # agent3 is away
        await acd.transfer_conversation(rt, conv, to_agent_id=a3.id, actor=a1)
    await acd.set_presence(rt, "busy", actor=a3)
    await acd.transfer_conversation(rt, conv, to_agent_id=a3.id, actor=a1)
    row = (await _rows(rt, conversations, conversations.c.id == conv))[0]
    assert (row.state, row.agent_id) == ("assigned", a3.id)
    await acd.transfer_conversation(rt, conv, to_queue="general", actor=a3)
    row = (await _rows(rt, conversations, conversations.c.id == conv))[0]
    assert (row.state, row.queue, row.agent_id) == ("queued", "general", None)
    entries = await _rows(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert [e.outcome for e in entries] == ["overflowed", "transferred", "transferred", None]
    # the citizen gives up waiting
    await acd.citizen_left(rt, conv)
    entries = await _rows(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert entries[-1].outcome == "abandoned"
    # another one leaves a message: it becomes a dispatched ticket
    conv2 = await _queued(rt, "+8613800000005", "你好")
    await acd.distribute(rt)
    ticket = await acd.leave_message(rt, conv2, "港湾路的路灯坏了一个星期")
    assert ticket["state"] == "dispatched" and ticket["conversation_id"] == conv2
    row = (await _rows(rt, conversations, conversations.c.id == conv2))[0]
    assert (row.state, row.ticket_id) == ("closed", ticket["id"])


async def test_a_ticket_or_a_direct_answer_from_a_conversation(rt: Runtime) -> None:
    a1 = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=a1)
    conv = await _queued(rt, "+8613800000006")
    await acd.distribute(rt)
    offer = (await _rows(rt, offers, offers.c.state == "pending"))[0]
    await acd.accept_offer(rt, offer.id, actor=a1)
    ticket = await acd.ticket_from_conversation(
        rt, conv, TicketDraft(description="湖滨路路灯不亮", category="street_light"), actor=a1
    )
    assert ticket["state"] == "dispatched" and ticket["origin_channel"] == "sms"
    answered = await acd.answer_directly(
        rt, conv, description="咨询社保转移", answer="请携带身份证到社保窗口办理。", actor=a1
    )
    assert (answered["state"], answered["closure"], answered["type"]) == (
        "closed",
        "direct_answer",
        "inquiry",
    )
    found = await _rows(rt, tickets, tickets.c.conversation_id == conv)
    assert len(found) == 2


async def test_the_driver_waits_for_a_gap_in_the_webhooks(rt: Runtime) -> None:
    rt.foreground = Foreground(quiet=0.001, max_wait=30)
    conv = await _queued(rt, "+8613800000031")
    a1 = await actor(rt, "agent1")
    driver = acd.AcdDriver(rt)
    with rt.foreground.request():  # a webhook in hand when the ACD would run
        await driver.start()
        await asyncio.sleep(0.05)
        assert driver.runs == 0
        await acd.set_presence(rt, "available", actor=a1)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not await _rows(rt, offers, offers.c.agent_id == a1.id):
            assert asyncio.get_running_loop().time() < deadline, driver.runs
            await asyncio.sleep(0.01)
        assert driver.runs >= 1
        entry = (await _rows(rt, queue_entries, queue_entries.c.conversation_id == conv))[0]
        assert entry.agent_id is None  # offered, not yet accepted
    finally:
        await driver.stop()


async def test_with_several_nodes_one_decides_and_another_takes_over(
    rt: Runtime, redis_url: str
) -> None:
    """Two ACD drivers (two nodes) on one database and one Redis lease: one offers, the
    other waits; when the first dies without a word, the second takes over."""
    from callcenter.background import Loop
    from callcenter.lease import RedisLease
    from tests.conftest import redis_names

    key = f"{redis_names()}:lease:acd"
    first, second = (acd.AcdDriver(rt, lease=RedisLease(redis_url, key, ttl=1.0)) for _ in range(2))
    for driver in (first, second):
        driver.LEASE_SECONDS = 1.0  # type: ignore[misc]
    await first.start()
    await asyncio.sleep(0.2)
    await second.start()
    try:
        a1 = await actor(rt, "agent1")
        await acd.set_presence(rt, "available", actor=a1)
        await _queued(rt, "+8613800000041")
        deadline = asyncio.get_running_loop().time() + 10
        while not await _rows(rt, offers, offers.c.agent_id == a1.id):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert first.decided >= 1 and second.decided == 0
        await Loop.stop(first)  # dies: stops renewing, never releases
        before = second.decided
        deadline = asyncio.get_running_loop().time() + 10
        while second.decided == before:
            assert asyncio.get_running_loop().time() < deadline, "nobody took the lease over"
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
