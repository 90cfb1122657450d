"""The staff admin page in real Chromium: an administrator invites an agent, the agent
chooses a password from the one-time link and signs in, the administrator deactivates
them and the agent's open page is signed out at its next request; bad input says why in
the administrator's language and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_kit import Server, chromium, new_page, running_server, shot, sign_in

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
GOOD = "湖畔 路灯 三只猫 晚安"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("admin")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_invite_set_password_sign_in_deactivate(browser: Any, server: Server) -> None:
    admin = sign_in(browser, server, "admin")
    admin.click("header nav a[href='/ui/admin/']")
    admin.click("#admin-index a[href='/ui/admin/staff']")
    expect(admin.locator("#staff-title")).to_have_text("工作人员账号")
    admin.fill("#f-username", "wang.fang")
    admin.fill("#f-name", "王芳")
    admin.select_option("#f-role", "agent")
    admin.check("input[name=languages][value='zh-CN']")
    admin.check("input[name=queues][value='general']")
    admin.fill("#f-capacity", "2")
    admin.click("#create")
    link = admin.locator("#link").inner_text()
    assert "/ui/password/" in link
    row = admin.locator("tr[data-username='wang.fang']")
    expect(row.locator(".state")).to_have_text("已邀请，尚未设置密码")
    shot(admin, "admin-staff-invited")
    # a duplicate username: the reason in the admin's language, the form as it was typed
    admin.fill("#f-username", "wang.fang")
    admin.fill("#f-name", "另一个王芳")
    admin.click("#create")
    expect(admin.locator("#form-error")).to_contain_text("用户名“wang.fang”已被占用")
    expect(admin.locator("#f-name")).to_have_value("另一个王芳")
    assert admin.locator("tr[data-username='wang.fang']").count() == 1

    person = new_page(browser)
    person.goto(link)
    person.fill("#password", "password123")
    person.fill("#again", "password123")
    person.click("#submit")
    expect(person.locator("#error")).to_contain_text("最常被使用的密码")
    person.fill("#password", GOOD)
    person.fill("#again", GOOD)
    person.click("#submit")
    person.wait_for_url("**/ui/login**")
    person.fill("#username", "wang.fang")
    person.fill("#password", GOOD)
    person.click("#submit")
    person.wait_for_url("**/ui/desk")
    person.goto(server.url + "/ui/account")
    expect(person.locator("#my-sessions tr")).to_have_count(1)

    admin.goto(server.url + "/ui/admin/staff")
    admin.click("tr[data-username='wang.fang'] a")
    expect(admin.locator("#member-sessions li")).to_have_count(1)
    admin.click("#deactivate")
    expect(admin.locator("#notice")).to_have_text("已停用，所有会话已结束。")
    expect(admin.locator("#account-events")).to_contain_text("停用了 wang.fang（结束 1 个会话）")
    shot(admin, "admin-member-deactivated")
    person.goto(server.url + "/ui/desk")
    person.wait_for_url("**/ui/login**")
    # the refusals' own statuses (409, 400) are logged by the browser; nothing else is
    for page in (admin, person):
        assert [
            e for e in page.console_errors if "status of 409" not in e and "status of 400" not in e
        ] == []


def test_english_admin_reads_english(browser: Any, server: Server) -> None:
    admin = sign_in(browser, server, "admin")
    admin.goto(server.url + "/ui/admin/staff")
    admin.click("#lang")  # the header's switch: the page comes back in English
    expect(admin.locator("#staff-title")).to_have_text("Staff accounts")
    admin.fill("#f-username", "agent1")
    admin.fill("#f-name", "X")
    admin.click("#create")
    expect(admin.locator("#form-error")).to_contain_text("The username “agent1” is taken")
    admin.click("#lang")  # back to Chinese for the other tests of this server


def test_categories_and_the_routing_box(browser: Any, server: Server) -> None:
    admin = sign_in(browser, server, "admin")
    admin.click("header nav a[href='/ui/admin/']")
    admin.click("#admin-index a[href='/ui/admin/categories']")
    expect(admin.locator("#categories-title")).to_have_text("类别与派单规则")
    admin.fill("#r-text", "共享单车把盲道堵了")
    admin.click("#r-test")
    expect(admin.locator("#routing-result")).to_contain_text("派单台")  # no category yet
    admin.fill("#c-code", "bike_parking")
    admin.fill("#c-name-zh", "共享单车乱停放")
    admin.fill("#c-name-en", "Shared bikes parked badly")
    admin.select_option("#c-kind", "urban_management")
    admin.select_option("#c-type", "complaint")
    admin.fill("#c-keywords-zh", "共享单车\n单车乱停")
    admin.click("#c-create")
    expect(admin.locator("#notice")).to_contain_text("类别已创建")
    admin.fill("#r-text", "共享单车把盲道堵了")
    admin.click("#r-test")
    expect(admin.locator("#routing-department")).to_contain_text("共享单车乱停放")
    shot(admin, "admin-categories-routing")
    assert admin.console_errors == []


def test_calendar_and_texts_pages(browser: Any, server: Server) -> None:
    admin = sign_in(browser, server, "admin")
    admin.click("header nav a[href='/ui/admin/']")
    admin.click("#admin-index a[href='/ui/admin/calendar']")
    expect(admin.locator("#national-days")).to_contain_text("国庆节")
    admin.fill("#d-day", "2026-12-21")
    admin.select_option("#d-kind", "holiday")
    admin.fill("#d-note", "台风停工")
    admin.click("#d-set")
    expect(admin.locator("#local-days tr[data-day='2026-12-21']")).to_contain_text("台风停工")
    assert not server.rt.calendar.is_workday(date(2026, 12, 21))
    shot(admin, "admin-calendar")

    admin.click("header nav a[href='/ui/admin/']")

    admin.click("#admin-index a[href='/ui/admin/texts']")
    row = admin.locator("section[data-key='canned.greeting']")
    row.locator("textarea.text-zh-CN").fill("您好，{hotline}热线{who}为您服务。")
    row.locator("button.save").click()
    row = admin.locator("section[data-key='canned.greeting']")
    expect(row.locator(".form-error")).to_contain_text("{who}")
    expect(row.locator("textarea.text-zh-CN")).to_have_value("您好，{hotline}热线{who}为您服务。")
    row.locator("textarea.text-zh-CN").fill("您好，{hotline}热线为您服务，请讲。")
    row.locator("button.save").click()
    row = admin.locator("section[data-key='canned.greeting']")
    expect(row).to_contain_text("已在此修改")
    sms = admin.locator("section[data-key='notify.ticket_created'] .segments-zh-CN")
    expect(sms).to_contain_text("条短信")
    shot(admin, "admin-texts")
    assert (
        server.rt.catalog.text("canned.greeting", "zh-CN") == "您好，{hotline}热线为您服务，请讲。"
    )
    admin.click("header nav a[href='/ui/admin/']")
    admin.click("#admin-index a[href='/ui/admin/audit']")
    expect(admin.locator("#audit-events")).to_contain_text("修改了文本 canned.greeting（zh-CN）")
    expect(admin.locator("#audit-events")).to_contain_text("将 2026-12-21 设为休息日。台风停工")
    admin.select_option("#audit-kind", "accounts")
    admin.wait_for_url("**kind=accounts")
    expect(admin.locator("#audit-events")).not_to_contain_text("台风停工")
    shot(admin, "admin-audit")
    assert [e for e in admin.console_errors if "status of 400" not in e] == []


def test_departments_tree_and_a_refused_grid(browser: Any, server: Server, tmp_path: Path) -> None:
    admin = sign_in(browser, server, "admin")
    admin.click("header nav a[href='/ui/admin/']")
    admin.click("#admin-index a[href='/ui/admin/departments']")
    expect(admin.locator("#department-tree tr[data-code='MH']")).to_be_visible()
    bad = tmp_path / "grid.geojson"
    bad.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", '
        '"properties": {"code": "X-1", "owner": "HB-HB-01"}, "geometry": '
        '{"type": "Polygon", "coordinates": [[[120.01, 30.01], [120.02, 30.01], '
        "[120.02, 30.02], [120.01, 30.02], [120.01, 30.01]]]}}]}",
        "utf-8",
    )
    admin.set_input_files("#grid-file", str(bad))
    admin.click("#grid-upload")
    expect(admin.locator("#grid-problems")).to_contain_text("网格 X-1 与 GRID-HB-HB-01 重叠")
    shot(admin, "admin-departments")
    assert [e for e in admin.console_errors if "status of 400" not in e] == []


def test_two_factor_sign_in_in_the_browser(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An administrator's first sign-in on a server that requires it: the QR code and
    key, a wrong code refused in words, the right one signs in; the next sign-in asks
    only for the code, and the same code is not taken twice."""
    from datetime import UTC, datetime

    from callcenter.clock import ManualClock
    from callcenter.domain.totp import code_at

    clock = ManualClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    with running_server(
        tmp_path_factory.mktemp("totp"),
        clock=clock,
        staff={"two_factor_roles": ["admin", "supervisor"]},
    ) as srv:
        page = new_page(browser)
        page.goto(srv.url + "/ui/login")
        page.fill("#username", "admin")
        page.fill("#password", "demo12345")
        page.click("#submit")
        expect(page.locator("#second-title")).to_have_text("双重验证登录")
        qr = page.locator("#qr")
        assert qr.evaluate("img => img.complete && img.naturalWidth > 100")  # drawn, not blocked
        secret = page.locator("#secret").inner_text()
        shot(page, "admin-two-factor-enrol")
        page.fill("#code", "000000" if code_at(secret, clock.now()) != "000000" else "111111")
        page.click("#submit")
        expect(page.locator("#error")).to_contain_text("验证码不正确")
        used = code_at(secret, clock.now())
        page.fill("#code", used)
        page.click("#submit")
        page.wait_for_url("**/ui/wallboard")
        other = new_page(browser)
        other.goto(srv.url + "/ui/login")
        other.fill("#username", "admin")
        other.fill("#password", "demo12345")
        other.click("#submit")
        expect(other.locator("#code")).to_be_visible()
        assert other.locator("#qr").count() == 0  # enrolled: only the code now
        other.fill("#code", used)
        other.click("#submit")
        expect(other.locator("#error")).to_contain_text("验证码不正确")
        clock.advance(seconds=30)
        other.fill("#code", code_at(secret, clock.now()))
        other.click("#submit")
        other.wait_for_url("**/ui/wallboard")
        other.goto(srv.url + "/ui/account")
        expect(other.locator("#my-sessions tr")).to_have_count(2)
        other.locator(".end-session").click()  # the first browser's session, from here
        expect(other.locator("#my-sessions tr")).to_have_count(1)
        page.goto(srv.url + "/ui/wallboard")
        page.wait_for_url("**/ui/login**")
        for p in (page, other):
            assert [e for e in p.console_errors if "status of 400" not in e] == []
