"""A mediation session end to end: a mediator and two parties, each in a real Chromium with
its own fake camera and microphone, in a room on the real Janus inside a network namespace.
Each receives the others' tone and picture; the mediator mutes and removes one; the
recording, joined by the job, has audio and video of the recorded length (ffprobe); the
agreement goes out as a PDF; the ticket is replied through the ordinary workflow."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions import mediations as med
from callcenter.actions.citizens import find_or_create_citizen
from callcenter.actions.mediation_files import probe_duration
from callcenter.actions.staff import log_in
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.domain.workflow import Step
from callcenter.store.tables import (
    audit_events,
    conversations,
    mediation_recordings,
    mediations,
    messages,
    tickets,
    users,
)
from tests.conftest import load_test_city
from tests.helpers import actor
from tests.media import harness
from tests.media.conftest import Hotline

pytestmark = pytest.mark.slow

MEDIATOR = harness.Fake(440, "red")
APPLICANT = harness.Fake(660, "green")
RESPONDENT = harness.Fake(880, "blue")
PHONES = {"applicant": "+8613800000011", "respondent": "+8613800000012"}


async def invitation(rt: Any, phone: str) -> tuple[str, str]:
    async with rt.db.read() as conn:
        bodies = (
            (
                await conn.execute(
                    select(messages.c.body)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(conversations.c.address == phone, messages.c.direction == "out")
                    .order_by(messages.c.id)
                )
            )
            .scalars()
            .all()
        )
    for body in bodies:
        link = re.search(r"/m/([0-9]+-[A-Za-z0-9_-]+-[0-9a-f]+)", body)
        pin = re.search(r"(?:PIN: |密码：)(\d{6})", body)
        if link and pin:
            return link.group(1), pin.group(1)
    raise AssertionError(f"no invitation among {bodies}")


def sees(remotes: list[dict[str, Any]], fake: harness.Fake) -> bool:
    return any(r["colour_name"] == fake.colour and harness.hears(r, fake.hz) for r in remotes)


async def enter_as_party(person: harness.Participant, url: str, link: str, pin: str) -> Any:
    page = await person.page(f"{url}/m/{link}")
    await page.fill("#pin", "000000")  # a wrong one first: the form says so and stays
    await page.click("button[type=submit]")
    assert await page.locator(".error[data-code=pin_wrong]").count() == 1
    await page.fill("#pin", pin)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/room$"))
    await harness.until(page, "document.getElementById('preview').videoWidth > 0")
    await page.click("#consent-yes")
    await page.wait_for_selector("#waiting:not([hidden])")
    return page


async def scheduled_session(
    rt: Any, phones: dict[str, str]
) -> tuple[dict[str, Any], Any, str, dict[str, Any]]:
    """A neighbour dispute, signed for by department staff who mediate it, with a session
    of 张伟 (applicant, Chinese) and Tom Baker (respondent, English) in ten minutes:
    (ticket, mediator, mediator's username, case)."""
    await load_test_city(rt)
    agent = await actor(rt, "agent1")
    async with rt.transaction() as tx:  # the applicant called the hotline about it
        citizen, _ = await find_or_create_citizen(
            tx, rt, kind="phone", value=phones["applicant"], actor=agent, name="张伟"
        )
    ticket = await create_ticket(
        rt,
        TicketDraft(
            description="楼上漏水，邻居不肯修", category="neighbour_dispute", citizen_id=citizen.id
        ),
        actor=agent,
    )
    kind = rt.directory.category_by_code["neighbour_dispute"].department_kind
    dept_row = next(d for d in rt.directory.departments if d.kind == kind)
    await take_step(rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=dept_row.id)
    async with rt.db.read() as conn:
        username = (
            await conn.execute(select(users.c.username).where(users.c.department_id == dept_row.id))
        ).scalar()
    mediator = await actor(rt, username)
    await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=mediator)
    await med.set_mediator(
        rt, mediator.id, languages=["zh-CN"], actor=await actor(rt, "supervisor")
    )
    case = await med.propose_mediation(
        rt, ticket["number"], actor=agent, mediator_id=mediator.id,
        parties=[
            med.PartyDraft("张伟", phones["applicant"], "applicant", "zh-CN"),
            med.PartyDraft("Tom Baker", phones["respondent"], "respondent", "en"),
        ],
    )  # fmt: skip
    await med.schedule_mediation(
        rt, case["id"], datetime.now(UTC) + timedelta(minutes=10), actor=mediator
    )
    return ticket, mediator, username, case


async def mediator_page(
    person: harness.Participant, hotline: Hotline, token: str, case_id: int
) -> Any:
    """The mediator's page in ``person``'s Chromium, signed in, the room opened."""
    context = await person.browser.new_context(
        locale="zh-CN", viewport={"width": 1100, "height": 900}
    )
    await context.add_cookies([{"name": "hotline_session", "value": token, "url": hotline.url}])
    await context.add_init_script(path=str(harness.PROBE))
    page = await context.new_page()
    await page.goto(f"{hotline.url}/ui/mediations/{case_id}")
    await page.click("#start")
    await harness.until(page, "window.__mediatorPage.room !== null")
    return page


async def test_a_mediation_session_in_three_browsers(hotline: Hotline, tmp_path: Path) -> None:
    rt = hotline.rt
    ticket, _, username, case = await scheduled_session(rt, PHONES)
    links = {role: await invitation(rt, phone) for role, phone in PHONES.items()}
    session = await log_in(rt, username, "demo12345")

    async with harness.Participants(tmp_path / "fake", [MEDIATOR, APPLICANT, RESPONDENT]) as (
        m_person, a_person, r_person,
    ):  # fmt: skip
        mpage = await mediator_page(m_person, hotline, session.token, case["id"])

        apage = await enter_as_party(a_person, hotline.url, *links["applicant"])
        rpage = await enter_as_party(r_person, hotline.url, *links["respondent"])
        for _ in range(2):
            await mpage.click("tr[data-presence=waiting] button[data-action=admit]")
            await asyncio.sleep(0.5)
        await apage.wait_for_selector("#room:not([hidden])")
        await rpage.wait_for_selector("#room:not([hidden])")

        # everyone receives everyone else's tone and picture
        await harness.wait_for(
            mpage,
            lambda r: sees(r, APPLICANT) and sees(r, RESPONDENT),
            within=45,
            what="parties at the mediator",
        )
        await harness.wait_for(
            apage,
            lambda r: sees(r, MEDIATOR) and sees(r, RESPONDENT),
            within=30,
            what="others at the applicant",
        )
        await harness.wait_for(
            rpage,
            lambda r: sees(r, MEDIATOR) and sees(r, APPLICANT),
            within=30,
            what="others at the respondent",
        )
        assert await harness.frames_decoded(apage) > 0
        await apage.wait_for_selector("#rec.on")  # everyone said yes: recording, and shown
        await apage.screenshot(path=str(tmp_path / "applicant.png"))
        await mpage.screenshot(path=str(tmp_path / "mediator.png"))

        # the mediator mutes the respondent: the others no longer hear 880 Hz, still see blue
        await mpage.click(
            "tr[data-presence=in_room]:has-text('Tom Baker') button[data-action=mute]"
        )
        await harness.wait_for(
            apage,
            lambda r: any(x["colour_name"] == "blue" for x in r)
            and not any(harness.hears(x, RESPONDENT.hz) for x in r),
            within=20, what="the respondent muted",
        )  # fmt: skip
        await rpage.wait_for_selector("#mic[disabled]")

        # ... and removes them: their page says so, the others lose their feed
        mpage.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await mpage.click(
            "tr[data-presence=in_room]:has-text('Tom Baker') button[data-action=remove]"
        )
        await rpage.wait_for_selector("#over:not([hidden])", timeout=20_000)
        assert "removed" in (await rpage.text_content("#over-text") or "")
        await harness.wait_for(
            apage, lambda r: all(x["colour_name"] != "blue" for x in r), within=20, what="gone"
        )

        # the applicant's connection drops and comes back to the same place
        await apage.evaluate("window.__roomPage.reconnect()")
        await harness.wait_for(
            mpage, lambda r: sees(r, APPLICANT), within=30, what="the applicant back"
        )

        await asyncio.sleep(2)
        await mpage.select_option("#outcome", "agreement")
        await mpage.fill("#agreement", "张伟与Tom Baker约定：月底前修好漏水的管道，费用各半。")
        mpage.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await mpage.click("#end")
        await apage.wait_for_selector("#over:not([hidden])", timeout=20_000)

    # the jobs: the recording joined, the agreement made and sent
    assert rt.runner is not None
    for _ in range(5):
        await rt.runner.drain()
    async with rt.db.read() as conn:
        rec = (await conn.execute(select(mediation_recordings))).one()
        m = (await conn.execute(select(mediations))).one()
        steps = (
            await conn.execute(
                select(audit_events.c.action, audit_events.c.at).where(
                    audit_events.c.action.like("mediation.recording%")
                )
            )
        ).all()
        replied = (await conn.execute(select(tickets.c.state, tickets.c.reply))).one()
    assert rec.state == "ready", rec.error
    duration, kinds = await probe_duration(rt.settings.data_dir / rec.path)
    started = next(at for action, at in steps if action == "mediation.recording_on")
    recorded = (m.ended_at - started).total_seconds()
    assert sorted(set(kinds)) == ["audio", "video"]
    assert abs(duration - recorded) < 3, (duration, recorded)
    assert m.state == "concluded" and m.outcome == "agreement" and m.agreement_path
    assert (rt.settings.data_dir / m.agreement_path).read_bytes()[:5] == b"%PDF-"
    assert replied.state == "replied" and "管道" in replied.reply

    # the ticket is closed through the ordinary workflow, and the survey follows
    await take_step(rt, ticket["id"], Step.CLOSE, actor=await actor(rt, "supervisor"))
    async with rt.db.read() as conn:
        from callcenter.store.tables import surveys

        survey = (await conn.execute(select(surveys))).one()
    assert survey.ticket_id == ticket["id"] and survey.state == "scheduled"

    # the statistics count it: on the wallboard and in the KPI report
    from callcenter.reports import kpi_report, wallboard

    async with rt.db.read() as conn:
        wall = await wallboard(conn, rt, "zh-CN")
        report = await kpi_report(
            conn, rt, m.created_at - timedelta(days=1), m.created_at + timedelta(days=1), "en"
        )
    assert wall["mediations"]["month"]["held"] == 1
    assert report["mediations"]["overall"]["agreement_rate"] == 1.0
    assert report["mediations"]["overall"]["no_show_rate"] == 0.0
