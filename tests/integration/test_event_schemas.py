"""Every live event the actions publish matches its typed schema, and each action
publishes the events the pages rely on."""

from __future__ import annotations

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.messages import send_reply
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.bus import Event
from callcenter.bus.schemas import SCHEMAS
from callcenter.clock import ManualClock
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from tests.helpers import actor


def drain(subscription: object) -> list[Event]:
    queue = subscription.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_events_match_their_schemas(rt: Runtime, clock: ManualClock) -> None:
    sub = rt.bus.subscribe()
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    assert [e.type for e in drain(sub)] == ["agent.changed"]

    result = await receive_message(rt, Inbound("sms", "phone", "+8613800000077", "你好"))
    assert [e.type for e in drain(sub)] == [
        "message.created",
        "conversation.changed",
        "message.created",  # the automatic "please wait"
    ]
    await acd.distribute(rt)
    offers = drain(sub)
    assert [e.type for e in offers] == ["offer.changed"]
    assert offers[0].scope["agent_id"] == agent.id
    await acd.accept_offer(rt, offers[0].data["offer_id"], actor=agent)
    assert [e.type for e in drain(sub)] == [
        "offer.changed",
        "conversation.changed",
        "agent.changed",
    ]
    await send_reply(rt, result.conversation_id, "您好", actor=agent)
    reply = drain(sub)
    assert reply[0].data["agent_id"] == agent.id and reply[0].data["body"] == "您好"
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯坏了", category="street_light"), actor=agent
    )
    clock.advance(minutes=1)
    await take_step(
        rt,
        ticket["id"],
        Step.DISPATCH,
        actor=agent,
        department_id=ticket["routing"]["department_id"] or 3,
    )
    await acd.end_conversation(rt, result.conversation_id, wrap_up_code="resolved", actor=agent)
    everything = reply + drain(sub)
    await acd.set_presence(rt, "away", actor=agent)
    everything += drain(sub)
    seen = set()
    for event in everything + offers:
        SCHEMAS[event.type].model_validate(event.data)
        seen.add(event.type)
    assert seen >= {"ticket.changed", "message.created", "conversation.changed", "agent.changed"}
    sub.close()
