"""The desk and the public pages in a real Chromium: the defects found when they were
tried as a new user would (message times, the history after a direct answer, titles and
types, the language switch, limits said in plain words, the command line's links)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.domain.workflow import Actor, Role, Step
from callcenter.store.tables import tickets
from tests.e2e.browser_kit import Server, chromium, new_page, running_server, shot, sign_in
from tests.e2e.test_cli import free_port, run, serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
LONG = "长" * 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("desk")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def sms(server: Server, phone: str, text: str) -> Any:
    return server.call(receive_message(server.rt, Inbound("sms", "phone", phone, text)))


def take_offer(browser: Any, server: Server, user: str, phone: str, *texts: str) -> Any:
    """``user`` at the desk, available; a citizen writes ``texts``; the offer is accepted."""
    page = sign_in(browser, server, user)
    page.click("#presence-available")
    expect(page.locator("#presence-available")).to_have_class(re.compile("on"))
    for text in texts:
        sms(server, phone, text)
    page.locator(".offer button.accept").click()
    expect(page.locator("#messages .msg.in")).to_have_count(len(texts))
    return page


def end_and_leave(page: Any) -> None:
    page.click("#end")
    expect(page.locator("#pick")).to_be_visible()
    page.click("#presence-away")
    page.context.close()


async def ticket_row(server: Server, number: str) -> Any:
    async with server.rt.db.read() as conn:
        return (await conn.execute(select(tickets).where(tickets.c.number == number))).one()


# --- 5. message times; the history after a direct answer ---------------------------------------


def test_outbound_messages_show_their_time_and_a_direct_answer_updates_the_history(
    browser: Any, server: Server
) -> None:
    page = take_offer(browser, server, "agent1", "+8613700000051", "你好，请问公积金怎么提取？")
    page.fill("#reply", "您好，请稍等，我为您查询。")
    page.click("#send")
    out = page.locator("#messages .msg.out").last
    expect(out.locator(".body")).to_have_text("您好，请稍等，我为您查询。")
    expect(out.locator("time")).to_have_text(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"))
    page.click("#open-answer")
    page.fill("#a-answer", "携带身份证到市公积金中心办理，也可在网上办理。")
    page.click("#a-submit")
    expect(page.locator("#notice")).to_contain_text("已创建工单")
    number = re.search(r"\d{8}-\d{4}", page.locator("#notice").inner_text())
    assert number is not None
    expect(page.locator("#history")).to_contain_text(number.group(0))  # without a reload
    expect(page.locator("#wrap-up")).to_have_value("direct_answer")
    shot(page, "defect05-desk-direct-answer")
    assert page.console_errors == []
    end_and_leave(page)


# --- 7. titles and types -----------------------------------------------------------------------


def test_the_ticket_form_has_a_title_and_a_greeting_is_neither_title_nor_type(
    browser: Any, server: Server
) -> None:
    page = take_offer(
        browser, server, "agent2", "+8613700000071", "你好，我想咨询一下", "荷花社区门口的路灯坏了"
    )
    page.click("#open-ticket")
    expect(page.locator("#t-title")).to_be_visible()
    page.click("#t-submit")
    expect(page.locator("#notice")).to_contain_text("已创建工单")
    first = re.search(r"\d{8}-\d{4}", page.locator("#notice").inner_text())
    assert first is not None
    row = server.call(ticket_row(server, first.group(0)))
    assert row.title == "荷花社区门口的路灯坏了" and row.type == "help", (row.title, row.type)
    page.click("#open-ticket")
    page.fill("#t-title", "荷花社区路灯不亮（第二盏）")
    page.click("#t-submit")
    expect(page.locator("#notice")).not_to_contain_text(first.group(0))
    second = re.search(r"\d{8}-\d{4}", page.locator("#notice").inner_text())
    assert second is not None
    assert server.call(ticket_row(server, second.group(0))).title == "荷花社区路灯不亮（第二盏）"
    end_and_leave(page)


# --- 9. the language switch changes everything on the page ---------------------------------------


def test_the_language_switch_changes_the_live_indicator_and_the_notices(
    browser: Any, server: Server
) -> None:
    agent = Actor(id=None, role=Role.AGENT, name="test")
    ticket = server.call(
        create_ticket(
            server.rt, TicketDraft(description="湖滨路路灯不亮"), actor=agent, dispatch=True
        )
    )
    page = sign_in(browser, server, "agent3", locale="en")  # agent3 reads English
    page.goto(server.url + f"/ui/tickets/{ticket['number']}")
    expect(page.locator("#live")).to_have_text("Live")
    page.click("#step-urge")
    expect(page.locator("#notice")).to_contain_text("Done")
    page.click("#lang")
    expect(page.locator("#live")).to_have_text("实时连接正常")
    assert "Done" not in page.locator("#notices").inner_text()
    expect(page.locator("#ticket-facts")).to_contain_text("已派单")  # the ticket itself too
    page.click("#lang")
    expect(page.locator("#live")).to_have_text("Live")
    page.context.close()


# --- 14. limits said in plain words, nothing cut -------------------------------------------------


def test_long_texts_are_refused_in_plain_words_and_never_cut(browser: Any, server: Server) -> None:
    page = take_offer(browser, server, "agent1", "+8613700000141", "你好")
    page.fill("#reply", LONG)
    assert len(page.locator("#reply").input_value()) == 20_000  # not cut at 4000
    expect(page.locator("[data-count-for=reply]")).to_contain_text("超出 16000 字")
    with page.expect_response(re.compile(r"/messages$")) as answer:
        page.click("#send")
    assert answer.value.status == 413
    alert = page.locator("#composer [role=alert]")
    expect(alert).to_contain_text("4000")
    for code in ("string_too_long", "body", "message_too_long", "请求无效"):
        assert code not in alert.inner_text()
    assert len(page.locator("#reply").input_value()) == 20_000  # still there, to shorten
    shot(page, "defect14-desk-too-long")
    page.fill("#reply", "")
    end_and_leave(page)

    # the API says the same, with 413 and the field's name as a person knows it
    request = page.context.browser.new_context().request
    ticket = server.call(
        create_ticket(
            server.rt,
            TicketDraft(description="港湾路井盖丢失"),
            actor=Actor(id=None, role=Role.AGENT, name="t"),
            dispatch=True,
        )
    )
    dept_code = server.rt.directory.by_id[ticket["department_id"]].code.lower()
    server.call(
        take_step(
            server.rt,
            ticket["id"],
            Step.SIGN_FOR,
            actor=Actor(
                None, Role.DEPARTMENT, "d", department_id=ticket["department_id"], locale="zh-CN"
            ),
        )
    )
    reply = request.post(
        f"{server.url}/api/tickets/{ticket['number']}/reply?lang=zh-CN",
        data=json.dumps({"text": LONG}, ensure_ascii=False),
        headers={"Authorization": f"Bearer demo-{dept_code}", "Content-Type": "application/json"},
    )
    assert reply.status == 413
    message = reply.json()["error"]["message"]
    assert "4000" in message and "text" not in message and "string_too_long" not in message, message

    # the citizens' chat: a counter instead of a silent cut, and a word for a huge frame
    citizen = new_page(browser)
    citizen.goto(server.url + "/chat/")
    citizen.click("#hc-open")
    citizen.fill("#hc-input", LONG)
    assert len(citizen.locator("#hc-input").input_value()) == 20_000
    expect(citizen.locator("#hc-counter")).to_contain_text("16000")
    citizen.click("#hc-send")
    expect(citizen.locator("#hc-messages .msg.mine")).to_have_count(0)  # nothing went
    shot(citizen, "defect14-widget-too-long")
    frame = citizen.evaluate(
        """async (text) => {
          const ws = new WebSocket(location.origin.replace("http", "ws") + "/chat/ws");
          const frames = [];
          await new Promise((ok) => { ws.onopen = ok; });
          ws.onmessage = (m) => frames.push(JSON.parse(m.data));
          ws.send(JSON.stringify({ type: "hello", locale: "zh-CN" }));
          ws.send(JSON.stringify({ type: "message", id: "big", text }));
          for (let i = 0; i < 50 && !frames.some((f) => f.type === "error"); i++) {
            await new Promise((ok) => setTimeout(ok, 100));
          }
          const error = frames.find((f) => f.type === "error") || null;
          return { error, open: ws.readyState === 1 };
        }""",
        LONG,
    )
    assert frame["open"] and frame["error"] is not None, frame
    assert "4000" in frame["error"]["message"], frame
    citizen.context.close()

    # the status page names the field as a citizen knows it
    status = new_page(browser)
    status.goto(server.url + "/status")
    status.fill("#number", "abc")
    status.fill("#last4", "1234")
    status.click("#submit")
    expect(status.locator("#error")).to_contain_text("工单号")
    assert "number" not in status.locator("#error").inner_text()
    status.context.close()


# --- 15. the command line from another folder; links from the running server -----------------


def test_the_command_line_says_where_the_database_is_and_links_to_the_running_server(
    browser: Any, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = run(elsewhere, "simulate", "sms", "--from", "13700000001", "小区路灯坏了", check=False)
    assert lost.returncode == 2
    assert "Traceback" not in lost.stderr and len(lost.stderr.strip().splitlines()) == 1
    assert "callcenter migrate" in lost.stderr, lost.stderr
    assert not (elsewhere / "data").exists()  # nothing made by accident

    home = tmp_path / "hotline"
    home.mkdir()
    run(home, "migrate")
    run(home, "demo-data", "--tickets", "0", "--days", "1")
    port = free_port()
    assert port != 8080
    served = serve(home, port)
    try:
        sent = run(home, "simulate", "sms", "--from", "13700000015", "荷花社区门口的路灯坏了")
        link = re.search(r"https?://\S+/s/\d{8}-\d{4}", sent.stdout)
        assert link is not None, sent.stdout
        assert link.group(0).startswith(f"http://127.0.0.1:{port}/"), link.group(0)
        page = new_page(browser)
        page.goto(link.group(0))  # the citizen follows the link in the SMS
        expect(page.locator("#number")).to_have_value(link.group(0).rsplit("/", 1)[1])
        page.context.close()
        # a text sent from the command line reaches the running server's pages live
        # an agent: on a server as it comes, supervisors sign in with a second factor too
        desk = sign_in(browser, SimpleNamespace(url=f"http://127.0.0.1:{port}"), "agent1")
        desk.goto(f"http://127.0.0.1:{port}/ui/dispatch")
        expect(desk.locator("#dispatch-list")).to_be_visible()
        sent = run(home, "simulate", "sms", "--from", "13700000016", "超市卖过期食品，希望处理")
        number = re.search(r"\d{8}-\d{4}", sent.stdout)
        assert number is not None, sent.stdout
        expect(desk.locator(f"tr.ticket[data-number='{number.group(0)}']")).to_have_count(1)
        desk.context.close()
    finally:
        served.terminate()
        served.wait(10)


# --- transfer and wrap-up codes ------------------------------------------------------------------


def test_a_conversation_is_transferred_to_a_colleague_and_ended_with_a_wrap_up_code(
    browser: Any, server: Server
) -> None:
    async def agent_ids() -> dict[str, int]:
        from callcenter.store.tables import users

        async with server.rt.db.read() as conn:
            rows = await conn.execute(select(users.c.username, users.c.id))
            return {r.username: r.id for r in rows}

    ids = server.call(agent_ids())
    gone = sign_in(browser, server, "agent1")
    gone.click("#presence-away")  # signed in once today, gone for lunch
    expect(gone.locator("#presence-away")).to_have_class(re.compile("on"))
    gone.context.close()
    colleague = sign_in(browser, server, "agent3", locale="en")  # reads English
    colleague.click("#presence-busy")  # at the desk, taking no offers
    expect(colleague.locator("#presence-busy")).to_have_class(re.compile("on"))
    page = take_offer(browser, server, "agent2", "+8613700000191", "你好，有人在吗")
    conversation = page.locator("#conversation-body").get_attribute("data-id")
    # agent1 is away: the transfer is refused in plain words and the conversation stays
    page.select_option("#transfer-target", f"a:{ids['agent1']}")
    expect(page.locator(f"#transfer-target option[value='a:{ids['agent1']}']")).to_contain_text(
        "离开"
    )
    page.click("#transfer")
    expect(page.locator("#notices")).to_contain_text("不在线")
    expect(page.locator(f"#mine [data-id='{conversation}']")).to_have_count(1)
    page.select_option("#transfer-target", f"a:{ids['agent3']}")
    page.click("#transfer")
    expect(page.locator("#notice")).to_contain_text("会话已转接")
    expect(page.locator(f"#mine [data-id='{conversation}']")).to_have_count(0)
    shot(page, "desk-transferred")
    held = colleague.locator(f"#mine [data-id='{conversation}']")
    expect(held).to_have_count(1)  # live, without a reload
    held.click()
    expect(colleague.locator("#messages .msg.in")).to_have_count(1)
    colleague.select_option("#wrap-up", "information")
    colleague.click("#end")
    expect(colleague.locator("#notice")).to_contain_text("ended")

    async def entries() -> list[Any]:
        from callcenter.store.tables import queue_entries

        async with server.rt.db.read() as conn:
            rows = await conn.execute(
                select(
                    queue_entries.c.agent_id, queue_entries.c.outcome, queue_entries.c.wrap_up_code
                )
                .where(queue_entries.c.conversation_id == int(str(conversation)))
                .order_by(queue_entries.c.id)
            )
            return [tuple(r) for r in rows]

    assert server.call(entries()) == [
        (ids["agent2"], "transferred", None),
        (ids["agent3"], "handled", "information"),
    ]
    assert [e for e in page.console_errors if "409" not in e] == []  # the refused transfer
    assert colleague.console_errors == []
    for p in (page, colleague):
        p.click("#presence-away")
        p.context.close()
