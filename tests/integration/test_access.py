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
from aiohttp import FormData, WSServerHandshakeError
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


# --- the staff pages' parts: every new page, fragment and form -----------------------------

PARTS = {
    "/ui/dispatch": {Role.AGENT, Role.SUPERVISOR},
    "/ui/dispatch/list": {Role.AGENT, Role.SUPERVISOR},
    "/ui/approvals": {Role.SUPERVISOR, Role.ADMIN},
    "/ui/approvals/list": {Role.SUPERVISOR, Role.ADMIN},
    "/ui/tickets": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT},
    "/ui/tickets/results": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT},
    "/ui/tickets.csv": {Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT},
    "/ui/desk/side": {Role.AGENT, Role.SUPERVISOR},
    "/ui/wallboard/live": {Role.SUPERVISOR, Role.ADMIN},
    "/ui/wallboard/kpis": {Role.SUPERVISOR, Role.ADMIN},
}


async def test_every_part_of_the_pages_by_role(world: Any) -> None:
    for user, role in USERS.items():
        client = await _cookie_client(world, user)
        try:
            for path, roles in PARTS.items():
                response = await client.get(path, allow_redirects=False)
                assert response.status == (200 if role in roles else 403), (user, path)
        finally:
            await client.close()


async def test_another_department_finds_nothing_of_ours_anywhere(world: Any) -> None:
    number = world.ids["ticket"]
    rt = world.rt
    other = await _cookie_client(world, "mh-water")
    own = await _cookie_client(world, "mh-municipal")
    try:
        for path in (
            f"/ui/tickets?number={number}",
            f"/ui/tickets/results?number={number}",
            f"/ui/tickets.csv?number={number}",
            "/ui/tickets?q=路灯",
            "/ui/tickets?view=open",
        ):
            shown = number if path.startswith("/ui/tickets.csv") else f'data-number="{number}"'
            theirs = await other.get(path)
            assert theirs.status == 200 and shown not in await theirs.text(), path
            ours = await own.get(path)
            assert ours.status == 200 and shown in await ours.text(), path
        for path in (f"/ui/tickets/{number}/card", f"/ui/tickets/{number}/timeline"):
            assert (await other.get(path)).status == 404, path
            assert (await own.get(path)).status == 200, path
        page = await own.get(f"/ui/tickets/{number}")
        token = re.search(r'"csrf": "([^"]+)"', await page.text())
        assert token is not None
        before = (await rt_ticket(rt, number)).version
        page = await other.get("/ui/portal")
        their_token = re.search(r'"csrf": "([^"]+)"', await page.text())
        assert their_token is not None
        answer = await other.post(
            f"/ui/tickets/{number}/steps/sign_for",
            data={"csrf": their_token.group(1)},
            headers={"HX-Request": "true"},
        )
        assert answer.status == 404
        assert (await rt_ticket(rt, number)).version == before  # nothing changed
        # and a department may not dispatch, whatever it posts
        answer = await other.post(
            "/ui/dispatch/selected", data={"csrf": their_token.group(1), "ticket": number}
        )
        assert answer.status == 403
        # notes and files: ours are ours; theirs are refused as if the ticket did not exist
        ours = {"csrf": token.group(1)}
        theirs = {"csrf": their_token.group(1)}
        note = await own.post(
            f"/ui/tickets/{number}/notes", data={**ours, "note": "已联系市民"}, headers=HX
        )
        assert note.status == 200 and "已联系市民" in await note.text()
        sent = await upload_photo(own, number, token.group(1))
        assert sent.status == 200, await sent.text()
        file_path = re.search(rf"/ui/tickets/{number}/attachments/\d+", await sent.text())
        assert file_path is not None
        assert (await own.get(file_path.group(0))).status == 200
        assert (await other.get(file_path.group(0))).status == 404
        before = (await rt_ticket(rt, number)).version
        note = await other.post(
            f"/ui/tickets/{number}/notes", data={**theirs, "note": "别的单位的留言"}, headers=HX
        )
        assert note.status == 404 and "已联系市民" not in await note.text()
        sent = await upload_photo(other, number, their_token.group(1))
        assert sent.status == 404
        casework = await ticket_casework_of(rt, number)
        assert [n.body for n in casework["notes"]] == ["已联系市民"]
        assert len(casework["files"]) == 1
        assert (await rt_ticket(rt, number)).version == before
        # the map's ticket layer
        assert number not in await (await other.get("/ui/map/tickets.json")).text()
        assert number in await (await own.get("/ui/map/tickets.json")).text()
    finally:
        await other.close()
        await own.close()


HX = {"HX-Request": "true"}
# a 1x1 PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


async def upload_photo(client: Any, number: str, csrf: str) -> Any:
    photo = FormData()
    photo.add_field("file", PNG, filename="lamp.png", content_type="image/png")
    return await client.post(
        f"/ui/tickets/{number}/attachments", data=photo, headers={**HX, "X-CSRF-Token": csrf}
    )


async def ticket_casework_of(rt: Any, number: str) -> dict[str, list[Any]]:
    from callcenter.views import ticket_casework

    row = await rt_ticket(rt, number)
    async with rt.db.read() as conn:
        return await ticket_casework(conn, row.id)


async def rt_ticket(rt: Any, number: str) -> Any:
    from callcenter.views import ticket_by_ref

    async with rt.db.read() as conn:
        return await ticket_by_ref(conn, number)
