"""The staff workplace in a real Chromium: the defects found when it was tried as a new
user would, each in a test of its own (ticket side: dispatch desk, extension requests,
kept drafts, the timeline, time zones, the portal, rankings, phones).

The server runs on a ManualClock, so deadlines and lights move when the test says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.domain.workflow import Actor, Role, Step
from tests.e2e.browser_kit import Server, chromium, new_page, running_server, shot, sign_in

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

# Tuesday 1 December 2026, 09:30 in Shanghai: a working day
START = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
AGENT = Actor(id=None, role=Role.AGENT, name="test agent")
SUPERVISOR = Actor(id=None, role=Role.SUPERVISOR, name="test supervisor")


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("workplace"), clock=clock) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def dept_id(server: Server, code: str) -> int:
    return next(d.id for d in server.rt.directory.departments if d.code == code)


def department_actor(server: Server, code: str) -> Actor:
    return Actor(id=None, role=Role.DEPARTMENT, name=code, department_id=dept_id(server, code))


def new_ticket(server: Server, text: str, **draft: Any) -> dict[str, Any]:
    return dict(
        server.call(create_ticket(server.rt, TicketDraft(description=text, **draft), actor=AGENT))
    )


def dispatched(server: Server, text: str, code: str, **draft: Any) -> dict[str, Any]:
    ticket = new_ticket(server, text, **draft)
    return dict(
        server.call(
            take_step(
                server.rt,
                ticket["id"],
                Step.DISPATCH,
                actor=AGENT,
                department_id=dept_id(server, code),
            )
        )
    )


def step(
    server: Server, ticket: dict[str, Any], name: str, actor: Actor, **params: Any
) -> dict[str, Any]:
    return dict(server.call(take_step(server.rt, ticket["id"], Step(name), actor=actor, **params)))


# --- 1. the dispatch desk -------------------------------------------------------------------


def test_a_ticket_waiting_for_dispatch_can_be_found_and_dispatched(
    browser: Any, server: Server
) -> None:
    sms = server.call(
        receive_message(
            server.rt, Inbound("sms", "phone", "+8613700000001", "超市卖过期食品，希望处理")
        )
    )
    assert sms.ticket is not None and sms.ticket["state"] == "new"
    number = sms.ticket["number"]
    page = sign_in(browser, server, "agent1")
    page.goto(server.url + "/ui/dispatch")
    row = page.locator(f"tr.ticket[data-number='{number}']")
    expect(row).to_have_count(1)
    shot(page, "defect01-dispatch-desk")
    row.locator("a").first.click()
    form = page.locator("form[data-step=dispatch]")
    expect(form).to_be_visible()
    form.locator("select[name=department_id]").select_option(str(dept_id(server, "HB-SJ")))
    page.click("#step-dispatch")
    expect(page.locator("#ticket-facts")).to_contain_text("湖滨区市场监督管理局")
    expect(page.locator("#notice")).to_contain_text("派单")
    page.goto(server.url + "/ui/dispatch")
    expect(page.locator(f"tr.ticket[data-number='{number}']")).to_have_count(0)
    assert page.console_errors == []
    page.context.close()


# --- 2. a pending extension request ---------------------------------------------------------


def test_a_pending_extension_request_is_shown_and_decided_in_the_approvals_queue(
    browser: Any, server: Server
) -> None:
    ticket = dispatched(server, "荷花路井盖丢失，很危险", "MH-MUNICIPAL")
    municipal = department_actor(server, "MH-MUNICIPAL")
    step(server, ticket, "sign_for", municipal)
    step(
        server,
        ticket,
        "request_extension",
        municipal,
        days=3,
        reason="需要协调施工队，材料到货要三天",
    )
    dept = sign_in(browser, server, "mh-municipal")
    dept.goto(server.url + f"/ui/tickets/{ticket['number']}")
    facts = dept.locator("#ticket-facts")
    expect(facts).to_contain_text("需要协调施工队")
    expect(facts).to_contain_text("3 个工作日")
    expect(facts).to_contain_text("延期申请待审批")
    expect(dept.locator("#step-request_extension")).to_have_count(0)
    shot(dept, "defect02-extension-pending")
    sup = sign_in(browser, server, "supervisor")
    sup.goto(server.url + "/ui/approvals")
    item = sup.locator(f"[data-number='{ticket['number']}']")
    expect(item).to_contain_text("需要协调施工队")
    expect(item).to_contain_text("3")
    shot(sup, "defect02-approvals")
    item.locator("button.approve").click()
    expect(sup.locator(f"[data-number='{ticket['number']}']")).to_have_count(0)
    expect(sup.locator("#notice")).to_contain_text("批准延期")
    dept.reload()
    expect(dept.locator("#step-request_extension")).to_have_count(1)
    expect(dept.locator("#ticket-history")).to_contain_text("批准延期")
    for page in (dept, sup):
        assert page.console_errors == []
        page.context.close()


# --- 3. a failed step keeps what was typed ---------------------------------------------------


def test_a_failed_step_keeps_the_text_and_says_why(browser: Any, server: Server) -> None:
    ticket = dispatched(server, "湖滨路人行道砖松动", "MH-MUNICIPAL")
    municipal = department_actor(server, "MH-MUNICIPAL")
    step(server, ticket, "sign_for", municipal)
    step(server, ticket, "request_extension", municipal, days=8, reason="第一次延期")
    step(server, ticket, "approve_extension", SUPERVISOR)
    dept = sign_in(browser, server, "mh-municipal")
    dept.goto(server.url + f"/ui/tickets/{ticket['number']}")
    # the usual work first: reply, then more days, then handing it back
    steps = dept.locator("form.step").evaluate_all("(fs) => fs.map((f) => f.dataset.step)")
    assert steps.index("reply") < steps.index("request_extension") < steps.index("return"), steps
    form = dept.locator("form[data-step=request_extension]")
    reason = "需要再延期：施工单位提出要等雨季过后才能铺设，已与市民沟通"
    form.locator("input[name=days]").fill("5")  # only 2 working days are left
    form.locator("textarea[name=reason]").fill(reason)
    dept.click("#step-request_extension")
    expect(dept.locator("form[data-step=request_extension] [role=alert]")).to_contain_text("2")
    expect(dept.locator("form[data-step=request_extension] textarea[name=reason]")).to_have_value(
        reason
    )
    expect(dept.locator("form[data-step=request_extension] input[name=days]")).to_have_value("5")
    shot(dept, "defect03-kept-text")
    dept.reload()  # and after a reload too
    expect(dept.locator("form[data-step=request_extension] textarea[name=reason]")).to_have_value(
        reason
    )
    dept.context.close()


# --- 6. the timeline reads as sentences ------------------------------------------------------


def test_the_history_reads_as_a_timeline_in_the_viewers_language(
    browser: Any, server: Server
) -> None:
    ticket = dispatched(server, "明湖公园东门路灯不亮", "MH-MUNICIPAL")
    municipal = department_actor(server, "MH-MUNICIPAL")
    step(server, ticket, "urge", SUPERVISOR, note="请今天内处理")
    step(server, ticket, "sign_for", municipal)
    step(server, ticket, "return", municipal, reason="该路段属园林局管养，请改派。" * 20)
    for locale, dispatched_to in (
        ("zh-CN", "派单给明湖市市政设施管理处"),
        ("en", "Dispatched to Minghu Municipal Facilities Office"),
    ):
        page = sign_in(browser, server, "supervisor", locale=locale)
        page.goto(server.url + f"/ui/tickets/{ticket['number']}")
        if locale == "en":
            page.click("#lang")  # the language switch
        history = page.locator("#ticket-history")
        expect(history).to_contain_text(dispatched_to)
        text = history.inner_text()
        for raw in ("ticket.", "department_id", "system", "{", "note:"):
            assert raw not in text, (raw, text)
        expect(history).to_contain_text("请今天内处理")
        # a long reason wraps instead of widening the page
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], width
        shot(page, f"defect06-timeline-{locale}")
        if locale == "en":
            page.click("#lang")  # back to the supervisor's own language for the other tests
        page.context.close()


# --- 8. times in the hotline's zone, whatever the browser's -----------------------------------


def test_times_are_shown_in_the_hotlines_zone_and_say_so(browser: Any, server: Server) -> None:
    ticket = dispatched(server, "港湾路积水严重", "MH-MUNICIPAL")
    due = server.rt.local(datetime.fromisoformat(str(ticket["due_at"]))).strftime("%Y-%m-%d %H:%M")
    page = sign_in(browser, server, "supervisor", timezone_id="America/New_York")
    page.goto(server.url + f"/ui/tickets/{ticket['number']}")
    expect(page.locator("#ticket-facts")).to_contain_text(due)
    expect(page.locator("#zone-note")).to_contain_text("Asia/Shanghai")
    page.context.close()
    # the citizens' status page too
    status = new_page(browser, timezone_id="America/New_York")
    status.goto(server.url + f"/status?ticket={ticket['number']}")
    status.fill("#last4", "0000")
    status.click("#submit")
    expect(status.locator("#error")).not_to_be_empty()
    status.context.close()
    sms = server.call(
        receive_message(
            server.rt, Inbound("sms", "phone", "+8613712345678", "荷花社区门口的路灯坏了")
        )
    )
    number = sms.ticket["number"]
    local_created = server.rt.local(datetime.fromisoformat(str(sms.ticket["created_at"]))).strftime(
        "%Y-%m-%d %H:%M"
    )
    status = new_page(browser, timezone_id="America/New_York")
    status.goto(server.url + f"/status?ticket={number}")
    status.fill("#last4", "5678")
    status.click("#submit")
    expect(status.locator("#r-created")).to_have_text(local_created)
    expect(status.locator("body")).to_contain_text("Asia/Shanghai")
    status.context.close()


# --- 10. a supervisor on the portal sees which department, and can pick another -----------------


def test_a_supervisor_sees_the_department_name_and_can_pick_another(
    browser: Any, server: Server
) -> None:
    page = sign_in(browser, server, "supervisor")
    page.goto(server.url + f"/ui/portal?department={dept_id(server, 'MH-WATER')}")
    expect(page.locator("#portal-title")).to_contain_text("明湖市水务集团")
    page.locator("#department-pick").select_option(str(dept_id(server, "MH-MUNICIPAL")))
    expect(page.locator("#portal-title")).to_contain_text("明湖市市政设施管理处")
    assert page.console_errors == []
    page.context.close()


# --- 11. overdue first ---------------------------------------------------------------------------


def test_the_portal_lists_overdue_tickets_first(
    browser: Any, server: Server, clock: ManualClock
) -> None:
    late = dispatched(server, "湖滨北路有人违规占道经营", "MH-PARKS", type="complaint")
    clock.advance(days=2)  # two working days: the sign-for deadline (1 working day) has passed
    on_time = dispatched(server, "公园开放时间咨询", "MH-PARKS", type="inquiry")
    assert on_time["due_at"] < late["due_at"]  # nearer deadline, but not late
    page = sign_in(browser, server, "mh-parks")
    rows = page.locator("tr.ticket")
    numbers = [rows.nth(i).get_attribute("data-number") for i in range(rows.count())]
    assert numbers.index(late["number"]) < numbers.index(on_time["number"]), numbers
    expect(page.locator(f"tr.ticket[data-number='{late['number']}'] .light")).to_have_class(
        re.compile("red")
    )
    page.context.close()


# --- 12. rankings: too few tickets shown apart, never ranked; the period named ----------------


def test_rankings_leave_out_departments_with_too_few_tickets(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "supervisor")
    table = page.locator("#rank-departments")
    expect(page.locator("#period-name")).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    for i in range(table.locator("tbody tr[data-code]").count()):
        row = table.locator("tbody tr[data-code]").nth(i)
        episodes = int(row.locator("td").nth(2).inner_text())
        assert episodes >= server.rt.settings.kpi.min_episodes, row.inner_text()
    apart = page.locator("#unranked-departments")
    expect(apart).to_contain_text("明湖市市政设施管理处")
    shot(page, "defect12-rankings")
    # early in a month, last month is one click away
    page.locator("#period-presets a", has_text="上月").click()
    expect(page.locator("#period-name")).to_contain_text("2026-11-01")
    expect(page.locator("#period-name")).to_contain_text("2026-11-30")
    expect(page.locator("#period-presets a.on")).to_have_text("上月")
    shot(page, "defect12-last-month")
    page.context.close()


# --- 16. a phone's width; the favicon; the sign-in form keeps the username -----------------


def test_portal_and_ticket_fit_a_phone(browser: Any, server: Server) -> None:
    ticket = dispatched(
        server, "荷花社区3栋楼下井盖松动，晚上看不清，容易绊倒行人" * 3, "MH-MUNICIPAL"
    )
    page = sign_in(
        browser, server, "mh-municipal", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    for path in ("/ui/portal", f"/ui/tickets/{ticket['number']}"):
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        header = page.locator("header.top").bounding_box()
        assert header is not None and header["height"] <= 130, (path, header)
        if path == "/ui/portal":  # a card shows no label with nothing after it
            shown = page.locator("#inbox td[data-label]:visible").all_inner_texts()
            assert shown and all(text.strip() for text in shown), shown
        shot(page, "defect16-phone" + path.replace("/", "-"))
    page.context.close()


def test_favicon_and_the_sign_in_form_keeps_the_username(browser: Any, server: Server) -> None:
    page = new_page(browser)
    response = page.goto(server.url + "/favicon.ico")
    assert response is not None and response.status == 200
    page.goto(server.url + "/ui/login")
    page.fill("#username", "agent1")
    page.fill("#password", "wrong password")
    page.click("#submit")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#username")).to_have_value("agent1")
    page.context.close()


_ = timedelta


# --- case work: notes, files, the citizen's contact, the clock ---------------------------


def png(width: int = 8, height: int = 8) -> bytes:
    """A real PNG (red squares), made here."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_case_work_notes_files_contact_and_clock(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    sms_in = server.call(
        receive_message(
            server.rt, Inbound("sms", "phone", "+8613712340001", "荷花社区门口的路灯坏了")
        )
    )
    ticket = sms_in.ticket
    assert ticket is not None and ticket["state"] == "dispatched"
    dept_code = server.rt.directory.by_id[ticket["department_id"]].code.lower()
    page = sign_in(browser, server, dept_code, viewport={"width": 390, "height": 844})
    page.goto(server.url + f"/ui/tickets/{ticket['number']}")
    expect(page.locator("#contact")).to_contain_text("+86137****0001")  # until asked
    expect(page.locator("#contact")).not_to_contain_text("+8613712340001")
    page.click("#show-number")  # audited (tests/integration/test_privacy.py)
    expect(page.locator("#contact a.phone")).to_have_text("+8613712340001")
    expect(page.locator("#sla-clock")).to_contain_text("签收剩余")
    page.fill("#note", "已电话联系市民，明早到现场。")
    page.click("#add-note")
    expect(page.locator("#notes")).to_contain_text("已电话联系市民")
    photo = tmp_path / "lamp.png"
    photo.write_bytes(png())
    page.set_input_files("#file", str(photo))
    page.click("#upload")
    image = page.locator("#files img")
    expect(image).to_have_count(1)
    page.wait_for_load_state("networkidle")  # the card may be fetched again (live)
    page.wait_for_function(
        "(() => { const i = document.querySelector('#files img');"
        " if (!i) return false; i.scrollIntoView(); return i.complete && i.naturalWidth > 0; })()"
    )
    assert page.evaluate("document.querySelector('#files img').naturalWidth") == 8  # shown
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("<script>alert(1)</script>")
    page.set_input_files("#file", str(fake))
    page.click("#upload")
    expect(page.locator("#upload-form [role=alert]")).to_contain_text("PDF")
    expect(page.locator("#files img")).to_have_count(1)  # nothing added
    shot(page, "casework-phone")
    src = image.get_attribute("src")
    assert src is not None
    page.context.close()
    # another department sees neither the ticket nor its file
    other = sign_in(browser, server, "mh-water")
    assert other.goto(server.url + src).status == 404
    assert other.goto(server.url + f"/ui/tickets/{ticket['number']}").status == 404
    other.context.close()

    # the note never reaches the citizen
    async def outbound() -> list[str]:
        from sqlalchemy import select

        from callcenter.store.tables import messages

        async with server.rt.db.read() as conn:
            rows = await conn.execute(select(messages.c.body).where(messages.c.direction == "out"))
            return [r.body for r in rows]

    assert not any("已电话联系市民" in body for body in server.call(outbound()))


# --- 4. a missed offer comes back; picking from the queue; a supervisor takes over ---------------


def test_a_missed_offer_is_offered_again_and_a_waiting_conversation_can_be_picked(
    browser: Any, server: Server, clock: ManualClock
) -> None:
    agent = sign_in(browser, server, "agent1")
    agent.click("#presence-available")
    expect(agent.locator("#presence-available")).to_have_class(re.compile("on"))
    agent.evaluate(
        "window.__alerts = [];"
        " document.body.addEventListener('hotline-alert', (e) => window.__alerts.push(e.detail))"
    )
    first = server.call(
        receive_message(server.rt, Inbound("sms", "phone", "+8613700000401", "你好，有人吗"))
    )
    offer = agent.locator(f".offer[data-conversation='{first.conversation_id}']")
    expect(offer).to_have_count(1)
    clock.advance(seconds=45)  # the offer runs out: the agent is set away
    server.call(acd.distribute(server.rt))  # what the ACD's loop runs at its next check
    expect(offer).to_have_count(0)
    expect(agent.locator("#presence-away")).to_have_class(re.compile("on"))
    clock.advance(seconds=5)
    agent.click("#presence-available")  # back: the conversation is offered again
    expect(agent.locator("#presence-available")).to_have_class(re.compile("on"))
    server.call(acd.distribute(server.rt))
    expect(offer).to_have_count(1)
    assert agent.evaluate("window.__alerts.length") >= 1  # sound, title, notification
    offer.locator("button.accept").click()
    expect(agent.locator("#messages .msg.in")).to_have_count(1)

    # another agent, busy with other work, takes the next one from the queue table
    picker = sign_in(browser, server, "agent2")
    picker.click("#presence-busy")
    expect(picker.locator("#presence-busy")).to_have_class(re.compile("on"))
    agent.click("#presence-busy")  # the first agent takes no more
    second = server.call(
        receive_message(server.rt, Inbound("sms", "phone", "+8613700000402", "你好，请问一下"))
    )
    row = picker.locator(f"#queue tr[data-conversation='{second.conversation_id}']")
    expect(row).to_have_count(1)
    for part in ("td.waited", "button.pick"):  # one line each in the desk's narrow column
        lines = row.locator(part).evaluate(
            "(node) => { const r = document.createRange(); r.selectNodeContents(node);"
            " return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"
        )
        assert lines == 1, (part, lines)
    row.locator("button.pick").click()
    expect(picker.locator("#conversation-title")).to_contain_text(f"#{second.conversation_id}")
    shot(picker, "defect04-picked")

    # the supervisor takes that conversation over, and the audit says from whom
    sup = sign_in(browser, server, "supervisor")
    sup.goto(server.url + "/ui/desk")
    held = sup.locator(f"#others li[data-conversation='{second.conversation_id}']")
    expect(held).to_contain_text("王磊")
    held.locator("button.take-over").click()
    expect(sup.locator("#conversation-title")).to_contain_text(f"#{second.conversation_id}")
    expect(picker.locator(f"#mine [data-id='{second.conversation_id}']")).to_have_count(0)

    async def take_over_audit() -> Any:
        from sqlalchemy import select

        from callcenter.store.tables import audit_events

        async with server.rt.db.read() as conn:
            return (
                await conn.execute(
                    select(audit_events).where(
                        audit_events.c.entity_type == "conversation",
                        audit_events.c.entity_id == second.conversation_id,
                    )
                )
            ).all()

    found = server.call(take_over_audit())
    (event,) = [e for e in found if e.action == "conversation.take_over"]
    assert event.actor_role == "supervisor" and event.before["agent_id"] != event.after["agent_id"]
    for page in (agent, picker, sup):
        assert page.console_errors == []
        page.click("#presence-away") if page.locator("#presence-away").count() else None
        page.context.close()


# --- merge: the possible duplicates are offered beside the field ---------------------------------


def test_a_repeated_ticket_is_merged_into_the_one_it_repeats(browser: Any, server: Server) -> None:
    first, second = (
        server.call(
            receive_message(server.rt, Inbound("sms", "phone", "+8613700000777", text))
        ).ticket
        for text in ("超市卖过期食品，希望处理", "那家超市还在卖过期食品，希望尽快处理")
    )
    assert first["state"] == second["state"] == "new"
    page = sign_in(browser, server, "agent1")
    page.goto(server.url + f"/ui/tickets/{second['number']}")
    candidates = page.locator("#merge-list li[data-number]")
    expect(candidates).to_have_count(1)
    expect(candidates.first).to_contain_text(first["number"])
    shot(page, "merge-candidates")
    page.fill("form[data-step=merge] input[name=into_ticket_id]", first["number"])
    page.click("#step-merge")
    expect(page.locator("#ticket-facts")).to_contain_text(first["number"])
    expect(page.locator("#ticket-history")).to_contain_text(first["number"])
    page.goto(server.url + "/ui/dispatch")
    expect(page.locator(f"tr.ticket[data-number='{second['number']}']")).to_have_count(0)
    expect(page.locator(f"tr.ticket[data-number='{first['number']}']")).to_have_count(1)
    assert page.console_errors == []
    page.context.close()


# --- the dispatch desk: a returned ticket, with why; a ticket cancelled with a reason -----------


def test_a_returned_ticket_waits_at_the_desk_with_why_and_one_is_cancelled(
    browser: Any, server: Server, clock: ManualClock
) -> None:
    back = dispatched(server, "明湖公园里的树枝断了挂在路灯上", "MH-MUNICIPAL")
    step(server, back, "sign_for", department_actor(server, "MH-MUNICIPAL"))
    clock.advance(hours=3)  # the department keeps it a while before handing it back
    step(
        server,
        back,
        "return",
        department_actor(server, "MH-MUNICIPAL"),
        reason="公园内树木归园林局管养",
    )
    junk = new_ticket(server, "测试测试")
    page = sign_in(browser, server, "supervisor")
    page.goto(server.url + "/ui/dispatch")
    row = page.locator(f"tr.ticket[data-number='{back['number']}']")
    expect(row).to_contain_text("公园内树木归园林局管养")
    expect(row).to_contain_text("已退单")
    expect(row.locator("[data-since]")).to_have_text(re.compile(r"^\d+ 秒$"))  # since it came back
    shot(page, "dispatch-returned")
    page.goto(server.url + f"/ui/tickets/{junk['number']}")
    page.fill("form[data-step=cancel] textarea[name=reason]", "市民误发的测试短信")
    page.click("#step-cancel")
    expect(page.locator("#ticket-facts")).to_contain_text("已撤销")
    expect(page.locator("#ticket-history")).to_contain_text("市民误发的测试短信")
    page.goto(server.url + "/ui/dispatch")
    expect(page.locator(f"tr.ticket[data-number='{junk['number']}']")).to_have_count(0)
    row = page.locator(f"tr.ticket[data-number='{back['number']}']")
    row.locator("input[type=checkbox]").check()
    page.select_option("#bulk-department", str(dept_id(server, "MH-PARKS")))
    page.click("#dispatch-selected")
    expect(page.locator(f"tr.ticket[data-number='{back['number']}']")).to_have_count(0)
    page.goto(server.url + f"/ui/tickets/{back['number']}")
    expect(page.locator("#ticket-facts")).to_contain_text("明湖市园林绿化局")
    assert page.console_errors == []
    page.context.close()


# --- a new dispatch on the portal: the row comes live, with an alert ----------------------------


def test_a_new_dispatch_reaches_the_portal_live_and_alerts(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "mh-parks", viewport={"width": 390, "height": 844})
    expect(page.locator("#live")).to_have_text("实时连接正常")
    page.evaluate(
        "window.__alerts = [];"
        " document.body.addEventListener('hotline-alert', (e) => window.__alerts.push(e.detail))"
    )
    ticket = dispatched(server, "明湖公园东门的长椅坏了", "MH-PARKS")
    expect(page.locator(f"tr.ticket[data-number='{ticket['number']}']")).to_have_count(1)
    page.wait_for_function("window.__alerts.length > 0")
    assert page.evaluate("window.__alerts[0].body") == ticket["number"]
    # (the count in the tab's title is for a tab out of focus, which headless Chromium
    # never is)
    page.context.close()
