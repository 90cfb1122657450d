"""Personal data (callcenter/actions/privacy.py): masked numbers in lists and logs, the
audited contact view, retention, and a citizen's export and erasure."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.audit import verify_chain
from callcenter.actions.deliveries import ACCEPTED, record_attempt
from callcenter.actions.inbox import inbox
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.privacy import RETENTION, apply_retention, erase_citizen, export_citizen
from callcenter.actions.tickets import take_step
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.errors import Conflict
from callcenter.domain.privacy import MaskingFilter, install_log_masking, mask_phone
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from callcenter.store.tables import (
    audit_events,
    citizen_identities,
    citizens,
    conversations,
    delivery_attempts,
    jobs,
    messages,
    tickets,
)
from callcenter.store.tables import inbox as inbox_rows
from tests.conftest import load_test_city, make_settings
from tests.helpers import actor, signed_in_client, staff_of

PHONE = "+8613812345678"


@pytest_asyncio.fixture
async def client(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, database_url)
    rt = build_runtime(settings, clock=clock, seed=4)
    async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
        await load_test_city(rt)
        c.rt = rt  # type: ignore[attr-defined]
        yield c


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{user}"}


async def report(rt: Runtime, text: str = "小区路灯坏了，晚上很黑") -> Any:
    result = await receive_message(rt, Inbound("sms", "phone", PHONE, text))
    assert result.ticket is not None
    return result


async def close(rt: Runtime, ticket: dict[str, Any]) -> None:
    """Through the department and back: signed for, answered, closed."""
    department = await actor(rt, staff_of(rt.directory.by_id[ticket["department_id"]].code))
    await take_step(rt, ticket["id"], Step.SIGN_FOR, actor=department)
    await take_step(rt, ticket["id"], Step.REPLY, actor=department, text="已修复。")
    await take_step(rt, ticket["id"], Step.CLOSE, actor=await actor(rt, "agent1"))


async def audit_actions(rt: Runtime, action: str) -> list[Any]:
    async with rt.db.read() as conn:
        return (
            await conn.execute(select(audit_events).where(audit_events.c.action == action))
        ).all()


def test_numbers_are_masked_for_lists_and_logs() -> None:
    assert mask_phone(PHONE) == "+86138****5678"
    assert mask_phone("13812345678") == "138****5678"
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "SMS from %s about %s", (PHONE, "20261127-0042"), None
    )
    MaskingFilter().filter(record)
    assert record.getMessage() == "SMS from +86138****5678 about 20261127-0042"


def test_every_log_handler_masks_numbers_whichever_logger_wrote_them() -> None:
    """As `callcenter` sets logging up: the filter sits on the root's handlers, so the
    records other libraries' loggers propagate (aiohttp's access log with a search for a
    number in its query) are masked too."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    kept = {h: list(h.filters) for h in root.handlers if h is not handler}
    try:
        install_log_masking()
        install_log_masking()  # twice: one filter
        assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1
        # a library's logger, as aiohttp's access log is: its records reach the root's
        # handlers by propagation (a logger of its own, whatever others did to aiohttp's)
        library = logging.getLogger("tests.privacy.library")
        library.warning('"GET /api/citizens?phone=%s HTTP/1.1" 200', PHONE)
    finally:
        root.removeHandler(handler)
        for other, filters in kept.items():  # pytest's own handlers as they were
            other.filters[:] = filters
    assert stream.getvalue() == '"GET /api/citizens?phone=+86138****5678 HTTP/1.1" 200\n'


async def test_lists_show_masked_numbers_and_the_conversation_the_full_one(
    client: TestClient,
) -> None:
    rt: Runtime = client.rt  # type: ignore[attr-defined]
    result = await report(rt)
    found = await (await client.get(f"/api/citizens?phone={PHONE}", headers=auth("agent1"))).json()
    assert [c["phone"] for c in found] == ["+86138****5678"]
    listed = await (await client.get("/api/conversations", headers=auth("agent1"))).json()
    mine = [c for c in listed["items"] if c["id"] == result.conversation_id]
    assert mine and mine[0]["address"] == "+86138****5678"
    detail = await (
        await client.get(f"/api/conversations/{result.conversation_id}", headers=auth("agent1"))
    ).json()
    assert detail["address"] == "+86138****5678"  # not theirs: see the next test


def _numbers(text: str) -> tuple[bool, bool]:
    """Whether ``text`` holds PHONE in full, and masked."""
    return PHONE[1:] in text, "+86138****5678" in text


async def test_the_desk_lists_mask_numbers_and_only_the_agent_who_answers_sees_them(
    client: TestClient,
) -> None:
    """The queue, the offers, the conversations held (the agent's and, for a supervisor,
    everyone's), in the API and on the desk's pages; the conversation and the citizen's
    record in full only for the agent who holds a conversation with them."""
    rt: Runtime = client.rt  # type: ignore[attr-defined]
    waiting = await receive_message(rt, Inbound("sms", "phone", PHONE, "你好"))
    assert waiting.conversation_state == "queued"
    a1 = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=a1)
    assert len((await acd.distribute(rt)).offers) == 1
    conversation = f"/api/conversations/{waiting.conversation_id}"
    citizen = f"/api/citizens/{waiting.citizen_id}"
    history = f"/ui/desk/citizens/{waiting.citizen_id}/history"

    async def api_text(path: str, user: str) -> str:
        response = await client.get(path, headers=auth(user))
        assert response.status == 200, (path, user)
        return await response.text()

    pages = {
        u: await signed_in_client(client.server.app, u) for u in ("agent1", "agent2", "supervisor")
    }
    try:

        async def page_text(path: str, user: str) -> str:
            response = await pages[user].get(path)
            assert response.status == 200, (path, user)
            return await response.text()

        # offered, not yet taken: nobody sees it in full
        for user in ("agent1", "agent2", "supervisor"):
            assert _numbers(await api_text("/api/acd/queue", user)) == (False, True), user
            assert _numbers(await page_text("/ui/desk/side", user)) == (False, True), user
            for path in (conversation, citizen):
                assert _numbers(await api_text(path, user)) == (False, True), (path, user)
            assert _numbers(await page_text(history, user)) == (False, True), user
        me = await (await client.get("/api/acd/me", headers=auth("agent1"))).json()
        [offer] = me["offers"]
        assert offer["conversation_id"] == waiting.conversation_id
        assert offer["address"] == "+86138****5678"

        await acd.accept_offer(rt, offer["id"], actor=a1)
        me = await (await client.get("/api/acd/me", headers=auth("agent1"))).json()
        assert [c["address"] for c in me["conversations"]] == ["+86138****5678"]  # a list
        assert _numbers(await page_text("/ui/desk/side", "agent1")) == (False, True)
        # the supervisor's list of who holds what
        assert _numbers(await page_text("/ui/desk/side", "supervisor")) == (False, True)
        # the agent who answers the citizen sees the number; the others still do not
        for path in (conversation, citizen):
            assert _numbers(await api_text(path, "agent1"))[0], path
            for user in ("agent2", "supervisor"):
                assert _numbers(await api_text(path, user)) == (False, True), (path, user)
        assert _numbers(await page_text(history, "agent1"))[0]
        for user in ("agent2", "supervisor"):
            assert _numbers(await page_text(history, user)) == (False, True), user
    finally:
        for page in pages.values():
            await page.close()


async def test_the_department_sees_the_number_on_its_own_ticket_and_the_view_is_audited(
    client: TestClient,
) -> None:
    rt: Runtime = client.rt  # type: ignore[attr-defined]
    result = await report(rt)
    ticket = result.ticket
    department = rt.directory.by_id[ticket["department_id"]].code
    response = await client.get(
        f"/api/tickets/{ticket['number']}/contact", headers=auth(staff_of(department))
    )
    assert response.status == 200
    assert (await response.json())["phone"] == PHONE
    other = "QS-CG" if department != "QS-CG" else "MH-WATER"
    response = await client.get(
        f"/api/tickets/{ticket['id']}/contact", headers=auth(staff_of(other))
    )
    assert response.status == 404
    [viewed] = await audit_actions(rt, "ticket.contact_viewed")
    staff = await actor(rt, staff_of(department))
    assert viewed.entity_id == ticket["id"] and viewed.actor_id == staff.id


async def test_the_ticket_page_masks_the_number_until_asked_and_each_ask_is_audited(
    client: TestClient,
) -> None:
    rt: Runtime = client.rt  # type: ignore[attr-defined]
    ticket = (await report(rt)).ticket
    department = staff_of(rt.directory.by_id[ticket["department_id"]].code)
    other = staff_of("QS-CG" if department != staff_of("QS-CG") else "MH-WATER")
    page = f"/ui/tickets/{ticket['number']}"
    users = {u: await signed_in_client(client.server.app, u) for u in (department, other)}
    try:
        staff = users[department]
        shown = await staff.get(page)
        assert shown.status == 200
        html = await shown.text()
        assert _numbers(html) == (False, True) and 'id="show-number"' in html
        assert await audit_actions(rt, "ticket.contact_viewed") == []
        token = re.search(r'"csrf": "([^"]+)"', html)
        assert token is not None
        headers = {"X-CSRF-Token": token.group(1)}
        refused = await staff.post(f"{page}/contact")  # no CSRF token: no view, no audit
        assert refused.status == 403
        asked = await staff.post(f"{page}/contact", headers=headers)
        assert asked.status == 200
        assert f'href="tel:{PHONE}"' in await asked.text()
        [viewed] = await audit_actions(rt, "ticket.contact_viewed")
        assert viewed.actor_id == (await actor(rt, department)).id
        # another department's staff: the ticket is not theirs, nor is its contact
        outsider = users[other]
        page_html = await (await outsider.get("/ui/portal")).text()
        token = re.search(r'"csrf": "([^"]+)"', page_html)
        assert token is not None
        response = await outsider.post(f"{page}/contact", headers={"X-CSRF-Token": token.group(1)})
        assert response.status == 404 and PHONE[1:] not in await response.text()
        assert len(await audit_actions(rt, "ticket.contact_viewed")) == 1
    finally:
        for c in users.values():
            await c.close()


async def test_the_merge_form_finds_the_citizens_other_tickets_without_their_number(
    client: TestClient,
) -> None:
    """The ticket page links to the same citizen's open tickets by the citizen, not by a
    number the page shows masked."""
    rt: Runtime = client.rt  # type: ignore[attr-defined]
    first = (await report(rt)).ticket
    second = (await report(rt, "港湾路垃圾没人清运")).ticket
    desk = await signed_in_client(client.server.app, "supervisor")
    try:
        html = await (await desk.get(f"/ui/tickets/{second['number']}")).text()
        link = re.search(r'href="(/ui/tickets\?view=open[^"]*)"', html)
        assert link is not None and "phone=" not in link.group(1), html
        assert _numbers(html)[0] is False
        found = await desk.get(link.group(1).replace("&amp;", "&"))
        assert found.status == 200
        listed = await found.text()
        assert first["number"] in listed and second["number"] in listed
    finally:
        await desk.close()


async def test_retention_removes_what_expired_and_says_so(rt: Runtime, clock: ManualClock) -> None:
    old = await report(rt)
    await close(rt, old.ticket)
    await inbox(rt).accept(Inbound("sms", "phone", "+8613900001234", "你好", "SM-OLD"))
    assert await inbox(rt).process() == 1
    clock.advance(timedelta(days=rt.settings.privacy.messages_days + 1))
    new = await report(rt, "港湾路垃圾没人清运")
    removed = await apply_retention(rt)
    assert removed["messages"] >= 1 and removed["closed_ticket_contacts"] == 1
    assert removed["inbox"] == 1  # the intake's copy of the old text went with it
    async with rt.db.read() as conn:
        assert (await conn.execute(select(inbox_rows))).all() == []
    async with rt.db.read() as conn:
        bodies = dict((await conn.execute(select(messages.c.id, messages.c.body))).all())
        owners = dict((await conn.execute(select(tickets.c.id, tickets.c.citizen_id))).all())
    assert bodies[old.message_id] == "[expired]" and bodies[new.message_id] == "港湾路垃圾没人清运"
    assert owners[old.ticket["id"]] is None and owners[new.ticket["id"]] == new.citizen_id
    [run] = await audit_actions(rt, "privacy.retention")
    assert run.after["messages"] == removed["messages"]
    assert (await verify_chain(rt.db))[1] is None


async def _retention_jobs(rt: Runtime) -> list[Any]:
    async with rt.db.read() as conn:
        return (
            await conn.execute(
                select(jobs.c.state, jobs.c.run_at)
                .where(jobs.c.kind == RETENTION)
                .order_by(jobs.c.id)
            )
        ).all()


async def test_the_server_keeps_retention_on_the_nightly_schedule_and_each_run_is_audited(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    """Started as `callcenter serve` starts it, with a retention period set and nobody
    running any command: the run is on the schedule for 03:00 local time, a restart
    does not add a second, and each night's run removes what expired and schedules the
    next (the clock moved, as the job runner sees it)."""
    settings = make_settings(
        tmp_path,
        database_url,
        privacy={"messages_days": 1, "recordings_days": 0, "closed_ticket_contacts_days": 0},
    )
    rt = build_runtime(settings, clock=clock, seed=4)
    async with TestClient(TestServer(create_app(settings, runtime=rt))):
        await load_test_city(rt)
        old = await receive_message(rt, Inbound("sms", "phone", PHONE, "小区路灯坏了，晚上很黑"))
    first_night = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai, 11-28
    assert [(j.state, j.run_at) for j in await _retention_jobs(rt)] == [("pending", first_night)]

    rt = build_runtime(settings, clock=clock, seed=5)  # restarted: still one run that night
    async with TestClient(TestServer(create_app(settings, runtime=rt))):
        assert len(await _retention_jobs(rt)) == 1
        assert rt.runner is not None
        clock.advance(timedelta(hours=16))  # 02:00 that night in Shanghai: not yet
        await rt.runner.drain()
        assert await audit_actions(rt, "privacy.retention") == []
        clock.advance(timedelta(hours=1, minutes=1))  # 03:01: the message is 17 hours old
        await rt.runner.drain()
        clock.advance(timedelta(days=1))  # the next night: 41 hours old
        await rt.runner.drain()
        async with rt.db.read() as conn:
            body = await conn.scalar(select(messages.c.body).where(messages.c.id == old.message_id))
    assert body == "[expired]"
    assert [(j.state, j.run_at) for j in await _retention_jobs(rt)] == [
        ("done", first_night),
        ("done", first_night + timedelta(days=1)),
        ("pending", first_night + timedelta(days=2)),
    ]
    runs = await audit_actions(rt, "privacy.retention")
    assert [r.actor_role for r in runs] == ["system", "system"]
    assert runs[0].after["messages"] == 0 and runs[1].after["messages"] >= 1
    assert len(await audit_actions(rt, "privacy.retention_scheduled")) == 3
    assert (await verify_chain(rt.db))[1] is None


async def test_no_retention_run_is_scheduled_while_every_period_is_off(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    off = {"messages_days": 0, "recordings_days": 0, "closed_ticket_contacts_days": 0}
    settings = make_settings(tmp_path, database_url, privacy=off)
    rt = build_runtime(settings, clock=clock, seed=4)
    async with TestClient(TestServer(create_app(settings, runtime=rt))):
        assert await _retention_jobs(rt) == []
        assert await audit_actions(rt, "privacy.retention_scheduled") == []


async def test_export_then_erasure_where_the_law_allows(rt: Runtime) -> None:
    result = await report(rt)
    admin = await actor(rt, "admin")
    document = await export_citizen(rt, result.citizen_id, actor=admin)
    assert document["citizen"]["phone"] == PHONE
    assert document["messages"][0]["body"] == "小区路灯坏了，晚上很黑"
    assert [t["id"] for t in document["tickets"]] == [result.ticket["id"]]
    assert await audit_actions(rt, "citizen.exported")

    with pytest.raises(Conflict) as refused:  # the open case still needs the contact
        await erase_citizen(rt, result.citizen_id, actor=admin, reason="citizen's request")
    assert refused.value.code == "citizen_has_open_tickets"

    await close(rt, result.ticket)
    await inbox(rt).accept(Inbound("sms", "phone", PHONE, "谢谢，已修好", "SM-THANKS"))
    assert await inbox(rt).process() == 1
    async with rt.db.read() as conn:  # the receipt, sent as Twilio's adapter records it
        receipt = await conn.scalar(
            select(messages.c.id).where(
                messages.c.conversation_id == result.conversation_id, messages.c.direction == "out"
            )
        )
    await record_attempt(rt, receipt, outcome=ACCEPTED, provider_id="SM1", detail={"to": PHONE})
    counts = await erase_citizen(rt, result.citizen_id, actor=admin, reason="citizen's request")
    assert counts["identities"] == 1 and counts["tickets_kept"] == 1
    assert counts["inbox"] == 1 and counts["delivery_attempts"] == 1
    async with rt.db.read() as conn:
        assert (await conn.execute(select(inbox_rows))).all() == []
        details = (await conn.execute(select(delivery_attempts.c.detail))).scalars().all()
    assert details and PHONE not in str(details)
    async with rt.db.read() as conn:
        person = (
            await conn.execute(select(citizens).where(citizens.c.id == result.citizen_id))
        ).one()
        identities = (await conn.execute(select(citizen_identities))).all()
        bodies = (
            (
                await conn.execute(
                    select(messages.c.body).where(
                        messages.c.conversation_id == result.conversation_id
                    )
                )
            )
            .scalars()
            .all()
        )
        address = await conn.scalar(
            select(conversations.c.address).where(conversations.c.id == result.conversation_id)
        )
        kept = (
            await conn.execute(select(tickets).where(tickets.c.id == result.ticket["id"]))
        ).one()
    assert (person.name, person.phone) == (None, None)
    assert not [i for i in identities if i.citizen_id == result.citizen_id]
    assert set(bodies) == {"[erased]"} and PHONE not in str(address)
    assert kept.citizen_id is None and kept.description  # the case stays on record
    [erased] = await audit_actions(rt, "citizen.erased")
    assert erased.details["reason"] == "citizen's request"
    assert (await verify_chain(rt.db))[1] is None
