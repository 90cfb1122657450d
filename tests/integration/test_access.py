"""Who may do what: every API endpoint, every page and every websocket topic, across the
four roles and two departments. A role that may not gets 403; department staff asking
about another department's ticket or counters get 404 (so numbers cannot be probed);
their websocket carries only their own department's tickets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import TicketDraft, create_ticket
from callcenter.api.http import ENDPOINTS
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.workflow import Role
from tests.conftest import load_test_city, make_settings
from tests.helpers import actor, cell_point, dept_id, signed_in_client

USERS = {
    "agent1": Role.AGENT,
    "supervisor": Role.SUPERVISOR,
    "admin": Role.ADMIN,
    "mh-municipal": Role.DEPARTMENT,  # owns the ticket below
    "mh-water": Role.DEPARTMENT,  # another department
}
# endpoints about one department's data: the other department gets 404, not the data
DEPARTMENT_SCOPED = re.compile(
    r"^/tickets/\{ticket\}|^/departments/\{department_id\}/summary|^/mediations/"
)


@pytest_asyncio.fixture
async def world(tmp_path: Path, database_url: str, clock: ManualClock) -> AsyncIterator[Any]:
    settings = make_settings(tmp_path, database_url, channels=["channels.simulated:SimulatedSms"])
    rt = build_runtime(settings, clock=clock, seed=3)
    app = create_app(settings, runtime=rt, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        await load_test_city(rt)
        agent = await actor(rt, "agent1")
        lat, lon = cell_point(rt, "GRID-HB-HB-01")

        async def fresh_ticket() -> str:
            ticket = await create_ticket(
                rt,
                TicketDraft(description="路灯坏了", category="street_light", lat=lat, lon=lon),
                actor=agent,
                dispatch=True,
            )
            assert ticket["department_id"] == dept_id(rt, "MH-MUNICIPAL")
            return str(ticket["number"])

        client.fresh_ticket = fresh_ticket  # type: ignore[attr-defined]
        number = await fresh_ticket()
        queued = await receive_message(rt, Inbound("sms", "phone", "+8613800000009", "你好"))
        await acd.set_presence(rt, "available", actor=agent)
        await acd.distribute(rt)
        client.ids = {  # type: ignore[attr-defined]
            "ticket": number,
            "first_ticket": number,
            "department_id": str(dept_id(rt, "MH-MUNICIPAL")),
            "conversation_id": str(queued.conversation_id),
            "citizen_id": str(queued.citizen_id),
            "offer_id": "1",
            "agent_id": str(agent.id),
        }
        client.ids.update(await mediation_ids(rt, tmp_path))  # type: ignore[attr-defined]
        client.rt = rt  # type: ignore[attr-defined]
        yield client


async def mediation_ids(rt: Any, tmp_path: Path) -> dict[str, str]:
    """A mediation on a dispute ticket of MH-MUNICIPAL, with a party and a recording."""
    from callcenter.actions import mediations as med
    from callcenter.actions.tickets import take_step
    from callcenter.domain.workflow import Step
    from callcenter.store.queries import insert_row
    from callcenter.store.tables import mediation_recordings

    agent = await actor(rt, "agent1")
    ticket = await create_ticket(
        rt, TicketDraft(description="邻里纠纷", category="neighbour_dispute"), actor=agent
    )
    await take_step(
        rt, ticket["id"], Step.DISPATCH, actor=agent, department_id=dept_id(rt, "MH-MUNICIPAL")
    )
    mediator = await actor(rt, "mh-municipal")
    await med.set_mediator(
        rt, mediator.id, languages=["zh-CN"], actor=await actor(rt, "supervisor")
    )
    m = await med.propose_mediation(
        rt,
        ticket["id"],
        actor=agent,
        mediator_id=mediator.id,
        parties=[
            med.PartyDraft("甲", "+8613800000101", "applicant"),
            med.PartyDraft("乙", "+8613800000102", "respondent"),
        ],
    )
    async with rt.db.read() as conn:
        party = (await med.load_parties(conn, m["id"]))[0]
    (rt.settings.data_dir / "rec.webm").parent.mkdir(parents=True, exist_ok=True)
    (rt.settings.data_dir / "rec.webm").write_bytes(b"\x1aE\xdf\xa3")
    async with rt.transaction() as tx:
        rec = await insert_row(
            tx,
            mediation_recordings,
            {
                "mediation_id": m["id"],
                "ticket_id": ticket["id"],
                "state": "ready",
                "path": "rec.webm",
                "created_at": tx.state["now"],
                "expires_at": tx.state["now"],
            },
        )
    return {
        "id": str(m["id"]),
        "party": str(party.id),
        "recording": str(rec.id),
        "dispute_ticket": ticket["number"],
    }


def sample_body(model: Any, ids: dict[str, str]) -> dict[str, Any]:
    """A body that passes validation, so the answer is about who asks, not what."""
    if model is None:
        return {}
    body: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            continue
        annotation = str(field.annotation)
        if name == "parties":
            body[name] = [
                {"name": "甲", "phone": "+8613800000201", "role": "applicant"},
                {"name": "乙", "phone": "+8613800000202", "role": "respondent"},
            ]
            continue
        if name == "into_ticket_id":
            body[name] = ids["first_ticket"]
            continue
        if name == "scheduled_at":
            body[name] = "2026-12-03T02:00:00+00:00"
            continue
        if name == "outcome":
            body[name] = "none"
            continue
        body[name] = 1 if "int" in annotation else 1.0 if "float" in annotation else "测试"
    return body


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{user}"}


async def test_every_endpoint_across_roles_and_departments(world: Any) -> None:
    checked = 0
    for ep in ENDPOINTS:
        if ep.roles is None:
            continue
        if "{ticket}" in ep.path:  # each step on a ticket that was just dispatched
            world.ids["ticket"] = await world.fresh_ticket()
        path = "/api" + re.sub(r"{(\w+)}", lambda m: world.ids[m.group(1)], ep.path)
        body = sample_body(ep.body, world.ids)
        anonymous = await world.request(ep.method, path, json=body)
        assert anonymous.status == 401, (ep.method, path)
        for user, role in USERS.items():
            response = await world.request(ep.method, path, headers=bearer(user), json=body)
            if role not in ep.roles:
                assert response.status == 403, (ep.method, path, user, response.status)
                answer = await response.json()
                assert answer["error"]["code"] == "role_not_allowed"
            elif user == "mh-water" and DEPARTMENT_SCOPED.match(ep.path):
                assert response.status == 404, (ep.method, path, user, await response.text())
            elif ep.path.startswith("/mediations/") and response.status == 403:
                # a role that may act on mediations, refused a step by the case's own
                # table (only its mediator opens the room...), never by role
                answer = await response.json()
                assert answer["error"]["code"] == "step_not_permitted", (path, user, answer)
            elif ep.path.startswith("/acd/offers/") and user != "agent1":
                assert response.status == 404, (ep.method, path, user)  # another agent's offer
            else:
                assert response.status not in (401, 403, 404), (
                    ep.method,
                    path,
                    user,
                    await response.text(),
                )
            checked += 1
    assert checked > 150


async def test_lists_never_show_another_departments_tickets(world: Any) -> None:
    response = await world.get("/api/tickets?per_page=100", headers=bearer("mh-water"))
    assert response.status == 200
    assert (await response.json())["items"] == []
    response = await world.get("/api/tickets?per_page=100", headers=bearer("mh-municipal"))
    numbers = [t["number"] for t in (await response.json())["items"]]
    assert sorted(numbers) == sorted([world.ids["ticket"], world.ids["dispute_ticket"]])
    response = await world.get("/api/tickets?per_page=100", headers=bearer("supervisor"))
    assert [t["number"] for t in (await response.json())["items"]] == numbers


async def _cookie_client(world: Any, user: str) -> TestClient:
    client: TestClient = await signed_in_client(world.app, user)
    return client


PAGES = {
    "/ui/desk": {Role.AGENT, Role.SUPERVISOR},
    "/ui/wallboard": {Role.SUPERVISOR, Role.ADMIN},
    "/ui/portal": {Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN},
}


async def test_pages_across_roles_and_departments(world: Any) -> None:
    for user, role in USERS.items():
        client = await _cookie_client(world, user)
        try:
            for path, roles in PAGES.items():
                response = await client.get(path, allow_redirects=False)
                assert response.status == (200 if role in roles else 403), (user, path)
            response = await client.get(f"/ui/tickets/{world.ids['ticket']}")
            assert response.status == (404 if user == "mh-water" else 200), user
            if user == "mh-water":
                other = world.ids["department_id"]
                response = await client.get(f"/ui/portal?department={other}")
                assert response.status == 404
        finally:
            await client.close()
    anonymous = await world.get("/ui/desk", allow_redirects=False)
    assert anonymous.status == 302 and anonymous.headers["Location"].startswith("/ui/login")


TOPICS = {
    "tickets": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT},
    "conversations": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN},
    "conversation:1": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN},
    "agents": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN},
    "wallboard": {Role.SUPERVISOR, Role.ADMIN},
}


async def test_websocket_topics_across_roles_and_departments(world: Any) -> None:
    municipal, water = world.ids["department_id"], str(dept_id(world.rt, "MH-WATER"))
    for user, role in USERS.items():
        own = {"mh-municipal": municipal, "mh-water": water}.get(user)
        topics = dict(TOPICS)
        topics[f"department:{municipal}"] = {Role.AGENT, Role.SUPERVISOR, Role.ADMIN} | (
            {Role.DEPARTMENT} if own == municipal else set()
        )
        for topic, roles in topics.items():
            try:
                ws = await world.ws_connect(f"/ui/ws?topics={topic}", headers=bearer(user))
            except WSServerHandshakeError as refused:
                assert role not in roles, (user, topic)
                assert refused.status == 403, (user, topic)
                continue
            assert role in roles, (user, topic)
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello" and hello["topics"] == [topic]
            # asking for more later is checked the same way
            await ws.send_json({"type": "subscribe", "topics": ["wallboard"]})
            answer = await ws.receive_json(timeout=5)
            allowed = role in TOPICS["wallboard"]
            assert answer["type"] == ("subscribed" if allowed else "error"), (user, answer)
            if not allowed:
                assert answer["status"] == 403
            await ws.close()
    unauthenticated = None
    try:
        await world.ws_connect("/ui/ws?topics=tickets")
    except WSServerHandshakeError as refused:
        unauthenticated = refused.status
    assert unauthenticated == 401


async def test_department_sockets_carry_only_their_own_tickets(world: Any) -> None:
    from callcenter.actions.tickets import take_step
    from callcenter.domain.workflow import Step

    own = await world.ws_connect("/ui/ws?topics=tickets", headers=bearer("mh-municipal"))
    other = await world.ws_connect("/ui/ws?topics=tickets", headers=bearer("mh-water"))
    for ws in (own, other):
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    staff = await actor(world.rt, "mh-municipal")
    await take_step(world.rt, world.ids["ticket"], Step.SIGN_FOR, actor=staff)
    event = await own.receive_json(timeout=5)
    assert (event["type"], event["event"], event["data"]["action"]) == (
        "event",
        "ticket.changed",
        "sign_for",
    )
    # an event every listener gets, sent after the ticket's: the other department's next
    # frame is this one, so the ticket's never reached it
    from callcenter.bus import Event
    from callcenter.bus.events import DIRECTORY_CHANGED

    world.rt.bus.publish(Event(DIRECTORY_CHANGED, {}, world.rt.clock.now()))
    frame = await other.receive_json(timeout=5)
    assert (frame["type"], frame["event"]) == ("event", DIRECTORY_CHANGED)
    assert (await own.receive_json(timeout=5))["event"] == DIRECTORY_CHANGED
    await own.close()
    await other.close()
