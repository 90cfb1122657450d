"""The JSON API through real HTTP: roles, errors in both languages, and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.api.keys import RUNTIME
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.workflow import WORKFLOW, Role, Step
from callcenter.runtime import Runtime
from callcenter.store.tables import inbox
from tests.conftest import make_settings
from tests.helpers import cell_point, dept_id


def auth(user: str, lang: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer demo-{user}"}
    if lang:
        headers["Accept-Language"] = lang
    return headers


class Spec:
    """Validates real responses against the served OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for template, item in self.doc["paths"].items():
            pattern = "^/api" + re.sub(r"{\w+}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return item[method.lower()]  # type: ignore[no-any-return]
        raise AssertionError(f"{method} {path} is not in the document")

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        op = self.operation(method, path.split("?")[0])
        assert str(status) in op["responses"], f"{method} {path} answered {status}, not documented"
        schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(
            body,
            {**schema, "components": self.doc["components"]},
            cls=jsonschema.Draft202012Validator,
        )

    def check_body(self, method: str, path: str, body: Any) -> None:
        op = self.operation(method, path)
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        jsonschema.validate(
            body,
            {**schema, "components": self.doc["components"]},
            cls=jsonschema.Draft202012Validator,
        )


@pytest_asyncio.fixture
async def spec(api: TestClient) -> Spec:
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["TicketOut"])
    return Spec(document)


async def call(
    api: TestClient,
    spec: Spec,
    method: str,
    path: str,
    user: str | None = None,
    json: Any = None,
    lang: str | None = None,
) -> tuple[int, Any]:
    headers = auth(user, lang) if user else ({"Accept-Language": lang} if lang else {})
    if json is not None and method == "POST":
        spec.check_body(method, path.split("?")[0], json)
    response = await api.request(method, path, json=json, headers=headers)
    body = await response.json()
    spec.check(method, path, response.status, body)
    return response.status, body


async def test_health_and_me(api: TestClient, spec: Spec) -> None:
    status, body = await call(api, spec, "GET", "/api/health")
    assert status == 200 and body["status"] == "ok"
    status, body = await call(api, spec, "GET", "/api/me", "agent1")
    assert status == 200 and body["role"] == "agent"
    status, body = await call(api, spec, "GET", "/api/me")
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    response = await api.get("/api/me", headers={"Authorization": "Bearer wrong"})
    assert response.status == 401 and (await response.json())["error"]["code"] == "invalid_token"


async def test_a_ticket_through_every_desk_and_department_step(api: TestClient, spec: Spec) -> None:
    rt: Runtime = api.rt  # type: ignore[attr-defined]
    lat, lon = cell_point(rt, "GRID-XG-GW-02")
    status, ticket = await call(
        api,
        spec,
        "POST",
        "/api/tickets",
        "agent1",
        json={
            "description": "港湾路有人占道摆摊",
            "lat": lat,
            "lon": lon,
            "dispatch": True,
        },
    )
    assert status == 201
    assert ticket["category"]["code"] == "street_vendor"
    assert ticket["department"]["code"] == "XG-CG" and ticket["state"] == "dispatched"
    assert "网格 GRID-XG-GW-02" in ticket["routing_explanation"]
    assert ticket["location"]["street"]["code"] == "XG-GW"
    assert [h["action"] for h in ticket["history"]] == ["ticket.create", "ticket.dispatch"]
    number = ticket["number"]

    status, body = await call(
        api,
        spec,
        "POST",
        f"/api/tickets/{number}/sign_for",
        "xg-cg",
        json={"version": ticket["version"]},
    )
    assert status == 200 and body["state"] == "accepted"
    assert set(body["allowed_steps"]) == {"return", "request_extension", "reply"}
    status, body = await call(
        api, spec, "POST", f"/api/tickets/{number}/reply", "xg-cg", json={"text": "已劝离摊贩"}
    )
    assert status == 200 and body["state"] == "replied"
    status, body = await call(api, spec, "POST", f"/api/tickets/{number}/close", "agent1", json={})
    assert status == 200 and body["state"] == "closed" and body["reply"] == "已劝离摊贩"
    status, body = await call(api, spec, "GET", f"/api/tickets/{body['id']}", "supervisor")
    assert status == 200 and len(body["history"]) == 5
    assert body["history"][2]["actor"]["role"] == "department"


async def test_illegal_steps_are_409_in_the_callers_language(api: TestClient, spec: Spec) -> None:
    status, ticket = await call(
        api,
        spec,
        "POST",
        "/api/tickets",
        "agent1",
        json={
            "description": "路灯不亮",
            "category": "street_light",
        },
    )
    path = f"/api/tickets/{ticket['id']}/reply"
    status, body = await call(
        api, spec, "POST", path, "mh-municipal", json={"text": "x"}, lang="en"
    )
    # the department cannot see a ticket not dispatched to it
    assert status == 404
    await call(api, spec, "POST", f"/api/tickets/{ticket['id']}/dispatch", "agent1", json={})
    status, body = await call(
        api, spec, "POST", path, "mh-municipal", json={"text": "x"}, lang="en"
    )
    assert status == 409
    assert body["error"]["code"] == "illegal_step"
    assert body["error"]["details"] == {"state": "dispatched", "step": "reply"}
    assert (
        body["error"]["message"]
        == "The step “Reply” is not allowed while the ticket is “Dispatched”."
    )
    status, body = await call(
        api, spec, "POST", path, "mh-municipal", json={"text": "x"}, lang="zh-CN"
    )
    assert body["error"]["message"] == "工单当前状态为“已派单”，不能执行“答复”。"
    status, body = await call(
        api, spec, "POST", f"/api/tickets/{ticket['id']}/urge", "agent1", json={"version": 1}
    )
    assert status == 409 and body["error"]["code"] == "version_conflict"


async def test_bad_requests_are_400_with_a_reason(api: TestClient, spec: Spec) -> None:
    response = await api.post(
        "/api/tickets",
        data=b"{not json",
        headers={**auth("agent1", "en"), "Content-Type": "application/json"},
    )
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "malformed_json"
    status, body = await call(api, spec, "GET", "/api/tickets?page=0", "agent1", lang="en")
    assert status == 400 and body["error"]["details"]["field"] == "page"
    response = await api.post(
        "/api/tickets", json={"description": "x", "surprise": 1}, headers=auth("agent1")
    )
    assert response.status == 400
    response = await api.post(
        "/api/tickets", json={"description": "x", "lat": 200, "lon": 1}, headers=auth("agent1")
    )
    assert response.status == 400
    response = await api.post("/api/tickets", data=b"x" * 70000, headers=auth("agent1"))
    assert response.status == 413 and (await response.json())["error"]["code"] == "body_too_large"
    status, body = await call(
        api,
        spec,
        "POST",
        "/api/tickets",
        "agent1",
        json={"description": "x", "category": "unknown"},
    )
    assert status == 400 and body["error"]["code"] == "unknown_category"
    status, body = await call(api, spec, "GET", "/api/tickets?state=nonsense", "agent1")
    assert status == 400
    status, body = await call(api, spec, "GET", "/api/tickets/99999999", "agent1")
    assert status == 404


async def test_every_step_endpoint_checks_the_role_the_workflow_requires(
    api: TestClient, spec: Spec
) -> None:
    _, ticket = await call(
        api,
        spec,
        "POST",
        "/api/tickets",
        "agent1",
        json={
            "description": "路灯不亮",
            "category": "street_light",
        },
    )
    users = {
        Role.AGENT: "agent1",
        Role.SUPERVISOR: "supervisor",
        Role.DEPARTMENT: "mh-municipal",
        Role.ADMIN: "admin",
    }
    for step in Step:
        allowed = WORKFLOW[step].roles
        for role, user in users.items():
            if role in allowed:
                continue
            response = await api.post(
                f"/api/tickets/{ticket['id']}/{step.value}", json={}, headers=auth(user)
            )
            assert response.status == 403, (step, role)


async def test_department_staff_see_only_their_own_tickets(api: TestClient, spec: Spec) -> None:
    rt: Runtime = api.rt  # type: ignore[attr-defined]
    for text in ("路灯不亮", "家里停水了"):
        await call(
            api,
            spec,
            "POST",
            "/api/tickets",
            "agent1",
            json={"description": text, "dispatch": True},
        )
    status, body = await call(api, spec, "GET", "/api/tickets", "mh-water")
    assert status == 200 and body["page"]["total"] == 1
    assert body["items"][0]["department"]["id"] == dept_id(rt, "MH-WATER")
    status, body = await call(api, spec, "GET", "/api/tickets", "supervisor")
    assert body["page"]["total"] == 2
    other = next(t for t in body["items"] if t["department"]["code"] == "MH-MUNICIPAL")
    status, _ = await call(api, spec, "GET", f"/api/tickets/{other['number']}", "mh-water")
    assert status == 404
    status, _ = await call(
        api, spec, "GET", f"/api/tickets?department_id={other['department']['id']}", "mh-water"
    )
    assert status == 200 and _["page"]["total"] == 0
    for path in ("/api/conversations", "/api/citizens", "/api/citizens/1", "/api/conversations/1"):
        status, _ = await call(api, spec, "GET", path, "mh-water")
        assert status == 403, path
    status, _ = await call(
        api, spec, "POST", "/api/routing/suggest", "mh-water", json={"description": "x"}
    )
    assert status == 403
    status, _ = await call(api, spec, "GET", "/api/audit/verify", "agent1")
    assert status == 403


async def test_lists_page_filter_and_put_urgent_first(api: TestClient, spec: Spec) -> None:
    for text in ("路灯不亮", "垃圾没人清运", "楼道里有很重的煤气味", "停电了"):
        await call(api, spec, "POST", "/api/tickets", "agent1", json={"description": text})
    _, body = await call(api, spec, "GET", "/api/tickets?per_page=2", "agent1")
    assert body["page"] == {"page": 1, "per_page": 2, "total": 4}
    assert (
        body["items"][0]["priority"] == "urgent"
        and body["items"][0]["category"]["code"] == "gas_leak"
    )
    _, body = await call(api, spec, "GET", "/api/tickets?category=garbage&state=new", "agent1")
    assert [t["category"]["code"] for t in body["items"]] == ["garbage"]
    _status, body = await call(api, spec, "GET", "/api/tickets?q=停电", "agent1")
    assert body["page"]["total"] == 1


async def test_directory_and_routing_suggestions(api: TestClient, spec: Spec) -> None:
    status, body = await call(api, spec, "GET", "/api/departments?lang=en", "agent1")
    assert status == 200 and len(body) == 46
    assert any(d["name"] == "Minghu Water Group" for d in body)
    status, body = await call(api, spec, "GET", "/api/categories", "agent1", lang="en")
    assert len(body) >= 20 and all(c["name_zh"] and c["name_en"] for c in body)
    status, body = await call(api, spec, "GET", "/api/grid", "agent1")
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 12
    status, body = await call(
        api,
        spec,
        "POST",
        "/api/routing/suggest?lang=en",
        "agent1",
        json={"description": "Rubbish not collected", "address": "Songlin Road 5"},
    )
    assert status == 200 and body["department"]["code"] == "QS-CG" and body["rule"] == "address"
    assert "Songlin Road" in body["explanation"]
    status, body = await call(api, spec, "GET", "/api/departments/MH-WATER", "agent1")
    assert body["kind"] == "water"


async def test_conversations_citizens_and_agent_replies(api: TestClient, spec: Spec) -> None:
    response = await api.post(
        "/channels/simulated/sms?wait=1",
        json={"from": "13800000001", "text": "你好，请问怎么办居住证", "id": "SM-A"},
    )
    assert response.status == 201
    intake = await response.json()
    assert intake["ticket"] is None and intake["conversation_state"] == "queued"
    status, body = await call(api, spec, "GET", "/api/conversations?state=queued", "agent1")
    assert body["page"]["total"] == 1
    cid = body["items"][0]["id"]
    status, message = await call(
        api,
        spec,
        "POST",
        f"/api/conversations/{cid}/messages",
        "agent1",
        json={"body": "您好，请带身份证到街道办理"},
    )
    assert status == 201 and message["status"] == "queued" and message["direction"] == "out"
    status, body = await call(api, spec, "GET", f"/api/conversations/{cid}", "agent1")
    assert [m["direction"] for m in body["messages"]] == ["in", "out", "out"]
    status, found = await call(
        api, spec, "GET", "/api/citizens?phone=%2B86%20138%200000%200001", "agent1"
    )
    assert [c["id"] for c in found] == [intake["citizen_id"]]
    status, citizen = await call(
        api, spec, "GET", f"/api/citizens/{intake['citizen_id']}", "agent1"
    )
    # masked: agent1 does not hold a conversation with them (tests/integration/test_privacy.py)
    assert citizen["identities"] == [{"kind": "phone", "value": "+86138****0001"}]
    assert len(citizen["conversations"]) == 1
    status, body = await call(api, spec, "GET", "/api/citizens?phone=abc", "agent1", lang="en")
    assert status == 400 and body["error"]["code"] == "invalid_phone"


async def test_the_simulated_webhook(api: TestClient) -> None:
    payload = {"from": "+86 138 0000 0000", "text": "小区路灯坏了", "id": "SM-1"}
    first = await api.post("/channels/simulated/sms?wait=1", json=payload)
    body = await first.json()
    assert first.status == 201 and body["ticket"]["number"].startswith("2026")
    again = await api.post("/channels/simulated/sms?wait=1", json=payload)
    assert again.status == 200 and (await again.json())["duplicate"] is True
    assert (await again.json())["ticket"]["number"] == body["ticket"]["number"]
    # without waiting: the answer comes once the text is stored, before it is handled
    stored = await api.post(
        "/channels/simulated/sms", json={"from": "13800000002", "text": "路灯坏了", "id": "SM-2"}
    )
    accepted = await stored.json()
    assert stored.status == 202 and accepted["duplicate"] is False
    rt = api.app[RUNTIME]
    async with rt.db.read() as conn:
        row = (await conn.execute(select(inbox).where(inbox.c.id == accepted["inbox_id"]))).one()
    assert (row.state, row.provider_id, row.payload["address"]) == (
        "pending",
        "SM-2",
        "+8613800000002",
    )
    again = await api.post(
        "/channels/simulated/sms", json={"from": "13800000002", "text": "路灯坏了", "id": "SM-2"}
    )
    assert (await again.json()) == {"inbox_id": accepted["inbox_id"], "duplicate": True}
    for bad, code in (
        ({"text": "x"}, "missing_field"),
        ({"from": "abc", "text": "x"}, "invalid_phone"),
        ({"from": "13800000000", "text": ""}, "missing_field"),
        ([1, 2], "malformed_json"),
    ):
        response = await api.post("/channels/simulated/sms", json=bad)
        assert response.status == 400 and (await response.json())["error"]["code"] == code
    response = await api.post("/channels/simulated/sms", data=b"\xff\xfe{")
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_encoding"


async def test_audit_verify_endpoint(api: TestClient, spec: Spec) -> None:
    status, body = await call(api, spec, "GET", "/api/audit/verify", "supervisor", lang="en")
    assert status == 200 and body["ok"] and body["checked"] > 100
    assert body["message"].startswith("The audit chain is intact")


def test_the_document_lists_every_step_with_its_roles() -> None:
    from callcenter.api.openapi import build_openapi

    doc = build_openapi("http://x")
    for step in Step:
        op = doc["paths"][f"/tickets/{{ticket}}/{step.value}"]["post"]
        assert set(op["x-roles"]) == {r.value for r in WORKFLOW[step].roles} - {"system"}
        assert "409" in op["responses"]


async def test_the_front_page_points_to_what_the_server_offers(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    """The links come from what is configured (the web front end's and the channels'
    declared pages), and each of them is served."""
    settings = make_settings(
        tmp_path,
        database_url,
        channels=["channels.simulated:SimulatedSms", "channels.webchat:WebChat"],
    )
    runtime = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(
        TestServer(create_app(settings, runtime=runtime, start_jobs=False))
    ) as api:
        response = await api.get("/", headers={"Accept-Language": "en"})
        page = await response.text()
        assert response.status == 200 and "Citizen hotline 12345" in page
        for href in ('href="/ui/"', 'href="/chat/"', 'href="/status"', 'href="/api/openapi.json"'):
            assert href in page
            served = await api.get(href[6:-1], allow_redirects=False)
            assert served.status in (200, 302), href
        chinese = await (await api.get("/", headers={"Accept-Language": "zh-CN"})).text()
        assert "12345 市民服务热线" in chinese
    # without the web chat, no link to it
    async with TestClient(
        TestServer(create_app(make_settings(tmp_path / "2", database_url), start_jobs=False))
    ) as bare:
        page = await (await bare.get("/")).text()
        assert 'href="/chat/"' not in page and 'href="/ui/"' in page
