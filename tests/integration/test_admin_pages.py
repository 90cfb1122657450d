"""The staff admin pages over real HTTP: every admin endpoint refused to every other
role, bad input answered in the user's language with nothing changed, and the
one-time set-password page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.store.tables import users
from tests.conftest import load_test_city, make_settings
from tests.integration.test_staff_auth import csrf_of, login

GOOD = "湖畔 路灯 三只猫 晚安"
ADMIN_GETS = [
    "/ui/admin/",
    "/ui/admin/staff",
    "/ui/admin/staff/1",
    "/ui/admin/audit",
    "/ui/admin/config.json",
]
ADMIN_POSTS = [
    "/ui/admin/staff",
    "/ui/admin/staff/1",
    "/ui/admin/staff/1/reset",
    "/ui/admin/staff/1/deactivate",
    "/ui/admin/staff/1/reactivate",
    "/ui/admin/staff/1/signout",
    "/ui/admin/staff/1/two_factor_off",
    "/ui/admin/config",
]


@pytest_asyncio.fixture
async def client(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, sqlite_url)
    rt = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
        await load_test_city(rt)
        c.rt = rt  # type: ignore[attr-defined]
        yield c


async def _csrf(client: TestClient) -> str:
    return csrf_of(await (await client.get("/ui/account")).text())


async def _users(client: TestClient) -> int:
    async with client.rt.db.read() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(select(func.count()).select_from(users)))


@pytest.mark.parametrize("username", ["agent1", "supervisor", "mh-municipal"])
async def test_every_admin_endpoint_refused_to_other_roles(
    client: TestClient, username: str
) -> None:
    assert (await login(client, username)).status == 303
    token = await _csrf(client)
    before = await _users(client)
    for path in ADMIN_GETS:
        assert (await client.get(path)).status == 403, path
    for path in ADMIN_POSTS:
        response = await client.post(
            path,
            data={"csrf": token, "username": "x9", "display_name": "X", "role": "admin"},
        )
        assert response.status == 403, path
    assert await _users(client) == before
    assert (await client.get("/ui/account")).status == 200  # their own page is theirs


async def test_not_signed_in_is_sent_to_sign_in(client: TestClient) -> None:
    for path in ADMIN_GETS:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"].startswith("/ui/login")
    for path in ADMIN_POSTS:
        assert (await client.post(path, data={}, allow_redirects=False)).status == 302


async def test_bad_input_in_the_users_language(client: TestClient) -> None:
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    before = await _users(client)
    duplicate = await client.post(
        "/ui/admin/staff",
        data={"csrf": token, "username": "agent1", "display_name": "Someone", "role": "agent"},
    )
    page = await duplicate.text()
    assert duplicate.status == 409 and "The username “agent1” is taken" in page
    assert 'value="Someone"' in page  # what was typed is still there
    no_dept = await client.post(
        "/ui/admin/staff",
        data={"csrf": token, "username": "dept.x", "display_name": "D", "role": "department"},
    )
    assert no_dept.status == 400
    assert await _users(client) == before
    made = await client.post(
        "/ui/admin/staff",
        data={
            "csrf": token,
            "username": "wang.fang",
            "display_name": "王芳",
            "role": "agent",
            "languages": "zh-CN",
            "queues": "general",
            "capacity": "2",
        },
    )
    text = await made.text()
    assert made.status == 200, text
    link = re.search(r'<code id="link">([^<]+)</code>', text)
    assert link is not None and await _users(client) == before + 1
    path = link.group(1).split("127.0.0.1", 1)[-1].split(":", 2)[-1]
    path = path[path.index("/ui/password/") :]
    # the set-password page: a weak password is refused in English and the link stays good
    fresh = TestClient(TestServer(client.server.app), loop=None)  # type: ignore[arg-type]
    await fresh.start_server()
    try:
        fresh.session.cookie_jar.update_cookies({"hotline_lang": "en"})
        weak = await fresh.post(path, data={"password": "password123", "again": "password123"})
        assert weak.status == 400 and "most often" in await weak.text()
        differ = await fresh.post(path, data={"password": GOOD, "again": GOOD + "x"})
        assert differ.status == 400 and "differ" in await differ.text()
        done = await fresh.post(path, data={"password": GOOD, "again": GOOD}, allow_redirects=False)
        assert done.status == 303
        assert (await fresh.get(path)).status == 404  # spent
        assert (await login(fresh, "wang.fang", GOOD)).status == 303
    finally:
        await fresh.close()


CATEGORY_POSTS = [
    "/ui/admin/categories",
    "/ui/admin/categories/1",
    "/ui/admin/routing/test",
    "/ui/admin/calendar",
    "/ui/admin/texts",
    "/ui/admin/departments",
    "/ui/admin/departments/1",
    "/ui/admin/grid",
    "/ui/admin/queues",
    "/ui/admin/sla",
]


@pytest.mark.parametrize("username", ["agent1", "supervisor", "mh-municipal"])
async def test_category_pages_refused_to_other_roles(client: TestClient, username: str) -> None:
    assert (await login(client, username)).status == 303
    token = await _csrf(client)
    for path in (
        "/ui/admin/categories",
        "/ui/admin/categories/1",
        "/ui/admin/calendar",
        "/ui/admin/texts",
        "/ui/admin/departments",
        "/ui/admin/departments/1",
        "/ui/admin/queues",
        "/ui/admin/sla",
    ):
        assert (await client.get(path)).status == 403, path
    for path in CATEGORY_POSTS:
        response = await client.post(
            path, data={"csrf": token, "code": "x", "name_zh": "x", "name_en": "x"}
        )
        assert response.status == 403, path
    assert "x" not in client.rt.directory.category_by_code  # type: ignore[attr-defined]


async def _sms(client: TestClient, text: str, sid: str, sender: str) -> dict[str, Any]:
    response = await client.post(
        "/channels/simulated/sms?wait=1", json={"from": sender, "text": text, "id": sid}
    )
    assert response.status == 201
    return dict(await response.json())


async def test_a_new_category_routes_the_next_sms(client: TestClient) -> None:
    rt = client.rt  # type: ignore[attr-defined]
    before = await _sms(client, "小区门口共享单车乱停，堵住了盲道", "SM-BIKE-1", "13800000077")
    first = before["ticket"]
    assert (
        first is None
        or rt.directory.category_by_id.get(first["category_id"]) is None
        or (rt.directory.category_by_id[first["category_id"]].code != "bike_parking")
    )
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    fields = {
        "csrf": token,
        "code": "bike_parking",
        "name_zh": "共享单车乱停放",
        "name_en": "Shared bikes parked badly",
        "department_kind": "urban_management",
        "default_type": "complaint",
        "default_priority": "normal",
        "handle_working_days": "3",
        "keywords_zh": "共享单车\n单车乱停",
        "keywords_en": "shared bike, bike parking",
    }
    bad = await client.post("/ui/admin/categories", data={**fields, "department_kind": "moon"})
    assert bad.status == 400 and "must be one of" in await bad.text()
    assert "bike_parking" not in rt.directory.category_by_code
    made = await client.post("/ui/admin/categories", data=fields)
    assert made.status == 200, await made.text()
    again = await client.post("/ui/admin/categories", data=fields)
    assert again.status == 409 and "already used" in await again.text()
    tried = await client.post(
        "/ui/admin/routing/test",
        data={"text": "共享单车把人行道堵了"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    result = await tried.text()
    assert tried.status == 200 and "Shared bikes parked badly" in result and "共享单车" in result
    after = await _sms(client, "共享单车又堵在小区门口了", "SM-BIKE-2", "13800000078")
    assert after["ticket"] is not None
    assert rt.directory.category_by_id[after["ticket"]["category_id"]].code == "bike_parking"
    assert after["ticket"]["type"] == "complaint"
    # turned off, it is no longer recognised
    category_id = rt.directory.category_by_code["bike_parking"].id
    off = await client.post(
        f"/ui/admin/categories/{category_id}", data={k: v for k, v in fields.items() if k != "code"}
    )
    assert off.status == 200 and "bike_parking" not in rt.directory.category_by_code


async def test_a_new_holiday_moves_the_next_deadline(client: TestClient) -> None:
    rt = client.rt  # type: ignore[attr-defined]
    before = await _sms(client, "松林路的路灯不亮了", "SM-LIGHT-1", "13800000081")
    assert before["ticket"] is not None and before["ticket"]["sign_due_at"] is not None
    due = datetime.fromisoformat(str(before["ticket"]["sign_due_at"]))
    due_day = rt.local(due).date()
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    bad = await client.post(
        "/ui/admin/calendar", data={"csrf": token, "day": "2026-02-30", "kind": "holiday"}
    )
    assert bad.status == 400
    made = await client.post(
        "/ui/admin/calendar",
        data={"csrf": token, "day": due_day.isoformat(), "kind": "holiday", "note": "台风停工"},
    )
    assert made.status == 200 and "台风停工" in await made.text()
    assert not rt.calendar.is_workday(due_day)
    after = await _sms(client, "松林路的路灯不亮了", "SM-LIGHT-2", "13800000082")
    moved = datetime.fromisoformat(str(after["ticket"]["sign_due_at"]))
    assert rt.local(moved).date() > due_day  # the next deadline skips the new holiday
    undone = await client.post(
        "/ui/admin/calendar", data={"csrf": token, "day": due_day.isoformat(), "kind": "none"}
    )
    assert undone.status == 200 and rt.calendar.is_workday(due_day)
    assert (await client.get("/ui/admin/calendar?year=2026")).status == 200


async def test_sms_text_rewritten_checked_and_used_for_the_next_sms(client: TestClient) -> None:
    from callcenter.store.tables import audit_events, messages

    rt = client.rt  # type: ignore[attr-defined]
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    page = await client.get("/ui/admin/texts")
    text = await page.text()
    assert page.status == 200 and "notify.ticket_dispatched_new" in text and " SMS (" in text
    key = "notify.ticket_dispatched_new"
    shipped = rt.catalog.shipped(key, "zh-CN")
    new_zh = "【{hotline}】工单{number}已转{department}，{due}前办结。进度：{status_url}"
    bad = await client.post(
        "/ui/admin/texts",
        data={"csrf": token, "key": key, "text_zh-CN": new_zh + "{citizen_name}", "text_en": "x"},
    )
    body = await bad.text()
    assert bad.status == 400 and "{citizen_name}, which this text cannot have" in body
    assert "{citizen_name}" in body  # what was typed is kept
    braces = await client.post(
        "/ui/admin/texts",
        data={"csrf": token, "key": key, "text_zh-CN": "工单{number", "text_en": "x"},
    )
    assert braces.status == 400 and "brace" in await braces.text()
    assert rt.catalog.text(key, "zh-CN") == shipped  # nothing changed
    saved = await client.post(
        "/ui/admin/texts",
        data={
            "csrf": token,
            "key": key,
            "text_zh-CN": new_zh,
            "text_en": rt.catalog.text(key, "en"),
        },
    )
    assert saved.status == 200
    answer = await _sms(client, "松林路的路灯不亮了", "SM-TEXT-1", "13800000091")
    number = answer["ticket"]["number"]
    async with rt.db.read() as conn:
        bodies = [
            r.body
            for r in (
                await conn.execute(select(messages.c.body).where(messages.c.direction == "out"))
            ).all()
        ]
        audited = (
            await conn.execute(
                select(audit_events.c.details).where(audit_events.c.action == "text.update")
            )
        ).all()
    assert any(b.startswith(f"【12345】工单{number}已转") for b in bodies), bodies
    assert [a.details["locale"] for a in audited] == ["zh-CN"]  # en was left as it was
    restored = await client.post(
        "/ui/admin/texts",
        data={"csrf": token, "key": key, "restore": "1", "text_zh-CN": "", "text_en": ""},
    )
    assert restored.status == 200 and rt.catalog.text(key, "zh-CN") == shipped


async def test_another_process_takes_up_the_change_without_a_restart(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    """Two runtimes on one database, as a web server and a worker are: a category made
    through one is recognised by the other within its poll, with no restart."""
    import asyncio

    from callcenter.actions.directory import create_category
    from callcenter.bootstrap import close_runtime, start_runtime
    from tests.helpers import actor

    settings = make_settings(tmp_path, database_url, config_poll_seconds=0.1)
    web = build_runtime(settings, clock=clock, seed=1)
    worker = build_runtime(settings, clock=clock, seed=2)
    await start_runtime(web, start_jobs=False)
    await load_test_city(web)
    await start_runtime(worker, start_jobs=False)
    try:
        assert "bike_parking" not in worker.directory.category_by_code
        await create_category(
            web,
            {
                "code": "bike_parking",
                "name_zh": "共享单车乱停放",
                "name_en": "Shared bikes",
                "department_kind": "urban_management",
                "keywords_zh": ["共享单车"],
            },
            actor=await actor(web, "admin"),
        )
        for _ in range(100):  # at most 10 s
            if "bike_parking" in worker.directory.category_by_code:
                break
            await asyncio.sleep(0.1)
        assert "bike_parking" in worker.directory.category_by_code
    finally:
        await close_runtime(worker)
        await close_runtime(web)


async def test_the_audit_trail_reads_in_words(client: TestClient) -> None:
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    await client.post(
        "/ui/admin/calendar",
        data={"csrf": token, "day": "2026-12-21", "kind": "holiday", "note": "台风停工"},
    )
    await client.post(
        "/ui/admin/staff",
        data={"csrf": token, "username": "wang.fang", "display_name": "王芳", "role": "agent"},
    )
    page = await client.get("/ui/admin/audit")
    text = await page.text()
    assert page.status == 200
    assert "系统管理员 将 2026-12-21 设为休息日。台风停工" in text
    assert "系统管理员 创建了账号 wang.fang。" in text
    assert "系统管理员 登录。" in text
    only = await (await client.get("/ui/admin/audit?kind=configuration")).text()
    assert "台风停工" in only and "创建了账号" not in only
    assert "calendar.day" not in text and "user.create" not in text  # no raw event names


def _square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
    }


def _cells(*cells: tuple[str, str, dict[str, Any]]) -> bytes:
    import json

    features = [
        {"type": "Feature", "properties": {"code": c, "name": c, "owner": o}, "geometry": g}
        for c, o, g in cells
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


async def _upload(client: TestClient, token: str, body: bytes) -> tuple[int, str]:
    from aiohttp import FormData

    form = FormData()
    form.add_field("csrf", token)
    form.add_field("file", body, filename="grid.geojson", content_type="application/geo+json")
    response = await client.post("/ui/admin/grid", data=form)
    return response.status, await response.text()


async def test_grid_upload_checked_whole(client: TestClient) -> None:
    from callcenter.domain.routing import Location, route

    rt = client.rt  # type: ignore[attr-defined]
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    before = len(rt.directory.cells)
    status, page = await _upload(client, token, b"{not json")
    assert status == 400 and "not a GeoJSON FeatureCollection" in page
    bow = {
        "type": "Polygon",
        "coordinates": [[[121, 31], [121.1, 31.1], [121.1, 31], [121, 31.1], [121, 31]]],
    }
    status, page = await _upload(
        client,
        token,
        _cells(
            ("NEW-1", "HB-HB-01", _square(121, 31, 121.1, 31.1)),
            ("NEW-2", "HB-HB-01", _square(121.05, 31, 121.2, 31.1)),  # overlaps NEW-1
            ("NEW-3", "NOBODY", _square(122, 31, 122.1, 31.1)),
            ("NEW-4", "HB-HB-01", bow),
            ("NEW-5", "HB-HB-01", _square(120.01, 30.01, 120.02, 30.02)),  # inside GRID-HB-HB-01
        ),
    )
    assert status == 400
    assert "Cells NEW-1 and NEW-2 overlap." in page
    assert "there is no department “NOBODY”" in page
    assert "Cell NEW-4 is not a valid polygon: Self-intersection" in page
    assert "Cells NEW-5 and GRID-HB-HB-01 overlap." in page
    assert len(rt.directory.cells) == before  # nothing was changed
    ring = [
        (
            f"RING-{i}{j}",
            "HB-HB-01",
            _square(
                *(round(v, 6) for v in (121 + i / 10, 31 + j / 10, 121.1 + i / 10, 31.1 + j / 10))
            ),
        )
        for i in range(3)
        for j in range(3)
        if (i, j) != (1, 1)
    ]
    status, page = await _upload(client, token, _cells(*ring))
    assert status == 200 and "8 cells checked and saved; 1 gaps" in page
    assert len(rt.directory.cells) == before + 8
    decision = route(rt.directory, None, Location(None, 31.05, 121.05))
    assert decision.grid_cell_id is not None
    assert rt.directory.cell_by_id[decision.grid_cell_id].code == "RING-00"


async def test_department_duty_phone_and_tree(client: TestClient) -> None:
    rt = client.rt  # type: ignore[attr-defined]
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    water = next(d for d in rt.directory.departments if d.code == "MH-WATER")
    street = next(d for d in rt.directory.departments if d.kind == "street")
    page = await client.get("/ui/admin/departments")
    assert page.status == 200 and "MH-WATER" in await page.text()
    base = {"csrf": token, "name_zh": water.name_zh, "name_en": water.name_en, "kind": "water"}
    saved = await client.post(
        f"/ui/admin/departments/{water.id}",
        data={**base, "parent": "MH", "duty_phone": "13900000999", "active": "on"},
    )
    assert saved.status == 200
    async with rt.db.read() as conn:
        from callcenter.store.tables import departments

        phone = await conn.scalar(
            select(departments.c.duty_phone).where(departments.c.id == water.id)
        )
    assert phone == "+8613900000999"
    city = next(d for d in rt.directory.departments if d.code == "MH")
    cycle = await client.post(
        f"/ui/admin/departments/{city.id}",
        data={
            "csrf": token,
            "name_zh": city.name_zh,
            "name_en": city.name_en,
            "kind": "city",
            "parent": street.code,
            "active": "on",
        },
    )
    assert cycle.status == 400 and "部门不能放在自己之下" in await cycle.text()
    assert rt.directory.by_id[city.id].parent_id is None


async def test_configuration_moves_to_another_installation(
    client: TestClient, tmp_path: Path, sqlite_template: Path, clock: ManualClock
) -> None:
    import json
    import shutil

    from aiohttp import FormData

    from callcenter.actions import accounts
    from callcenter.actions.operations import operator

    rt = client.rt  # type: ignore[attr-defined]
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    await client.post(
        "/ui/admin/calendar",
        data={"csrf": token, "day": "2026-12-21", "kind": "holiday", "note": "台风停工"},
    )
    exported = await client.get("/ui/admin/config.json")
    assert exported.status == 200 and "attachment" in exported.headers["Content-Disposition"]
    document = json.loads(await exported.read())
    assert len(document["departments"]) == len(rt.directory.departments)

    # a new city's installation: an empty database and its first administrator
    other_db = tmp_path / "other" / "callcenter.db"
    other_db.parent.mkdir()
    shutil.copy(sqlite_template, other_db)
    settings = make_settings(tmp_path / "other", f"sqlite+aiosqlite:///{other_db}")
    other_rt = build_runtime(settings, clock=clock, seed=3)
    app = create_app(settings, runtime=other_rt, start_jobs=False)
    async with TestClient(TestServer(app)) as other:
        await accounts.create_staff(
            other_rt,
            {"username": "zhang.wei", "display_name": "张伟", "role": "admin"},
            actor=operator(),
            password=GOOD,
        )
        assert (await login(other, "zhang.wei", GOOD)).status == 303
        other_token = await _csrf(other)

        async def send(body: bytes) -> tuple[int, str]:
            form = FormData()
            form.add_field("csrf", other_token)
            form.add_field("file", body, filename="c.json", content_type="application/json")
            response = await other.post("/ui/admin/config", data=form)
            return response.status, await response.text()

        broken = json.loads(json.dumps(document))
        broken["categories"][0]["department_kind"] = "moon"
        status, page = await send(json.dumps(broken).encode())
        assert status == 400 and other_rt.directory.departments == []  # nothing was changed
        status, page = await send(b"not json")
        assert status == 400 and "不是热线配置文件" in page
        status, page = await send(json.dumps(document).encode())
        assert status == 200, page
        assert len(other_rt.directory.departments) == len(rt.directory.departments)
        assert set(other_rt.directory.category_by_code) == set(rt.directory.category_by_code)
        assert len(other_rt.directory.cells) == len(rt.directory.cells)
        assert not other_rt.calendar.is_workday(date(2026, 12, 21))
        # importing the same file again changes nothing that was there
        status, _ = await send(json.dumps(document).encode())
        assert status == 200 and len(other_rt.directory.departments) == len(
            rt.directory.departments
        )


async def test_queues_set_on_the_page_rule_the_next_distribution(client: TestClient) -> None:
    from datetime import timedelta

    from callcenter.queueing import rule_of

    rt = client.rt  # type: ignore[attr-defined]
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    base = {
        "csrf": token,
        "strategy": "round_robin",
        "overflow_after_s": "120",
        "offer_timeout_s": "20",
        "wrap_up_s": "15",
    }
    loop = await client.post(
        "/ui/admin/queues", data={**base, "name": "general", "overflow_to": "general"}
    )
    assert loop.status == 400 and "Overflow to" in await loop.text()
    assert rule_of(rt, "general").offer_timeout == timedelta(seconds=30)  # unchanged
    done = await client.post(
        "/ui/admin/queues", data={**base, "name": "general", "overflow_to": "overflow"}
    )
    assert done.status == 200
    rule = rule_of(rt, "general")
    assert rule.offer_timeout == timedelta(seconds=20) and rule.strategy.value == "round_robin"
    assert rule.overflow_after == timedelta(seconds=120)
    made = await client.post(
        "/ui/admin/queues", data={**base, "name": "english", "overflow_to": ""}
    )
    assert made.status == 200 and "english" in rt.settings.acd.queues
    page = await (await client.get("/ui/admin/staff")).text()
    assert 'name="queues" value="english"' in page  # agents may now be given the new queue


async def test_deadlines_set_on_the_page(client: TestClient) -> None:
    rt = client.rt  # type: ignore[attr-defined]
    client.session.cookie_jar.update_cookies({"hotline_lang": "en"})
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    page = await client.get("/ui/admin/sla")
    assert page.status == 200
    form: dict[str, str] = {"csrf": token, "max_extension_days": "10", "yellow_pct": "75"}
    for name in ("sign_for", "urgent_sign_for", "urgent_handle"):
        limit = getattr(rt.sla.settings, name)
        form[f"{name}_amount"], form[f"{name}_unit"] = str(limit.amount), limit.unit
    for ty, limit in rt.sla.settings.handle.items():
        form[f"handle_{ty}_amount"], form[f"handle_{ty}_unit"] = str(limit.amount), limit.unit
    before = rt.sla.settings
    bad = await client.post("/ui/admin/sla", data={**form, "handle_complaint_amount": "0"})
    assert bad.status == 400 and "is not right" in await bad.text()
    yellow = await client.post("/ui/admin/sla", data={**form, "yellow_pct": "150"})
    assert yellow.status == 400 and rt.sla.settings == before  # nothing changed
    done = await client.post("/ui/admin/sla", data={**form, "handle_complaint_amount": "3"})
    assert done.status == 200
    limit = rt.sla.handle_limit("complaint", "normal")
    assert (limit.amount, limit.unit) == (3.0, "working_days")
    assert rt.sla.handle_limit("inquiry", "normal").amount == 2  # the others as they were


async def test_capacity_per_channel_from_the_staff_page(client: TestClient) -> None:
    from callcenter.queueing import agent_views
    from tests.helpers import actor

    rt = client.rt  # type: ignore[attr-defined]
    agent = await actor(rt, "agent1")
    assert (await login(client, "admin")).status == 303
    token = await _csrf(client)
    form = {"csrf": token, "display_name": agent.name, "role": "agent", "capacity": "3"}
    bad = await client.post(f"/ui/admin/staff/{agent.id}", data={**form, "capacity_sms": "99"})
    assert bad.status == 400
    saved = await client.post(f"/ui/admin/staff/{agent.id}", data={**form, "capacity_sms": "1"})
    assert (
        saved.status == 200
        and 'data-channel="sms" type="number" min="0" max="50" value="1"' in await saved.text()
    )
    async with rt.db.read() as conn:
        views = {v.agent_id: v for v in await agent_views(conn, rt, rt.clock.now())}
    assert views[agent.id].channel_capacity == (("sms", 1),) and views[agent.id].capacity == 3


async def test_changing_ones_own_password(client: TestClient) -> None:
    from tests.helpers import signed_in_client

    other = await signed_in_client(client.server.app, "agent1")
    try:
        assert (await login(client, "agent1")).status == 303
        token = await _csrf(client)
        wrong = await client.post(
            "/ui/account/password",
            data={"csrf": token, "current": "nope", "new": GOOD, "again": GOOD},
        )
        assert wrong.status == 400 and "当前密码不正确" in await wrong.text()
        assert (await other.get("/api/me")).status == 200
        weak = await client.post(
            "/ui/account/password",
            data={
                "csrf": token,
                "current": "demo12345",
                "new": "password123",
                "again": "password123",
            },
        )
        assert weak.status == 400
        done = await client.post(
            "/ui/account/password",
            data={"csrf": token, "current": "demo12345", "new": GOOD, "again": GOOD},
        )
        assert done.status == 200 and "其他会话已结束" in await done.text()
        assert (await client.get("/api/me")).status == 200  # this session stays
        assert (await other.get("/api/me")).status == 401  # the other one ended
        client.session.cookie_jar.clear()
        assert (await login(client, "agent1", GOOD)).status == 303
    finally:
        await other.close()
