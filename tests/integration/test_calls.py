"""Call actions on both databases: idempotent starts, queue places, messages, the end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from callcenter.actions.calls import (
    CallStart,
    end_call,
    enqueue_call,
    leave_voice_message,
    record_call_progress,
    request_callback,
    start_call,
    ticket_status,
)
from callcenter.clock import ManualClock
from callcenter.queueing import queue_spot
from callcenter.runtime import Runtime
from callcenter.store.tables import audit_events, calls, citizens, conversations, messages


async def counts(rt: Runtime) -> list[int]:
    async with rt.db.read() as conn:
        return [
            int(await conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in (calls, conversations, citizens, audit_events)
        ]


async def test_a_repeated_invite_is_one_call_and_numbers_are_one_citizen(rt: Runtime) -> None:
    first = await start_call(rt, CallStart("sip", "abc@host", "13800000000", "12345"))
    before = await counts(rt)
    again = await start_call(rt, CallStart("sip", "abc@host", "13800000000", "12345"))
    assert again.duplicate and again.call_id == first.call_id and await counts(rt) == before
    other = await start_call(rt, CallStart("twilio_voice", "CA1", "+86 138 0000 0000"))
    assert other.citizen_id == first.citizen_id and other.known_caller
    assert not first.known_caller and first.caller == "+8613800000000" and first.mobile
    anonymous = await start_call(rt, CallStart("sip", "xyz@host", "anonymous"))
    assert anonymous.caller == "anonymous" and not anonymous.mobile


async def test_queue_places_and_a_callback_that_keeps_its_place(
    rt: Runtime, clock: ManualClock
) -> None:
    a = await start_call(rt, CallStart("sip", "a", "+8613900000001"))
    b = await start_call(rt, CallStart("sip", "b", "+8613900000002"))
    await record_call_progress(rt, a.call_id, transcript="路灯坏了", confidence=0.8)
    conv_a = await enqueue_call(rt, a.call_id)
    clock.advance(minutes=1)
    conv_b = await enqueue_call(rt, b.call_id)
    spot_a, spot_b = await queue_spot(rt, conv_a), await queue_spot(rt, conv_b)
    assert spot_a is not None and spot_b is not None
    assert (spot_a.position, spot_b.position) == (1, 2)
    assert spot_b.expected_wait_s == 2 * rt.settings.voice.average_handling_seconds
    task = await request_callback(rt, a.call_id, "13900000009")
    assert await request_callback(rt, a.call_id, "13900000009") == task  # no second task
    spot_task = await queue_spot(rt, task)
    assert spot_task is not None and spot_task.position == 1
    assert await queue_spot(rt, conv_a) is None  # the call itself is closed
    async with rt.db.read() as conn:
        shown = (
            await conn.execute(select(messages).where(messages.c.conversation_id == conv_a))
        ).one()
        task_row = (
            await conn.execute(select(conversations).where(conversations.c.id == task))
        ).one()
    assert shown.kind == "transcript" and shown.body == "路灯坏了"
    assert task_row.kind == "callback" and task_row.address == "+8613900000009"
    clock.advance(minutes=2)
    await end_call(rt, b.call_id)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(calls).where(calls.c.id == b.call_id))).one()
        conv = (await conn.execute(select(conversations).where(conversations.c.id == conv_b))).one()
    assert row.outcome == "abandoned" and row.queue_wait_s == 120 and conv.state == "closed"


async def test_a_voice_message_waits_for_an_agent(rt: Runtime) -> None:
    call = await start_call(rt, CallStart("sip", "vm", "+8613900000005"))
    conv = await leave_voice_message(
        rt, call.call_id, recording_path="/tmp/x.wav", seconds=4.5, transcript=None
    )
    await end_call(rt, call.call_id)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(calls).where(calls.c.id == call.call_id))).one()
        message = (await conn.execute(select(messages))).one()
        conversation = (
            await conn.execute(select(conversations).where(conversations.c.id == conv))
        ).one()
    assert row.outcome == "voicemail" and row.recording_seconds == 4.5
    assert message.kind == "voicemail" and message.meta["recording"] == "/tmp/x.wav"
    assert message.body == "【语音留言，无文字记录】"
    assert conversation.state == "queued"  # a message is not abandoned when the caller hangs up


async def test_ticket_status_by_number(rt: Runtime) -> None:
    from callcenter.actions.tickets import TicketDraft, create_ticket
    from callcenter.domain.workflow import SYSTEM

    ticket = await create_ticket(
        rt, TicketDraft("井盖丢了", category="road_damage"), actor=SYSTEM, dispatch=True
    )
    found = await ticket_status(rt, ticket["number"].replace("-", ""))
    assert found is not None and found.state == "dispatched"
    assert found.department_en == "Minghu Municipal Facilities Office"
    assert found.due_at == ticket["due_at"] - timedelta(0)
    assert await ticket_status(rt, "123") is None
    assert await ticket_status(rt, "2026112799999") is None
