"""Mediation actions on SQLite and PostgreSQL: the case, invitations and reminders on the
injected clock, declining by reply, the parties' links and PINs (no media server: the
room itself is tested in tests/media)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions import mediations as med
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.domain.errors import Forbidden, InvalidInput, RateLimited
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from callcenter.store.tables import (
    audit_events,
    jobs,
    mediation_parties,
    mediations,
    messages,
    tickets,
    users,
)
from tests.helpers import actor, settle

APPLICANT = "+8613800000001"
RESPONDENT = "+8613800000002"


async def dispute(
    rt: Runtime, *, accepted: bool = True, locale: str | None = None
) -> tuple[dict[str, Any], Any]:
    """A neighbour dispute ticket, dispatched and signed for; and its department's staff."""
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt,
        TicketDraft(
            description="楼上漏水，邻居不肯修", category="neighbour_dispute", locale=locale
        ),
        actor=agent,
    )
    kind = rt.directory.category_by_code["neighbour_dispute"].department_kind
    target = next(d for d in rt.directory.departments if d.kind == kind)
    ticket = await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=target.id)
    async with rt.db.read() as conn:
        staff = (
            await conn.execute(
                select(users.c.username).where(users.c.department_id == ticket["department_id"])
            )
        ).scalar()
    dept = await actor(rt, staff)
    if accepted:
        await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=dept)
    return ticket, dept


async def case(
    rt: Runtime, *, locale: str | None = None
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    ticket, dept = await dispute(rt, locale=locale)
    supervisor = await actor(rt, "supervisor")
    await med.set_mediator(rt, dept.id, languages=["zh-CN", "en"], actor=supervisor)
    m = await med.propose_mediation(
        rt,
        ticket["number"],
        actor=await actor(rt, "agent1"),
        mediator_id=dept.id,
        parties=[
            med.PartyDraft("张伟", APPLICANT, "applicant", "zh-CN"),
            med.PartyDraft("Tom Baker", RESPONDENT, "respondent", "en"),
        ],
    )
    return ticket, dept, m


async def outbound(rt: Runtime, phone: str) -> list[str]:
    from callcenter.store.tables import conversations

    async with rt.db.read() as conn:
        rows = (
            await conn.execute(
                select(messages.c.body)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(conversations.c.address == phone, messages.c.direction == "out")
                .order_by(messages.c.id)
            )
        ).all()
    return [r.body for r in rows]


def link_and_pin(body: str) -> tuple[str, str]:
    url = re.search(r"/m/([0-9]+-[A-Za-z0-9_-]+-[0-9a-f]+)", body)
    pin = re.search(r"(?:PIN: |密码：)(\d{6})", body)
    assert url and pin, body
    return url.group(1), pin.group(1)


async def test_only_a_dispute_ticket_can_get_a_mediation(rt: Runtime) -> None:
    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="路灯坏了", category="street_light"), actor=agent
    )
    with pytest.raises(InvalidInput) as info:
        await med.propose_mediation(
            rt,
            ticket["id"],
            actor=agent,
            parties=[
                med.PartyDraft("A", APPLICANT, "applicant"),
                med.PartyDraft("B", RESPONDENT, "respondent"),
            ],
        )
    assert info.value.code == "mediation_not_a_dispute"
    async with rt.db.read() as conn:
        assert (await conn.execute(select(mediations))).first() is None


async def test_scheduling_invites_each_party_in_their_language_and_reminds_them(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    at = clock.now() + timedelta(days=3)
    after = await med.schedule_mediation(rt, m["id"], at, actor=dept)
    assert after["state"] == "scheduled"
    zh, en = await outbound(rt, APPLICANT), await outbound(rt, RESPONDENT)
    assert len(zh) == 1 and "纠纷调解" in zh[0] and "拒绝" in zh[0]
    assert len(en) == 1 and "mediation" in en[0] and "DECLINE" in en[0]
    link_zh, pin_zh = link_and_pin(zh[0])
    link_en, pin_en = link_and_pin(en[0])
    assert link_zh != link_en
    async with rt.db.read() as conn:
        planned = (
            await conn.execute(
                select(jobs.c.kind, jobs.c.run_at, jobs.c.payload).where(
                    jobs.c.kind.in_([med.REMIND, med.NO_SHOW])
                )
            )
        ).all()
    assert sorted((j.kind, j.run_at) for j in planned) == sorted(
        [
            (med.REMIND, at - timedelta(hours=24)),
            (med.REMIND, at - timedelta(hours=1)),
            (med.NO_SHOW, at + timedelta(minutes=30)),
        ]
    )
    await settle(rt, clock, within=60)  # deliveries now; nothing scheduled runs early
    assert len(await outbound(rt, APPLICANT)) == 1
    clock.set(at - timedelta(hours=24))
    await settle(rt, clock, within=60)
    zh = await outbound(rt, APPLICANT)
    assert len(zh) == 2 and "明天" in zh[1] and link_zh in zh[1] and pin_zh not in zh[1]
    clock.set(at - timedelta(hours=1))
    await settle(rt, clock, within=60)
    en = await outbound(rt, RESPONDENT)
    assert len(en) == 3 and "starts at" in en[2] and link_en in en[2]
    assert pin_en not in en[1] + en[2]  # the PIN travels once, in the invitation


async def test_a_changed_time_re_invites_and_the_old_link_and_reminders_stop(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    first = clock.now() + timedelta(days=3)
    await med.schedule_mediation(rt, m["id"], first, actor=dept)
    old_link, _ = link_and_pin((await outbound(rt, RESPONDENT))[0])
    later = first + timedelta(days=1)
    await med.schedule_mediation(rt, m["id"], later, actor=dept)
    en = await outbound(rt, RESPONDENT)
    assert len(en) == 2 and "moved to" in en[1]
    new_link, new_pin = link_and_pin(en[1])
    clock.set(later - timedelta(minutes=5))
    with pytest.raises(Forbidden) as info:
        await med.open_link(rt, old_link)
    assert info.value.code == "link_replaced"
    await med.check_pin(rt, new_link, new_pin)  # the new one works
    clock.set(first - timedelta(hours=24))
    await settle(rt, clock, within=60)
    assert len(await outbound(rt, RESPONDENT)) == 2  # the old time's reminder did nothing
    async with rt.db.read() as conn:
        steps = (
            (
                await conn.execute(
                    select(audit_events.c.action).where(audit_events.c.entity_type == "mediation")
                )
            )
            .scalars()
            .all()
        )
    assert steps[:3] == ["mediation.propose", "mediation.schedule", "mediation.reschedule"]


async def test_a_party_declines_by_replying_and_no_ticket_is_opened(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    await med.schedule_mediation(rt, m["id"], clock.now() + timedelta(days=2), actor=dept)
    async with rt.db.read() as conn:
        before = (await conn.execute(select(tickets.c.id))).scalars().all()
    result = await receive_message(
        rt, Inbound("sms", "phone", RESPONDENT, "decline", provider_id="SMdecline")
    )
    assert result.ticket is None
    async with rt.db.read() as conn:
        party = (
            await conn.execute(
                select(mediation_parties).where(mediation_parties.c.phone == RESPONDENT)
            )
        ).one()
        after = (await conn.execute(select(tickets.c.id))).scalars().all()
    assert party.declined_at == clock.now() and party.decline_text == "decline"
    assert after == before
    assert "will not attend" in (await outbound(rt, RESPONDENT))[-1]
    link, pin = link_and_pin((await outbound(rt, RESPONDENT))[0])
    clock.advance(days=2)
    with pytest.raises(Forbidden) as info:
        await med.check_pin(rt, link, pin)
    assert info.value.code == "declined"


async def test_links_and_pins_let_in_only_the_invited_party_at_its_time(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    at = clock.now() + timedelta(days=1)
    await med.schedule_mediation(rt, m["id"], at, actor=dept)
    link_a, pin_a = link_and_pin((await outbound(rt, APPLICANT))[0])
    link_b, pin_b = link_and_pin((await outbound(rt, RESPONDENT))[0])

    async def refused(link: str, pin: str) -> str:
        with pytest.raises((Forbidden, RateLimited)) as info:
            await med.check_pin(rt, link, pin)
        return info.value.code

    assert await refused(link_a, pin_a) == "too_early"
    clock.set(at - timedelta(minutes=10))
    party_id, nonce, sig = link_a.split("-")
    assert await refused(f"{party_id}-{nonce}-{'0' * len(sig)}", pin_a) == "link_invalid"
    assert await refused(f"{int(party_id) + 1}-{nonce}-{sig}", pin_b) == "link_invalid"
    assert await refused("garbage", pin_a) == "link_invalid"
    assert await refused(link_a, pin_b) == "pin_wrong"  # another party's PIN
    for _ in range(3):
        assert await refused(link_b, "000000") == "pin_wrong"
    assert await refused(link_b, "000001") == "pin_wrong"
    assert await refused(link_b, "000002") == "pin_locked"  # the fifth
    assert await refused(link_b, pin_b) == "pin_locked"  # even the right one, for now
    async with rt.db.read() as conn:
        wrong = (
            await conn.execute(
                select(audit_events).where(audit_events.c.action == "mediation.party.wrong_pin")
            )
        ).all()
    assert len(wrong) == 6
    clock.advance(minutes=16)
    seat = await med.check_pin(rt, link_b, pin_b)
    admission = await med.seated(rt, link_b, seat)
    assert admission.party.phone == RESPONDENT
    with pytest.raises(Forbidden):
        await med.seated(rt, link_b, "another-browser")
    await med.enter_waiting_room(rt, link_b, seat, consent=True)
    assert await refused(link_b, pin_b) == "seat_taken"  # the place is held by that browser
    clock.set(at + timedelta(hours=2, minutes=1))
    assert await refused(link_a, pin_a) == "link_expired"


async def test_nobody_opening_the_session_makes_it_a_no_show(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    at = clock.now() + timedelta(days=1)
    await med.schedule_mediation(rt, m["id"], at, actor=dept)
    clock.set(at + timedelta(minutes=30))
    await settle(rt, clock, within=60)
    async with rt.db.read() as conn:
        row = await conn.execute(select(mediations.c.state, mediations.c.ended_at))
        state, ended = row.one()
    assert state == "no_show" and ended == at + timedelta(minutes=30)


async def test_only_staff_of_the_case_can_act_on_it(rt: Runtime, clock: ManualClock) -> None:
    _, dept, m = await case(rt)
    other = await actor(rt, "mh-water")
    if other.department_id == dept.department_id:
        pytest.skip("the dispute went to the water department")
    with pytest.raises(Exception) as info:
        await med.schedule_mediation(rt, m["id"], clock.now() + timedelta(days=1), actor=other)
    assert getattr(info.value, "code", "") == "mediation_not_found"


async def test_a_recording_past_its_retention_is_deleted_by_a_job_and_audited(
    rt: Runtime, clock: ManualClock
) -> None:
    from callcenter.actions.mediation_files import EXPIRE
    from callcenter.jobs.outbox import enqueue
    from callcenter.store.queries import insert_row
    from callcenter.store.tables import mediation_recordings

    ticket, _, m = await case(rt)
    path = rt.settings.data_dir / "recordings" / "old.webm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1aE\xdf\xa3 not really a video")
    keep = rt.settings.data_dir / "recordings" / "new.webm"
    keep.write_bytes(b"\x1aE\xdf\xa3")
    async with rt.transaction() as tx:
        now = tx.state["now"]
        for name, expires in (
            ("old.webm", now + timedelta(days=1)),
            ("new.webm", now + timedelta(days=9)),
        ):
            await insert_row(
                tx,
                mediation_recordings,
                {
                    "mediation_id": m["id"], "ticket_id": ticket["id"], "state": "ready",
                    "path": f"recordings/{name}", "duration_seconds": 12.0, "created_at": now,
                    "expires_at": expires,
                },
            )  # fmt: skip
        await enqueue(tx, EXPIRE, {}, key="expire-test", now=now, run_at=now + timedelta(days=1))
    await settle(rt, clock, within=60)
    assert path.exists()  # not yet due
    clock.advance(days=1)
    await settle(rt, clock, within=60)
    async with rt.db.read() as conn:
        states = dict(
            (
                await conn.execute(select(mediation_recordings.c.id, mediation_recordings.c.state))
            ).all()
        )
        deleted = (
            await conn.execute(
                select(audit_events).where(audit_events.c.action == "mediation.recording_deleted")
            )
        ).all()
    assert not path.exists() and keep.exists()
    assert sorted(states.values()) == ["deleted", "ready"]
    assert len(deleted) == 1 and deleted[0].entity_id == ticket["id"]


async def test_with_a_dial_in_number_the_invitation_says_how_to_join_by_phone(
    rt: Runtime, clock: ManualClock
) -> None:
    _, dept, m = await case(rt)
    rt.settings.mediation.dial_in = "0571-12345-8"
    await med.schedule_mediation(rt, m["id"], clock.now() + timedelta(days=2), actor=dept)
    (zh,), (en,) = await outbound(rt, APPLICANT), await outbound(rt, RESPONDENT)
    assert "请用本机拨打0571-12345-8并输入密码" in zh
    assert "Call 0571-12345-8 from this phone and key in the PIN." in en
    assert link_and_pin(en)  # the link and the PIN are still whole
