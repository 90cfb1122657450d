"""Real Chromium (Debian's, driven by Playwright) against the real server on a real port.

A citizen chats in the widget; an agent in another browser context gets the offer,
accepts, replies and opens a ticket from the conversation; the department signs for
it and replies; the supervisor's wallboard counts change without a reload; the
language switch changes the texts; a message carrying HTML is shown as text and runs
nothing.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, create_app
from callcenter.config import Settings
from callcenter.runtime import Runtime
from callcenter.store.migrate import upgrade
from callcenter.store.tables import tickets
from tests.conftest import load_test_city
from tests.e2e.test_cli import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<img src=x onerror=alert(1)>"


class Server:
    """The hotline in a thread with its own event loop, on a free port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        db = self.db = tmp / "callcenter.db"
        self.settings = Settings(
            data_dir=tmp / "data",
            database_url=f"sqlite+aiosqlite:///{db}",
            port=self.port,
            channels=["channels.simulated:SimulatedSms", "channels.webchat:WebChat"],
            media={"janus": "off"},
        )
        self.loop = asyncio.new_event_loop()
        self.rt: Runtime
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        await upgrade(f"sqlite+aiosqlite:///{self.db}")
        self.rt = build_runtime(self.settings)
        app = create_app(self.settings, runtime=self.rt)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        await load_test_city(self.rt)

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    srv = Server(tmp)
    srv.thread.start()
    assert srv.ready.wait(60)
    yield srv
    srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def sign_in(browser: Any, server: Server, username: str, *, locale: str = "zh-CN") -> Any:
    context = browser.new_context(locale=locale)
    context.set_default_timeout(15000)
    page = context.new_page()
    page.goto(server.url + "/ui/login")
    page.fill("#username", username)
    page.fill("#password", "demo12345")
    page.click("#submit")
    page.wait_for_load_state("networkidle")
    assert "/ui/login" not in page.url, page.content()
    return page


def test_chat_offer_ticket_department_and_live_wallboard(browser: Any, server: Server) -> None:
    dialogs: list[str] = []
    agent = sign_in(browser, server, "agent1")
    agent.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert agent.url.endswith("/ui/desk")
    agent.click("#presence-available")
    expect(agent.locator("#presence-available")).to_have_class(re.compile("on"))

    wall = sign_in(browser, server, "supervisor")
    assert wall.url.endswith("/ui/wallboard")
    expect(wall.locator("#live")).to_have_attribute("data-state", "connected")
    opened_before = int(wall.locator("#w-opened").inner_text())
    wall.evaluate("window.__still_here = true")

    # the same person wrote by SMS last week: the desk shows it beside the chat
    from callcenter.actions.intake import Inbound, receive_message

    sms = server.call(
        receive_message(server.rt, Inbound("sms", "phone", "+8613812345678", "小区垃圾没人清运"))
    )
    assert sms.ticket is not None

    citizen_context = browser.new_context(locale="zh-CN")
    citizen_context.set_default_timeout(15000)
    citizen = citizen_context.new_page()
    citizen.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    citizen.goto(server.url + "/chat/")
    citizen.click("#hc-open")
    citizen.fill("#hc-name", "王女士")
    citizen.fill("#hc-phone", "13812345678")
    citizen.fill("#hc-input", f"你好 {XSS}")
    citizen.click("#hc-send")
    expect(citizen.locator("#hc-messages .msg.mine:not(.pending)")).to_have_count(1)

    # the agent is offered the chat, accepts, and sees the HTML as text
    offer = agent.locator(".offer")
    expect(offer).to_have_count(1)
    offer.locator("button.accept").click()
    message = agent.locator("#messages .msg.in .body").first
    expect(message).to_have_text(f"你好 {XSS}")
    assert agent.locator("#messages img").count() == 0
    assert citizen.locator("#hc-messages img").count() == 0
    expect(citizen.locator("#hc-status")).to_contain_text("坐席")
    expect(agent.locator("#history")).to_contain_text(sms.ticket["number"])  # SMS, same phone

    agent.fill("#reply", "您好，请问路灯在哪个位置？")
    agent.click("#send")
    expect(citizen.locator("#hc-messages .msg.theirs .body").last).to_have_text(
        "您好，请问路灯在哪个位置？"
    )
    citizen.fill("#hc-input", "荷花社区门口的路灯坏了")
    citizen.click("#hc-send")
    expect(agent.locator("#messages .msg.in")).to_have_count(2)

    # a ticket from the conversation: text pre-filled, routing suggested, a point on the map
    agent.click("#open-ticket")
    expect(agent.locator("#t-description")).to_have_value(re.compile("路灯坏了"))
    expect(agent.locator("#suggestion")).to_contain_text("路灯故障")
    agent.locator("#map polygon").first.click()
    expect(agent.locator("#t-point")).not_to_be_empty()
    agent.click("#t-submit")
    expect(agent.locator("#notice")).to_contain_text("已创建工单")
    number = re.search(r"\d{8}-\d{4}", agent.locator("#notice").inner_text())
    assert number is not None
    expect(citizen.locator("#hc-messages .msg.theirs .body").last).to_contain_text(number.group(0))

    # the wallboard counted it, live, on the same page
    expect(wall.locator("#w-opened")).to_have_text(str(opened_before + 1))
    assert wall.evaluate("window.__still_here") is True

    # the department signs for it and replies
    async def department_of(ref: str) -> str:
        async with server.rt.db.read() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.number == ref))).one()
        return server.rt.directory.by_id[row.department_id].code

    code = server.call(department_of(number.group(0)))
    dept = sign_in(browser, server, code.lower())
    assert dept.url.endswith("/ui/portal")
    row = dept.locator(f"tr.ticket[data-number='{number.group(0)}']")
    expect(row).to_have_count(1)
    to_sign = int(dept.locator("#count-to-sign").inner_text())
    assert to_sign >= 1
    row.locator("a").click()
    dept.click("#step-sign_for")
    expect(dept.locator("#notice")).to_contain_text("签收")
    dept.fill("form[data-step=reply] textarea[name=text]", "已更换灯泡，恢复照明。")
    dept.click("#step-reply")
    expect(dept.locator("#ticket-facts")).to_contain_text("已更换灯泡")
    expect(dept.locator("#ticket-history li")).to_have_count(4)  # create, dispatch, sign, reply

    # the agent wraps up; the wallboard shows the agent in wrap-up without a reload
    agent.select_option("#wrap-up", "ticket_created")
    agent.click("#end")
    expect(wall.locator("#w-agents-wrap_up strong")).to_have_text("1")
    assert wall.evaluate("window.__still_here") is True
    assert dialogs == []
    for page in (agent, wall, citizen, dept):
        page.context.close()


def test_language_switch_changes_the_texts(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "agent2")
    heading = page.locator("[data-i18n='ui.desk.queue']")
    expect(heading).to_have_text("排队中的会话")
    page.click("#lang")
    expect(heading).to_have_text("Waiting conversations")
    expect(page.locator("#presence-available")).to_have_text("Available")
    page.reload()  # the choice is kept
    expect(heading).to_have_text("Waiting conversations")
    page.click("#lang")
    expect(heading).to_have_text("排队中的会话")
    page.context.close()


def test_department_staff_cannot_open_other_pages(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "mh-water")
    response = page.goto(server.url + "/ui/desk")
    assert response is not None and response.status == 403
    response = page.goto(server.url + "/ui/wallboard")
    assert response is not None and response.status == 403
    page.context.close()
