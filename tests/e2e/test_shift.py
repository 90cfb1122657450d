"""A whole shift of a 12345 center in real browsers, one screenshot a step
(``build/screenshots/shift-*.png``).

Citizens write on the web chat and by SMS; two agents answer, one misses an offer and it
is offered again to the other; a ticket is opened from the chat; the dispatcher sends an
SMS ticket that routing could not place from the dispatch desk; the department signs
for it and asks for more days; the supervisor approves in the approvals queue; the
department replies; the desk closes it; the citizen answers the callback survey "不满意"
by SMS, which reopens it; the supervisor finds it in the ticket search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.clock import ManualClock
from callcenter.store.tables import messages, tickets
from tests.e2e.browser_kit import Server, chromium, new_page, running_server, shot, sign_in

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

START = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)  # Tuesday 09:30 in Shanghai
SHOP = "+8613700000888"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("shift"), clock=clock) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def ticket_row(server: Server, number: str) -> Any:
    async def read() -> Any:
        async with server.rt.db.read() as conn:
            return (await conn.execute(select(tickets).where(tickets.c.number == number))).one()

    return server.call(read())


def last_text_to(server: Server, address: str) -> str:
    async def read() -> str:
        from callcenter.store.tables import conversations

        async with server.rt.db.read() as conn:
            row = (
                await conn.execute(
                    select(messages.c.body)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(conversations.c.address == address, messages.c.direction == "out")
                    .order_by(messages.c.id.desc())
                )
            ).first()
        return str(row.body) if row else ""

    return server.call(read())


def test_a_whole_shift(browser: Any, server: Server, clock: ManualClock) -> None:
    step = iter(range(1, 100))

    def snap(page: Any, what: str) -> None:
        shot(page, f"shift-{next(step):02d}-{what}")
        assert page.console_errors == [], page.console_errors

    # 09:30 two agents start their shift
    agent1 = sign_in(browser, server, "agent1")
    agent2 = sign_in(browser, server, "agent2")
    for agent in (agent1, agent2):
        agent.click("#presence-available")
        expect(agent.locator("#presence-available")).to_have_class(re.compile("on"))
    snap(agent1, "agent-available")

    # a citizen opens the web chat
    citizen = new_page(browser)
    citizen.goto(server.url + "/chat/")
    citizen.click("#hc-open")
    citizen.fill("#hc-name", "赵先生")
    citizen.fill("#hc-phone", "13812340009")
    citizen.fill("#hc-input", "你好，我想反映一下")
    citizen.click("#hc-send")
    expect(citizen.locator("#hc-messages .msg.mine:not(.pending)")).to_have_count(1)
    snap(citizen, "citizen-chat")

    # it is offered to one agent, who misses it; it is offered to the other
    def offered(page: Any) -> Any:
        return page.locator(".offer")

    for _ in range(100):  # one of the two gets it (the longest idle)
        if offered(agent1).count() or offered(agent2).count():
            break
        agent1.wait_for_timeout(100)
    missed, taker = (agent1, agent2) if offered(agent1).count() else (agent2, agent1)
    expect(offered(missed)).to_have_count(1)
    snap(missed, "offer")
    clock.advance(seconds=35)
    server.call(acd.distribute(server.rt))
    expect(offered(missed)).to_have_count(0)
    expect(missed.locator("#presence-away")).to_have_class(re.compile("on"))
    expect(offered(taker)).to_have_count(1)
    snap(taker, "offered-again")
    offered(taker).locator("button.accept").click()
    expect(taker.locator("#messages .msg.in")).to_have_count(1)
    taker.fill("#reply", "您好，请讲，我在听。")
    taker.click("#send")
    expect(citizen.locator("#hc-messages .msg.theirs .body").last).to_have_text(
        "您好，请讲，我在听。"
    )
    citizen.fill("#hc-input", "荷花社区门口的路灯坏了，晚上很黑")
    citizen.click("#hc-send")
    expect(taker.locator("#messages .msg.in")).to_have_count(2)
    snap(taker, "conversation")

    # a ticket from the chat: routed to the municipal office
    taker.click("#open-ticket")
    expect(taker.locator("#suggestion")).to_contain_text("路灯故障")
    taker.locator("#map path.grid-cell").first.click()
    snap(taker, "ticket-form")
    taker.click("#t-submit")
    expect(taker.locator("#notice")).to_contain_text("已创建工单")
    lamp = re.search(r"\d{8}-\d{4}", taker.locator("#notice").inner_text())
    assert lamp is not None
    expect(taker.locator("#wrap-up")).to_have_value("ticket_created")
    taker.click("#end")
    expect(taker.locator("#pick")).to_be_visible()
    snap(taker, "wrapped-up")

    # an SMS that routing cannot place waits at the dispatch desk
    sms = server.call(
        receive_message(server.rt, Inbound("sms", "phone", SHOP, "超市卖过期食品，希望处理"))
    )
    shop = sms.ticket["number"]
    assert sms.ticket["state"] == "new"
    dispatcher = sign_in(browser, server, "supervisor")
    dispatcher.goto(server.url + "/ui/dispatch")
    row = dispatcher.locator(f"tr.ticket[data-number='{shop}']")
    expect(row).to_have_count(1)
    row.locator("input[type=checkbox]").check()
    market = next(d for d in server.rt.directory.departments if d.code == "HB-SJ")
    dispatcher.select_option("#bulk-department", str(market.id))
    snap(dispatcher, "dispatch-desk")
    dispatcher.click("#dispatch-selected")
    expect(dispatcher.locator("#notice")).to_contain_text("已派出 1 件")
    expect(dispatcher.locator(f"tr.ticket[data-number='{shop}']")).to_have_count(0)

    # the market regulation bureau signs for it and asks for three more days
    dept = sign_in(browser, server, "hb-sj", viewport={"width": 390, "height": 844})
    expect(dept.locator(f"tr.ticket[data-number='{shop}']")).to_have_count(1)
    snap(dept, "portal-phone")
    dept.locator(f"tr.ticket[data-number='{shop}'] a").click()
    dept.click("#step-sign_for")
    expect(dept.locator("#notice")).to_contain_text("签收")
    dept.fill("#note", "已电话联系市民，约定明天上午到超市检查。")
    dept.click("#add-note")
    expect(dept.locator("#notes")).to_contain_text("已电话联系市民")
    form = dept.locator("form[data-step=request_extension]")
    form.locator("input[name=days]").fill("3")
    form.locator("textarea[name=reason]").fill("需要抽检送样，检测结果三个工作日后才出。")
    dept.click("#step-request_extension")
    expect(dept.locator("#ticket-facts")).to_contain_text("延期申请待审批")
    snap(dept, "extension-requested")

    # the supervisor approves it in the approvals queue, the history beside it
    dispatcher.goto(server.url + "/ui/approvals")
    item = dispatcher.locator(f"article[data-number='{shop}']")
    expect(item).to_contain_text("抽检送样")
    item.locator("summary").click()
    expect(item.locator(".beside")).to_contain_text("签收")
    snap(dispatcher, "approvals")
    item.locator("button.approve").click()
    expect(dispatcher.locator("#notice")).to_contain_text("批准延期")

    # the department replies; the desk closes it
    dept.reload()
    dept.fill(
        "form[data-step=reply] textarea[name=text]",
        "经检查，该超市下架过期食品并罚款，已告知市民。",
    )
    dept.click("#step-reply")
    expect(dept.locator("#ticket-facts")).to_contain_text("下架过期食品")
    snap(dept, "replied")
    dispatcher.goto(server.url + f"/ui/tickets/{shop}")
    dispatcher.click("#step-close")
    expect(dispatcher.locator("#ticket-facts")).to_contain_text("已办结")

    # the callback survey goes out; the citizen is not satisfied: the ticket is reopened
    clock.advance(hours=3)
    assert server.rt.runner is not None
    server.call(server.rt.runner.drain())
    assert "满意" in last_text_to(server, SHOP)
    server.call(receive_message(server.rt, Inbound("sms", "phone", SHOP, "不满意")))
    server.call(server.rt.runner.drain())
    assert ticket_row(server, shop).state == "dispatched"
    assert ticket_row(server, shop).reopen_count == 1

    # the supervisor finds it in the search, by the citizen's number
    dispatcher = sign_in(browser, server, "supervisor")  # three hours later: a new session
    dispatcher.goto(server.url + "/ui/tickets")
    dispatcher.fill("#s-phone", SHOP[3:])
    dispatcher.click("#s-submit")
    found = dispatcher.locator(f"#search-results tr.ticket[data-number='{shop}']")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("已派单")
    snap(dispatcher, "search")
    found.locator("a").click()
    expect(dispatcher.locator("#ticket-history")).to_contain_text("重办")
    snap(dispatcher, "reopened-ticket")

    # the wallboard tells the day
    dispatcher.goto(server.url + "/ui/wallboard")
    expect(dispatcher.locator("#w-opened")).to_have_text("2")
    expect(dispatcher.locator("#chart-days")).to_be_visible()
    snap(dispatcher, "wallboard")
    dispatcher.goto(server.url + "/ui/map")
    expect(dispatcher.locator("#city-map path.grid-cell").first).to_be_visible()
    snap(dispatcher, "map")
    assert ticket_row(server, lamp.group(0)).state == "dispatched"
    for page in (agent1, agent2, citizen, dispatcher, dept):
        page.context.close()
