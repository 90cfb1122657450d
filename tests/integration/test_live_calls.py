"""Calls with agents on both databases: an accepted call is connected, a caller who hangs
up frees the agent, a voice call takes the agent's whole capacity, and the IVR's hold turns
into the bridge to the agent once one answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.calls import CallStart, end_call, enqueue_call, start_call
from callcenter.clock import ManualClock
from callcenter.queueing import agent_views
from callcenter.runtime import Runtime
from callcenter.store.tables import agent_states, calls, conversations, offers, queue_entries
from tests.helpers import actor


async def _one(rt: Runtime, table: Any, *where: Any) -> Any:
    async with rt.db.read() as conn:
        return (await conn.execute(select(table).where(*where))).one()


async def _queued_call(rt: Runtime, sid: str, phone: str) -> tuple[int, int]:
    info = await start_call(rt, CallStart("sip", sid, phone, "12345"))
    return info.call_id, await enqueue_call(rt, info.call_id)


async def _pending(rt: Runtime, agent_id: int | None) -> Any:
    return await _one(rt, offers, offers.c.agent_id == agent_id, offers.c.state == "pending")


async def test_accepting_an_offered_call_connects_it(rt: Runtime, clock: ManualClock) -> None:
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    call_id, conv = await _queued_call(rt, "c1", "+8613900000011")
    clock.advance(seconds=4)
    await acd.distribute(rt)
    offer = await _pending(rt, agent.id)
    await acd.accept_offer(rt, offer.id, actor=agent)
    accepted_at = clock.now()
    row = await _one(rt, calls, calls.c.id == call_id)
    assert row.agent_answered_at == accepted_at and row.outcome == "answered"
    assert row.queue_wait_s == 4
    clock.advance(minutes=2)
    await end_call(rt, call_id)  # the caller hangs up while talking to the agent
    row = await _one(rt, calls, calls.c.id == call_id)
    assert (row.outcome, row.talk_s) == ("answered", 120)
    conversation = await _one(rt, conversations, conversations.c.id == conv)
    assert conversation.state == "closed"
    entry = await _one(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert entry.ended_at == clock.now() and entry.outcome == "handled"
    async with rt.db.read() as conn:
        view = next(v for v in await agent_views(conn, rt, clock.now()) if v.agent_id == agent.id)
    assert view.active == 0  # the agent's slot is free again
    state = await _one(rt, agent_states, agent_states.c.user_id == agent.id)
    assert state.presence == "wrap_up"
    # the agent still gives the wrap-up code of the call the caller ended
    await acd.end_conversation(rt, conv, wrap_up_code="resolved", actor=agent)
    entry = await _one(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert entry.wrap_up_code == "resolved"


async def test_a_caller_who_hangs_up_while_an_offer_rings_ends_the_stay(
    rt: Runtime, clock: ManualClock
) -> None:
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    call_id, conv = await _queued_call(rt, "c2", "+8613900000012")
    await acd.distribute(rt)
    offer = await _pending(rt, agent.id)
    clock.advance(seconds=3)
    await end_call(rt, call_id)
    row = await _one(rt, calls, calls.c.id == call_id)
    assert row.outcome == "abandoned" and row.agent_answered_at is None
    assert (await _one(rt, offers, offers.c.id == offer.id)).state == "withdrawn"
    entry = await _one(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert entry.outcome == "abandoned"
    assert (await _one(rt, conversations, conversations.c.id == conv)).state == "closed"


async def test_a_voice_call_takes_the_agents_whole_capacity(
    rt: Runtime, clock: ManualClock
) -> None:
    from callcenter.actions.intake import Inbound, receive_message

    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    text = await receive_message(rt, Inbound("sms", "phone", "+8613900000013", "你好，咨询"))
    assert (await acd.distribute(rt)).offers
    await acd.accept_offer(rt, (await _pending(rt, agent.id)).id, actor=agent)
    # holding a text conversation (capacity 3): a call is not offered on top of it
    call_id, conv = await _queued_call(rt, "c3", "+8613900000014")
    assert (await acd.distribute(rt)).offers == []
    await acd.end_conversation(rt, text.conversation_id, wrap_up_code="resolved", actor=agent)
    clock.advance(seconds=31)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv, agent.id)]
    await acd.accept_offer(rt, (await _pending(rt, agent.id)).id, actor=agent)
    # on a call: no text conversation is offered either
    await receive_message(rt, Inbound("sms", "phone", "+8613900000015", "你好，咨询"))
    assert (await acd.distribute(rt)).offers == []
    row = await _one(rt, calls, calls.c.id == call_id)
    assert row.agent_answered_at == clock.now()


async def test_calls_go_only_to_agents_with_the_voice_skill_and_the_language(
    rt: Runtime, clock: ManualClock
) -> None:
    supervisor = await actor(rt, "supervisor")
    text_only, english = await actor(rt, "agent1"), await actor(rt, "agent2")
    await acd.configure_agent(rt, text_only.id, actor=supervisor, voice=False)
    await acd.configure_agent(rt, english.id, actor=supervisor, languages=["en"])
    await acd.set_presence(rt, "available", actor=text_only)
    await acd.set_presence(rt, "available", actor=english)
    _, conv = await _queued_call(rt, "c4", "+8613900000016")  # a zh-CN caller
    assert (await acd.distribute(rt)).offers == []
    await acd.configure_agent(rt, text_only.id, actor=supervisor, voice=True)
    clock.advance(seconds=1)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv, text_only.id)]


async def test_a_missed_call_offer_goes_to_the_next_agent_and_comes_back(
    rt: Runtime, clock: ManualClock
) -> None:
    a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
    await acd.set_presence(rt, "available", actor=a1)
    clock.advance(seconds=5)
    await acd.set_presence(rt, "available", actor=a2)
    _, conv = await _queued_call(rt, "c5", "+8613900000017")
    assert (await acd.distribute(rt)).offers[0].agent_id == a1.id
    clock.advance(seconds=31)
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv, a2.id)]
    await acd.decline_offer(rt, (await _pending(rt, a2.id)).id, actor=a2)
    assert (await acd.distribute(rt)).offers == []  # a1 was set away, a2 passed
    clock.advance(seconds=1)
    await acd.set_presence(rt, "available", actor=a1)  # back: offered the call again
    decided = await acd.distribute(rt)
    assert [(o.conversation_id, o.agent_id) for o in decided.offers] == [(conv, a1.id)]


async def test_the_softphones_api_shows_the_call_holds_it_and_hangs_up(
    api: Any, clock: ManualClock
) -> None:
    from tests.integration.test_api import auth

    rt: Runtime = api.rt
    info = await start_call(rt, CallStart("sip", "api-1", "+8613900000031", "12345"))
    await enqueue_call(rt, info.call_id)
    me = await api.post("/api/acd/presence", json={"presence": "available"}, headers=auth("agent1"))
    assert me.status == 200 and (await me.json())["voice"] is True
    await acd.distribute(rt)
    offer = (await (await api.get("/api/acd/me", headers=auth("agent1"))).json())["offers"][0]
    assert (
        await api.post(f"/api/acd/offers/{offer['id']}/accept", headers=auth("agent1"))
    ).status == 204
    conv = info.conversation_id
    panel = await (await api.get(f"/api/conversations/{conv}/call", headers=auth("agent1"))).json()
    assert panel["caller"] == "+8613900000031" and panel["path"] == [] and not panel["on_hold"]
    # another agent may not hold or hang up this call; media is off: no softphone (503)
    other = await api.post(
        f"/api/conversations/{conv}/call/hold", json={"on_hold": True}, headers=auth("agent2")
    )
    assert other.status == 403
    phone = await api.post(f"/api/conversations/{conv}/call/softphone", headers=auth("agent1"))
    assert phone.status == 503 and (await phone.json())["error"]["code"] == "media_unavailable"
    held = await api.post(
        f"/api/conversations/{conv}/call/hold", json={"on_hold": True}, headers=auth("agent1")
    )
    assert held.status == 204
    clock.advance(seconds=7)
    await api.post(
        f"/api/conversations/{conv}/call/hold", json={"on_hold": False}, headers=auth("agent1")
    )
    bad = await api.post(
        f"/api/conversations/{conv}/call/hold", json={"on_hold": "soon"}, headers=auth("agent1")
    )
    assert bad.status == 400
    hung = await api.post(f"/api/conversations/{conv}/call/hangup", headers=auth("agent1"))
    assert hung.status == 204
    row = await _one(rt, calls, calls.c.id == info.call_id)
    assert (row.outcome, row.hold_s, row.held_at) == ("completed", 7, None)


async def test_the_desk_rings_with_the_caller_and_shows_the_call(
    api: Any, clock: ManualClock
) -> None:
    from callcenter.actions.calls import record_call_progress
    from tests.helpers import signed_in_client

    rt: Runtime = api.rt
    info = await start_call(rt, CallStart("sip", "desk-1", "+8613900000041", "12345"))
    await record_call_progress(
        rt, info.call_id, dtmf="20", path=["language", "english", "main", "queue"]
    )
    await enqueue_call(rt, info.call_id)
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    client = await signed_in_client(api.server.app, "agent1")
    try:
        side = await (await client.get("/ui/desk/side")).text()
        assert 'data-kind="call"' in side and "+86139****0041" in side  # masked until taken
        offer = await _pending(rt, agent.id)
        await acd.accept_offer(rt, offer.id, actor=agent)
        page = await (await client.get(f"/ui/desk?c={info.conversation_id}")).text()
        assert 'id="call-card"' in page and 'data-mine="yes"' in page
        assert "language → english → main → queue" in page and ">20<" in page
        assert "/media/assets/sipphone.js" in page and 'id="call-hangup"' in page
        assert '<dd id="call-caller">+8613900000041</dd>' in page
        script = await client.get("/media/assets/sipphone.js")
        assert script.status == 200 and "janus.plugin.sip" in await script.text()
    finally:
        await client.close()


async def test_a_call_transferred_to_a_queue_waits_again_and_may_be_abandoned(
    rt: Runtime, clock: ManualClock
) -> None:
    a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
    await acd.set_presence(rt, "available", actor=a1)
    call_id, conv = await _queued_call(rt, "t1", "+8613900000051")
    await acd.distribute(rt)
    await acd.accept_offer(rt, (await _pending(rt, a1.id)).id, actor=a1)
    await acd.transfer_conversation(rt, conv, actor=a1, to_queue="general")
    row = await _one(rt, calls, calls.c.id == call_id)
    assert row.outcome == "queued" and row.agent_answered_at is not None
    await acd.set_presence(rt, "available", actor=a2)
    clock.advance(seconds=31)  # a1's wrap-up
    decided = await acd.distribute(rt)
    assert [o.conversation_id for o in decided.offers] == [conv]
    clock.advance(seconds=5)
    await end_call(rt, call_id)  # hangs up while waiting again
    row = await _one(rt, calls, calls.c.id == call_id)
    assert row.outcome == "abandoned"
    assert (await _one(rt, conversations, conversations.c.id == conv)).state == "closed"


async def test_a_caller_who_hangs_up_on_hold_ends_the_call_and_the_hold(
    rt: Runtime, clock: ManualClock
) -> None:
    from callcenter.actions.calls import hold_call

    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    call_id, conv = await _queued_call(rt, "h1", "+8613900000061")
    await acd.distribute(rt)
    await acd.accept_offer(rt, (await _pending(rt, agent.id)).id, actor=agent)
    clock.advance(seconds=10)
    await hold_call(rt, conv, on_hold=True, actor=agent)
    clock.advance(seconds=25)
    await end_call(rt, call_id)  # gave up on hold
    row = await _one(rt, calls, calls.c.id == call_id)
    assert (row.outcome, row.talk_s, row.hold_s, row.held_at) == ("answered", 35, 25, None)
    entry = await _one(rt, queue_entries, queue_entries.c.conversation_id == conv)
    assert entry.outcome == "handled" and entry.ended_at == clock.now()


async def test_the_wallboard_counts_calls_apart_from_text(rt: Runtime, clock: ManualClock) -> None:
    from callcenter.actions.calls import hold_call
    from callcenter.actions.intake import Inbound, receive_message
    from callcenter.reports import wallboard

    a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
    await receive_message(rt, Inbound("sms", "phone", "+8613900000071", "你好，咨询"))
    _, waiting = await _queued_call(rt, "w1", "+8613900000072")
    clock.advance(seconds=10)
    await acd.set_presence(rt, "available", actor=a1)
    await acd.distribute(rt)  # the older text first: a1 takes the text, not the call
    await acd.set_presence(rt, "available", actor=a2)
    await acd.distribute(rt)
    await acd.accept_offer(rt, (await _pending(rt, a2.id)).id, actor=a2)  # the call
    await hold_call(rt, waiting, on_hold=True, actor=a2)
    await _queued_call(rt, "w2", "+8613900000073")
    clock.advance(seconds=30)
    async with rt.db.read() as conn:
        board = await wallboard(conn, rt, "en")
    assert board["calls"] == {
        "waiting": 1,
        "talking": 0,
        "on_hold": 1,
        "longest_wait_seconds": 30,
        "service_level": 0.5,  # one of the two calls answered, within the target
    }
    assert board["waiting"] == 2  # text and calls together
