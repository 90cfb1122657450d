"""Notices, reminders, quiet hours, opt-out and the callback survey, end to end on the
simulated SMS provider, with the clock moved instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.surveys import answer_survey
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.domain.segments import count_segments
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from callcenter.store.tables import jobs, messages, surveys, tickets
from tests.helpers import actor, settle

CITIZEN = "+8613800000000"


def sms(text: str, provider_id: str, sender: str = CITIZEN) -> Inbound:
    return Inbound("sms", "phone", sender, text, provider_id=provider_id, service_address="12345")


def outbox(rt: Runtime) -> list[dict[str, Any]]:
    """What the simulated provider was asked to send, in order."""
    return rt.channels.get("sms").log.sent()  # type: ignore[union-attr]


async def run_jobs(rt: Runtime) -> None:
    await settle(rt, rt.clock, within=5)


async def survey_row(rt: Runtime, ticket_id: int) -> Any:
    async with rt.db.read() as conn:
        return (
            await conn.execute(
                select(surveys)
                .where(surveys.c.ticket_id == ticket_id)
                .order_by(surveys.c.id.desc())
            )
        ).first()


async def close_cycle(
    rt: Runtime, clock: ManualClock, number: str, dept_user: str
) -> dict[str, Any]:
    staff = await actor(rt, dept_user)
    agent = await actor(rt, "agent1")
    clock.advance(hours=1)
    await take_step(rt, number, Step.SIGN_FOR, actor=staff)
    clock.advance(hours=2)
    await take_step(rt, number, Step.REPLY, actor=staff, text="已更换灯泡，路灯恢复照明。")
    clock.advance(minutes=10)
    return await take_step(rt, number, Step.CLOSE, actor=agent)


async def test_the_whole_loop_with_a_low_score_reopening_the_ticket(
    rt: Runtime, clock: ManualClock
) -> None:
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    ticket = result.ticket
    assert ticket is not None
    await run_jobs(rt)
    closed = await close_cycle(rt, clock, ticket["number"], "mh-municipal")
    assert closed["state"] == "closed"
    await run_jobs(rt)
    survey = await survey_row(rt, ticket["id"])
    assert survey.state == "scheduled" and survey.due_at == clock.now() + timedelta(hours=2)
    clock.advance(hours=2)
    await run_jobs(rt)
    assert (await survey_row(rt, ticket["id"])).state == "sent"

    reply = await receive_message(rt, sms("２", "SM2"))
    assert reply.ticket is None  # an answer, not a new report
    await run_jobs(rt)
    survey = await survey_row(rt, ticket["id"])
    assert (survey.state, survey.score, survey.solved) == ("answered", 2, None)
    async with rt.db.read() as conn:
        reopened = (await conn.execute(select(tickets).where(tickets.c.id == ticket["id"]))).one()
    assert reopened.state == "dispatched" and reopened.reopen_count == 1

    sent = outbox(rt)
    to_citizen = [s["body"] for s in sent if s["to"] == CITIZEN]
    assert len(to_citizen) == 4, to_citizen
    assert f"您反映的问题已受理，工单号{ticket['number']}" in to_citizen[0]  # the intake reply
    assert "已办结" in to_citizen[1] and "已更换灯泡" in to_citizen[1] and "/s/" in to_citizen[1]
    assert "回访" in to_citizen[2] and "1-5" in to_citizen[2]
    assert "重新交" in to_citizen[3]
    to_department = [s for s in sent if s["to"] != CITIZEN]
    assert to_department and all("回访不满意" in s["body"] for s in to_department)
    assert all(count_segments(s["body"]).segments <= rt.settings.notify.max_segments for s in sent)


async def test_a_satisfied_answer_is_thanked_and_an_english_citizen_reads_english(
    rt: Runtime, clock: ManualClock
) -> None:
    english = "+14155550100"
    result = await receive_message(rt, sms("The street light is broken", "SM1", sender=english))
    assert result.ticket is not None
    await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")
    clock.advance(hours=3)
    await run_jobs(rt)
    await receive_message(rt, sms("Very satisfied, solved. Thanks!", "SM2", sender=english))
    await run_jobs(rt)
    survey = await survey_row(rt, result.ticket["id"])
    assert (survey.state, survey.score, survey.solved) == ("answered", 5, True)
    bodies = [s["body"] for s in outbox(rt) if s["to"] == english]
    assert bodies[-1].startswith("[12345 hotline] Thank you for rating case")
    assert "Please rate our service 1-5" in bodies[-2]


async def test_surveys_wait_out_the_quiet_hours(rt: Runtime, clock: ManualClock) -> None:
    clock.set(datetime(2026, 11, 27, 11, 0, tzinfo=UTC))  # 19:00 in Shanghai
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    assert result.ticket is not None
    closed = await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")  # 22:10
    survey = await survey_row(rt, closed["id"])
    assert survey.due_at == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 08:00 the next day
    await run_jobs(rt)
    closing = [s["body"] for s in outbox(rt) if "已办结" in s["body"]]
    assert closing == []  # the closing notice is held for the morning too
    clock.set(datetime(2026, 11, 28, 0, 0, tzinfo=UTC))
    await run_jobs(rt)
    bodies = [s["body"] for s in outbox(rt)]
    assert any("已办结" in b for b in bodies) and any("回访" in b for b in bodies)


async def test_a_reminder_then_unanswered(rt: Runtime, clock: ManualClock) -> None:
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    assert result.ticket is not None
    await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")
    clock.advance(hours=2)
    await run_jobs(rt)
    clock.advance(hours=24)
    await run_jobs(rt)
    assert (await survey_row(rt, result.ticket["id"])).state == "reminded"
    clock.advance(hours=24)
    await run_jobs(rt)
    assert (await survey_row(rt, result.ticket["id"])).state == "unanswered"
    asked = [s["body"] for s in outbox(rt) if "回访" in s["body"]]
    assert len(asked) == 2 and "提醒" in asked[1]
    # a late reply is an ordinary message now
    late = await receive_message(rt, sms("5", "SM9"))
    assert late.conversation_state == "queued"


async def test_a_reply_belongs_to_the_newest_survey_unless_it_names_a_ticket(
    rt: Runtime, clock: ManualClock
) -> None:
    first = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    await close_cycle(rt, clock, first.ticket["number"], "mh-municipal")  # type: ignore[index]
    clock.advance(hours=2)
    await run_jobs(rt)
    second = await receive_message(rt, sms("家里停水了", "SM2"))
    await close_cycle(rt, clock, second.ticket["number"], "mh-water")  # type: ignore[index]
    clock.advance(hours=2)
    await run_jobs(rt)
    await receive_message(rt, sms("5", "SM3"))
    assert (await survey_row(rt, second.ticket["id"])).score == 5  # type: ignore[index]
    assert (await survey_row(rt, first.ticket["id"])).state == "sent"  # type: ignore[index]
    await receive_message(rt, sms(f"工单{first.ticket['number']}：4分 已解决", "SM4"))  # type: ignore[index]
    answered = await survey_row(rt, first.ticket["id"])  # type: ignore[index]
    assert (answered.score, answered.solved) == (4, True)


async def test_an_ambiguous_reply_gets_one_clarifying_question(
    rt: Runtime, clock: ManualClock
) -> None:
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")  # type: ignore[index]
    clock.advance(hours=2)
    await run_jobs(rt)
    await receive_message(rt, sms("3 4", "SM2"))
    await run_jobs(rt)
    assert "没能看懂" in outbox(rt)[-1]["body"]
    again = await receive_message(rt, sms("满意 不满意", "SM3"))
    assert again.conversation_state == "queued"  # asked once: now an agent reads it
    await receive_message(rt, sms("满意", "SM4"))
    assert (await survey_row(rt, result.ticket["id"])).score == 5  # type: ignore[index]


async def test_buttons_feed_the_same_records(rt: Runtime, clock: ManualClock) -> None:
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")  # type: ignore[index]
    clock.advance(hours=2)
    await run_jobs(rt)
    survey = await survey_row(rt, result.ticket["id"])  # type: ignore[index]
    outcome = await answer_survey(rt, survey.id, solved=False)
    assert outcome["reopened"] and outcome["ticket"]["state"] == "dispatched"
    async with rt.db.read() as conn:
        message = (await conn.execute(select(messages).where(messages.c.kind == "survey"))).one()
    assert [q["data"] for q in message.meta["quick_replies"]][:2] == [
        f"survey:{survey.id}:score:1",
        f"survey:{survey.id}:score:2",
    ]


async def test_stop_and_start(rt: Runtime, clock: ManualClock) -> None:
    result = await receive_message(rt, sms("小区路灯坏了", "SM1"))
    stop = await receive_message(rt, sms("退订", "SM2"))
    assert stop.ticket is None and stop.conversation_state == "closed"
    await run_jobs(rt)
    assert any("已为您退订" in s["body"] for s in outbox(rt))
    await close_cycle(rt, clock, result.ticket["number"], "mh-municipal")  # type: ignore[index]
    clock.advance(hours=2)
    await run_jobs(rt)
    assert (await survey_row(rt, result.ticket["id"])).state == "cancelled"  # type: ignore[index]
    assert any("已办结" in s["body"] for s in outbox(rt))  # a notice about their case still goes
    assert not any("回访】" in s["body"] for s in outbox(rt))
    await receive_message(rt, sms("START", "SM3"))
    await run_jobs(rt)
    assert any("已为您恢复" in s["body"] for s in outbox(rt))


async def test_department_reminders_escalate_and_never_repeat(
    rt: Runtime, clock: ManualClock
) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt,
        TicketDraft(description="停水两天了", category="water_outage"),
        actor=agent,
        dispatch=True,
    )
    staff = await actor(rt, "mh-water")
    clock.set(ticket["sign_due_at"])
    await run_jobs(rt)
    reminded = [s for s in outbox(rt) if "尚未签收" in s["body"]]
    assert len(reminded) == 1  # the one staff member of the water group with a phone
    await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=staff)
    # 75 % of ten working days, then the deadline
    async with rt.db.read() as conn:
        due_soon = (
            await conn.execute(
                select(jobs.c.run_at).where(jobs.c.key.like(f"remind:{ticket['id']}:due_soon:%"))
            )
        ).scalar_one()
    clock.set(due_soon)
    await run_jobs(rt)
    assert len([s for s in outbox(rt) if "将至" in s["body"]]) == 1
    clock.set(ticket["due_at"] + timedelta(minutes=1))
    await run_jobs(rt)
    overdue = [s for s in outbox(rt) if "已超过办理时限" in s["body"]]
    assert len(overdue) == 1
    async with rt.db.read() as conn:
        urged = await conn.execute(select(tickets.c.urge_count).where(tickets.c.id == ticket["id"]))
        assert urged.scalar_one() == 1
    # run every reminder again, as after a crash before their completion was recorded
    async with rt.db.transaction(serialize=False) as tx:
        await tx.execute(
            update(jobs)
            .where(jobs.c.kind == "ticket.remind")
            .values(state="pending", run_at=clock.now())
        )
    before = len(outbox(rt))
    await run_jobs(rt)
    assert len(outbox(rt)) == before
    async with rt.db.read() as conn:
        assert (
            await conn.execute(select(tickets.c.urge_count).where(tickets.c.id == ticket["id"]))
        ).scalar_one() == 1


async def test_an_extension_moves_the_reminders(rt: Runtime, clock: ManualClock) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt,
        TicketDraft(description="停水两天了", category="water_outage"),
        actor=agent,
        dispatch=True,
    )
    staff = await actor(rt, "mh-water")
    supervisor = await actor(rt, "supervisor")
    await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=staff)
    await take_step(
        rt, ticket["id"], Step.REQUEST_EXTENSION, actor=staff, days=5, reason="管网改造"
    )
    extended = await take_step(rt, ticket["id"], Step.APPROVE_EXTENSION, actor=supervisor)
    clock.set(ticket["due_at"] + timedelta(minutes=1))  # the old deadline
    await run_jobs(rt)
    assert not [s for s in outbox(rt) if "已超过办理时限" in s["body"]]
    clock.set(extended["due_at"] + timedelta(minutes=1))
    await run_jobs(rt)
    assert len([s for s in outbox(rt) if "已超过办理时限" in s["body"]]) == 1


async def test_urgent_tickets_alert_the_duty_officer_at_once_even_at_night(
    rt: Runtime, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    result = await receive_message(rt, sms("楼道里有很重的煤气味", "SM1"))
    assert result.ticket is not None and result.ticket["priority"] == "urgent"
    await run_jobs(rt)
    alerts = [s for s in outbox(rt) if "急件" in s["body"]]
    recipients = {s["to"] for s in alerts}
    assert len(recipients) == 2  # the gas group's staff member and its duty officer
    async with rt.db.read() as conn:
        urgent = (
            await conn.execute(
                select(func.count()).select_from(messages).where(messages.c.urgent.is_(True))
            )
        ).scalar_one()
    assert urgent == 2


async def test_notices_for_a_ticket_an_agent_opened(rt: Runtime, clock: ManualClock) -> None:
    agent = await actor(rt, "agent1")
    first = await receive_message(rt, sms("你好", "SM1"))  # a known citizen, queued for an agent
    ticket = await create_ticket(
        rt,
        TicketDraft(
            description="松林路垃圾没人清运", citizen_id=first.citizen_id, origin_channel="voice"
        ),
        actor=agent,
    )
    await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent)
    await run_jobs(rt)
    bodies = [s["body"] for s in outbox(rt) if s["to"] == CITIZEN]
    assert any("已受理，工单号" + ticket["number"] in b for b in bodies)
    assert any("已转青山区城市管理局办理" in b for b in bodies)
    staff = await actor(rt, "qs-cg")
    await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=staff)
    long_answer = "经现场核查，" + "我局已安排环卫作业人员对该路段进行全面清扫和垃圾清运，" * 8
    await take_step(rt, ticket["id"], Step.REPLY, actor=staff, text=long_answer)
    await take_step(rt, ticket["id"], Step.CLOSE, actor=agent)
    await run_jobs(rt)
    closing = [s["body"] for s in outbox(rt) if "已办结" in s["body"]][-1]
    assert "…" in closing and closing.endswith(f"/s/{ticket['number']}")
    assert count_segments(closing).segments <= rt.settings.notify.max_segments
