"""Actions against the real databases (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from callcenter.actions import audit
from callcenter.actions.audit import verify_chain
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.messages import send_reply
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.config import Limit
from callcenter.domain.errors import Forbidden, IllegalStep, InvalidInput, NotFound, VersionConflict
from callcenter.domain.workflow import SYSTEM, Step
from callcenter.runtime import Runtime
from callcenter.store.tables import (
    audit_events,
    citizen_identities,
    citizens,
    conversations,
    jobs,
    messages,
    tickets,
)
from tests.helpers import actor, cell_point, counted_commits, dept_id, settle


async def count(rt: Runtime, table: object) -> int:
    async with rt.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def sms(sender: str, text: str, provider_id: str | None = None) -> Inbound:
    return Inbound("sms", "phone", sender, text, provider_id=provider_id, service_address="12345")


async def test_an_sms_that_names_a_known_problem_becomes_a_routed_ticket(rt: Runtime) -> None:
    result = await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM1"))
    assert not result.duplicate
    ticket = result.ticket
    assert ticket is not None
    assert ticket["number"] == "20261127-0001"
    assert ticket["state"] == "dispatched"
    assert ticket["department_id"] == dept_id(rt, "MH-MUNICIPAL")
    assert ticket["routing"]["rule"] == "citywide"
    assert ticket["routing"]["classification"]["category"] == "street_light"
    assert ticket["origin_channel"] == "sms" and ticket["citizen_id"] == result.citizen_id
    assert ticket["due_at"] > ticket["sign_due_at"] > ticket["created_at"]
    assert result.conversation_state == "closed"
    async with rt.db.read() as conn:
        out = (await conn.execute(select(messages).where(messages.c.direction == "out"))).one()
        job = (await conn.execute(select(jobs).where(jobs.c.kind == "message.deliver"))).one()
        reminders = (
            await conn.execute(
                select(jobs.c.payload, jobs.c.run_at).where(jobs.c.kind == "ticket.remind")
            )
        ).all()
        citizen = (await conn.execute(select(citizens))).one()
    assert "20261127-0001" in out.body and "明湖市市政设施管理处" in out.body
    assert out.status == "queued" and job.kind == "message.deliver" and job.state == "pending"
    assert citizen.locale == "zh-CN" and citizen.phone == "+8613800000000"
    assert sorted(r.payload["stage"] for r in reminders) == ["due_soon", "overdue", "sign"]
    assert {r.run_at for r in reminders if r.payload["stage"] == "sign"} == {ticket["sign_due_at"]}


async def test_the_reply_is_delivered_through_the_outbox_exactly_once(rt: Runtime) -> None:
    await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM1"))
    assert rt.runner is not None
    assert await rt.runner.drain() == 1
    assert await rt.runner.drain() == 0
    async with rt.db.read() as conn:
        out = (await conn.execute(select(messages).where(messages.c.direction == "out"))).one()
        job = (await conn.execute(select(jobs).where(jobs.c.kind == "message.deliver"))).one()
    assert out.status == "sent" and out.provider_id.startswith("SM") and out.sent_at is not None
    assert job.state == "done" and job.attempts == 1
    sent = rt.channels.get("sms").log.sent()  # type: ignore[union-attr]
    assert [(s["to"], s["key"]) for s in sent] == [("+8613800000000", f"msg-{out.id}")]


async def test_a_delivery_records_its_outcome_and_its_job_in_one_transaction(
    rt: Runtime,
) -> None:
    await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM1"))
    assert rt.runner is not None
    with counted_commits(rt) as commits:
        assert await rt.runner.run_due() == 1
    assert commits[0] == 2  # the claim; then the message sent and the job done together
    async with rt.db.read() as conn:
        out = (await conn.execute(select(messages).where(messages.c.direction == "out"))).one()
        job = (await conn.execute(select(jobs).where(jobs.c.kind == "message.deliver"))).one()
    assert out.status == "sent" and job.state == "done" and job.locked_by is None
    assert job.result == {"provider_id": out.provider_id, "status": "sent"}
    assert job.finished_at is not None and job.last_error is None


async def test_a_conversations_messages_leave_in_the_order_they_were_written(
    rt: Runtime,
) -> None:
    result = await receive_message(rt, sms("+8613800000001", "你好，我想问个问题", "SM1"))
    agent = await actor(rt, "agent1")
    await send_reply(rt, result.conversation_id, "请问是哪个小区？", actor=agent)
    async with rt.db.read() as conn:
        queued = (
            await conn.execute(
                select(jobs.c.id, jobs.c.payload)
                .where(jobs.c.kind == "message.deliver")
                .order_by(jobs.c.id)
            )
        ).all()
    assert len(queued) == 2  # "we will get back to you", then the agent's question
    assert rt.runner is not None
    [later] = await rt.runner.claim(1, ids=[queued[1].id])
    assert await rt.runner.execute(later) == "pending"  # the earlier one is due: it waits
    async with rt.db.read() as conn:
        waiting = (await conn.execute(select(jobs).where(jobs.c.id == later.id))).one()
    assert waiting.attempts == 0 and "earlier message" in waiting.last_error
    assert waiting.run_at > rt.clock.now()
    await settle(rt, rt.clock)
    sent = rt.channels.get("sms").log.sent()  # type: ignore[union-attr]
    assert [s["key"] for s in sent] == [f"msg-{q.payload['message_id']}" for q in queued]


async def test_unrecognised_text_waits_for_an_agent_and_later_texts_join_it(rt: Runtime) -> None:
    first = await receive_message(rt, sms("+8613800000001", "你好，我想问个问题", "SM1"))
    assert (
        first.ticket is None and first.conversation_state == "queued" and first.queue == "general"
    )
    second = await receive_message(rt, sms("+8613800000001", "路灯坏了", "SM2"))
    assert second.conversation_id == first.conversation_id
    assert second.ticket is None  # an agent is already on it: no bot ticket
    async with rt.db.read() as conn:
        inbound = (
            (
                await conn.execute(
                    select(messages.c.body)
                    .where(messages.c.direction == "in")
                    .order_by(messages.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert inbound == ["你好，我想问个问题", "路灯坏了"]


async def test_a_retried_webhook_changes_nothing(rt: Runtime) -> None:
    first = await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM-RETRY"))
    before = [await count(rt, t) for t in (messages, tickets, jobs, audit_events, conversations)]
    again = await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM-RETRY"))
    after = [await count(rt, t) for t in (messages, tickets, jobs, audit_events, conversations)]
    assert again.duplicate and after == before
    assert again.message_id == first.message_id and again.ticket["id"] == first.ticket["id"]  # type: ignore[index]


async def test_concurrent_retries_of_one_webhook_make_one_message(rt: Runtime) -> None:
    results = await asyncio.gather(
        *(receive_message(rt, sms("+8613800000009", "垃圾没人清运", "SM-RACE")) for _ in range(5))
    )
    assert sum(not r.duplicate for r in results) == 1
    assert await count(rt, messages) == 2  # the inbound and one auto reply
    assert await count(rt, tickets) == 1


async def test_one_citizen_for_every_spelling_of_a_number(rt: Runtime) -> None:
    from callcenter.domain.phone import normalize_phone

    ids = set()
    for i, raw in enumerate(["13800000000", "+86 138 0000 0000", "008613800000000"]):
        result = await receive_message(rt, sms(normalize_phone(raw), "你好", f"SM{i}"))
        ids.add(result.citizen_id)
    assert len(ids) == 1
    assert await count(rt, citizens) == 1 and await count(rt, citizen_identities) == 1


async def test_english_texts_get_english_answers(rt: Runtime) -> None:
    result = await receive_message(
        rt, sms("+14155550100", "There is a pothole on Hubin Road", "SM1")
    )
    assert result.ticket is not None
    assert result.ticket["department_id"] == dept_id(rt, "MH-MUNICIPAL")
    async with rt.db.read() as conn:
        body = (
            await conn.execute(select(messages.c.body).where(messages.c.direction == "out"))
        ).scalar()
    assert body.startswith("[12345 hotline] We registered your report as case")


async def test_bad_input_writes_nothing(rt: Runtime) -> None:
    before = await count(rt, audit_events)
    for body in ["", "   ", "x" * 4001]:
        with pytest.raises(InvalidInput):
            await receive_message(rt, sms("+8613800000000", body, "SM-BAD"))
    with pytest.raises(InvalidInput):
        await create_ticket(rt, TicketDraft(description="路灯", category="nope"), actor=SYSTEM)
    with pytest.raises(InvalidInput):
        await create_ticket(rt, TicketDraft(description="路灯", lat=95, lon=120), actor=SYSTEM)
    assert await count(rt, audit_events) == before
    assert await count(rt, messages) == 0


async def test_the_full_life_of_a_ticket(rt: Runtime, clock: ManualClock) -> None:
    agent = await actor(rt, "agent1")
    lat, lon = cell_point(rt, "GRID-HB-LA-01")
    ticket = await create_ticket(
        rt,
        TicketDraft(description="小区垃圾三天没人清运", lat=lat, lon=lon, origin_channel="voice"),
        actor=agent,
        dispatch=True,
    )
    assert ticket["state"] == "dispatched" and ticket["department_id"] == dept_id(rt, "HB-CG")
    assert ticket["routing"]["rule"] == "grid"
    staff = await actor(rt, "hb-cg")
    other = await actor(rt, "qs-cg")
    with pytest.raises(NotFound):  # another department does not even see it
        await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=other)
    clock.advance(hours=1)
    ticket = await take_step(rt, ticket["number"], Step.SIGN_FOR, actor=staff)
    clock.advance(hours=2)
    ticket = await take_step(
        rt, ticket["id"], Step.REQUEST_EXTENSION, actor=staff, days=3, reason="需要协调环卫公司"
    )
    supervisor = await actor(rt, "supervisor")
    due = ticket["due_at"]
    ticket = await take_step(rt, ticket["id"], Step.APPROVE_EXTENSION, actor=supervisor)
    assert ticket["due_at"] == rt.sla.extend(due, 3, "normal") and ticket["extension_days"] == 3
    clock.advance(days=1)
    ticket = await take_step(rt, ticket["id"], Step.REPLY, actor=staff, text="已清运")
    with pytest.raises(IllegalStep):
        await take_step(rt, ticket["id"], Step.REPLY, actor=staff, text="again")
    ticket = await take_step(rt, ticket["id"], Step.CLOSE, actor=agent)
    assert ticket["state"] == "closed" and ticket["closure"] == "replied"
    clock.advance(days=1)
    ticket = await take_step(rt, ticket["id"], Step.REOPEN, actor=SYSTEM, reason="回访不满意")
    assert ticket["state"] == "dispatched" and ticket["reopen_count"] == 1
    assert ticket["department_id"] == dept_id(rt, "HB-CG")
    async with rt.db.read() as conn:
        actions = (
            await conn.execute(
                select(audit_events.c.action, audit_events.c.actor_name)
                .where(
                    audit_events.c.entity_type == "ticket", audit_events.c.entity_id == ticket["id"]
                )
                .order_by(audit_events.c.seq)
            )
        ).all()
    assert [a for a, _ in actions] == [
        "ticket.create",
        "ticket.dispatch",
        "ticket.sign_for",
        "ticket.request_extension",
        "ticket.approve_extension",
        "ticket.reply",
        "ticket.close",
        "ticket.reopen",
    ]
    assert actions[2][1] == staff.name
    checked, broken = await verify_chain(rt.db)
    assert broken is None and checked > 8


async def test_a_stale_version_is_refused(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯不亮", category="street_light"), actor=agent
    )
    await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent, expected_version=1)
    with pytest.raises(VersionConflict) as caught:
        await take_step(rt, ticket["id"], Step.URGE, actor=agent, expected_version=1)
    assert caught.value.params == {"expected": 1, "actual": 2}


async def test_concurrent_steps_on_one_ticket_serialise(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯不亮", category="street_light"), actor=agent, dispatch=True
    )
    staff = await actor(rt, "mh-municipal")
    results = await asyncio.gather(
        *(take_step(rt, ticket["id"], Step.SIGN_FOR, actor=staff) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, IllegalStep) for r in results if not isinstance(r, dict))


async def test_roles_are_enforced_by_the_action(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯不亮", category="street_light"), actor=agent
    )
    staff = await actor(rt, "mh-municipal")
    with pytest.raises(NotFound):  # not yet dispatched to them: invisible
        await take_step(rt, ticket["id"], Step.DISPATCH, actor=staff)
    with pytest.raises(Forbidden):
        await take_step(rt, ticket["id"], Step.CANCEL, actor=agent, reason="dup")


async def test_merge_into_an_open_ticket(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    first = await create_ticket(
        rt, TicketDraft(description="路灯不亮", category="street_light"), actor=agent, dispatch=True
    )
    second = await create_ticket(
        rt, TicketDraft(description="路灯又不亮", category="street_light"), actor=agent
    )
    merged = await take_step(
        rt, second["id"], Step.MERGE, actor=agent, into_ticket_id=first["number"]
    )
    assert merged["state"] == "merged" and merged["merged_into_id"] == first["id"]
    third = await create_ticket(
        rt, TicketDraft(description="同一盏灯", category="street_light"), actor=agent
    )
    with pytest.raises(InvalidInput):
        await take_step(rt, third["id"], Step.MERGE, actor=agent, into_ticket_id=second["id"])


async def test_desk_tickets_need_a_department_to_dispatch(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="有点事情想反映"), actor=agent, dispatch=True
    )
    assert ticket["state"] == "new" and ticket["routing"]["to_desk"]
    with pytest.raises(InvalidInput):
        await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent)
    with pytest.raises(InvalidInput):
        await take_step(
            rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=dept_id(rt, "MH-DESK")
        )
    done = await take_step(
        rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=dept_id(rt, "MH-WATER")
    )
    assert done["department_id"] == dept_id(rt, "MH-WATER")


async def test_ticket_numbers_count_per_local_day(rt: Runtime, clock: ManualClock) -> None:
    agent = await actor(rt, "agent1")
    numbers = []
    for _ in range(2):
        t = await create_ticket(rt, TicketDraft(description="路灯"), actor=agent)
        numbers.append(t["number"])
    clock.advance(hours=16)  # 02:00 UTC + 16 h = 02:00 next day in Shanghai
    t = await create_ticket(rt, TicketDraft(description="路灯"), actor=agent)
    numbers.append(t["number"])
    assert numbers == ["20261127-0001", "20261127-0002", "20261128-0001"]


async def test_agent_replies_go_out_on_the_conversation_channel(rt: Runtime) -> None:
    result = await receive_message(rt, sms("+8613800000001", "你好", "SM1"))
    agent = await actor(rt, "agent1")
    message_id = await send_reply(rt, result.conversation_id, "您好，请讲", actor=agent)
    await settle(rt, rt.clock, within=5)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(messages).where(messages.c.id == message_id))).one()
    assert row.status == "sent" and row.author_id == agent.id
    with pytest.raises(NotFound):
        await send_reply(rt, 99999, "hi", actor=agent)


async def test_tampering_with_the_audit_log_is_found(rt: Runtime) -> None:
    await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM1"))
    _checked, broken = await verify_chain(rt.db)
    assert broken is None
    async with rt.db.transaction(serialize=False) as tx:
        await tx.execute(
            update(audit_events).where(audit_events.c.seq == 3).values(actor_name="someone else")
        )
    _, broken = await verify_chain(rt.db)
    assert broken is not None and (broken.seq, broken.reason) == (3, "hash")


async def test_deleting_the_newest_audit_events_is_found(rt: Runtime) -> None:
    await receive_message(rt, sms("+8613800000000", "小区路灯坏了", "SM1"))
    checked, _ = await verify_chain(rt.db)
    async with rt.db.transaction(serialize=False) as tx:
        await tx.execute(audit_events.delete().where(audit_events.c.seq == checked))
    _, broken = await verify_chain(rt.db)
    assert broken is not None and (broken.seq, broken.reason) == (checked, "truncated")


async def test_lights_on_stored_tickets(rt: Runtime, clock: ManualClock) -> None:
    from callcenter.views import ticket_view

    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯不亮", category="street_light"), actor=agent, dispatch=True
    )
    async with rt.db.read() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.id == ticket["id"]))).one()
    assert ticket_view(rt, row, "en")["light"] == "green"
    clock.set(row.sign_due_at + timedelta(minutes=1))
    view = ticket_view(rt, row, "en")
    assert view["light"] == "red" and view["sign_light"] == "red"


async def test_a_categorys_own_handling_time_sets_the_deadline(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    water = await create_ticket(
        rt,
        TicketDraft(description="家里停水了", category="water_outage"),
        actor=agent,
        dispatch=True,
    )  # the demo city gives it 1 working day
    leak = await create_ticket(
        rt,
        TicketDraft(description="公司拖欠工资", category="wage_arrears"),
        actor=agent,
        dispatch=True,
    )  # no time of its own: a complaint's 15 days
    assert water["due_at"] == rt.sla.deadline(water["dispatched_at"], Limit(amount=1))
    assert leak["due_at"] == rt.sla.deadline(leak["dispatched_at"], Limit(amount=15))


@pytest.mark.parametrize("fails", [False, True])
async def test_a_finished_transaction_is_freed_without_the_garbage_collector(
    rt: Runtime, fails: bool
) -> None:
    """No reference cycle is left behind: the collector's passes over thousands of
    them would stall the event loop."""
    gc.disable()
    try:
        with contextlib.suppress(RuntimeError):
            async with rt.transaction() as tx:
                await audit.record(
                    tx, actor=SYSTEM, entity_type="test", entity_id=1, action="test.cycle"
                )
                tx.after_commit(lambda: None)
                finished = weakref.ref(tx)
                if fails:
                    raise RuntimeError("rolled back")
        del tx
        assert finished() is None
    finally:
        gc.enable()
