"""Who waits is one record: the place in the queue is the same for the IVR, the web chat,
Telegram (see test_telegram), the API and the ACD, from the moment a contact waits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.calls import CallStart, end_call, enqueue_call, request_callback, start_call
from callcenter.actions.intake import Inbound, receive_message
from callcenter.clock import ManualClock
from callcenter.queueing import queue_spot
from callcenter.runtime import Runtime
from callcenter.store.tables import offers, queue_entries
from tests.helpers import actor


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{user}"}


async def _stays(rt: Runtime, conversation_id: int) -> list[Any]:
    async with rt.db.read() as conn:
        return list(
            (
                await conn.execute(
                    select(queue_entries)
                    .where(queue_entries.c.conversation_id == conversation_id)
                    .order_by(queue_entries.c.id)
                )
            ).all()
        )


async def test_a_contact_has_its_place_the_moment_it_waits(api: Any, clock: ManualClock) -> None:
    """No ACD run in between: the API, the IVR's reading and the stays agree at once."""
    rt: Runtime = api.rt
    ids = []
    for n in range(3):
        result = await receive_message(rt, Inbound("sms", "phone", f"+861380000010{n}", "你好"))
        assert result.conversation_state == "queued"
        ids.append(result.conversation_id)
        clock.advance(seconds=10)
    response = await api.get("/api/acd/queue", headers=auth("supervisor"))
    listed = await response.json()
    assert [(w["conversation_id"], w["position"]) for w in listed] == [
        (ids[0], 1),
        (ids[1], 2),
        (ids[2], 3),
    ]
    for conversation_id, item in zip(ids, listed, strict=True):
        spot = await queue_spot(rt, conversation_id)
        assert spot is not None and (spot.position, spot.waiting) == (item["position"], 3)
        assert [s.outcome for s in await _stays(rt, conversation_id)] == [None]
    # the first is taken by an agent: everyone behind moves up, for every reader
    a1 = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=a1)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer = (await conn.execute(select(offers).where(offers.c.conversation_id == ids[0]))).one()
    await acd.accept_offer(rt, offer.id, actor=a1)
    assert await queue_spot(rt, ids[0]) is None
    spot = await queue_spot(rt, ids[2])
    assert spot is not None and (spot.position, spot.waiting) == (2, 2)
    listed = await (await api.get("/api/acd/queue", headers=auth("supervisor"))).json()
    assert [(w["conversation_id"], w["position"]) for w in listed] == [(ids[1], 1), (ids[2], 2)]


async def test_a_caller_who_hung_up_while_waiting_is_not_offered(rt: Runtime) -> None:
    call = await start_call(rt, CallStart("sip", "hung-up@host", "+8613900000011"))
    conversation = await enqueue_call(rt, call.call_id)
    await acd.distribute(rt)  # nobody is available: it waits
    await end_call(rt, call.call_id)
    [stay] = await _stays(rt, conversation)
    assert stay.outcome == "abandoned" and stay.ended_at is not None
    a1 = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=a1)
    assert (await acd.distribute(rt)).offers == []
    assert await queue_spot(rt, conversation) is None


async def test_a_callback_takes_the_calls_place_and_the_call_stops_waiting(
    rt: Runtime, clock: ManualClock
) -> None:
    first = await start_call(rt, CallStart("sip", "first@host", "+8613900000012"))
    second = await start_call(rt, CallStart("sip", "second@host", "+8613900000013"))
    conv_first = await enqueue_call(rt, first.call_id)
    clock.advance(minutes=1)
    conv_second = await enqueue_call(rt, second.call_id)
    await acd.distribute(rt)
    task = await request_callback(rt, first.call_id, "13900000012")
    assert [s.outcome for s in await _stays(rt, conv_first)] == ["callback"]
    spot_task, spot_second = await queue_spot(rt, task), await queue_spot(rt, conv_second)
    assert spot_task is not None and spot_second is not None
    assert (spot_task.position, spot_second.position, spot_second.waiting) == (1, 2, 2)
    a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
    await acd.set_presence(rt, "available", actor=a1)
    await acd.set_presence(rt, "available", actor=a2)
    offered = [o.conversation_id for o in (await acd.distribute(rt)).offers]
    # the callback in the call's place; not the call; the live call to the other agent
    # (a call takes an agent's whole capacity: not to the one offered the callback)
    assert offered == [task, conv_second]
