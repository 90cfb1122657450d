"""Input a fuzzer sends: every answer is a 4xx with a reason, never a 500 and never another row.

Ids that look like numbers to ``str.isdigit()`` but are not (``²``, ``१``), ids
beyond the databases' 64-bit integers, references to rows that do not exist,
and agents writing into conversations that are not theirs.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from callcenter.actions import acd
from callcenter.actions.intake import Inbound, receive_message
from callcenter.runtime import Runtime
from callcenter.store.tables import messages
from tests.helpers import assign_to, signed_in_client

TOO_BIG = str(2**63)  # one more than the largest BIGINT
TOO_SMALL = str(-(2**63) - 1)


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{user}", "Accept-Language": "en"}


async def answer(
    api: TestClient, method: str, path: str, user: str = "supervisor", **kwargs: Any
) -> tuple[int, Any]:
    response = await api.request(method, path, headers=auth(user), **kwargs)
    assert response.content_type == "application/json", (path, await response.text())
    return response.status, await response.json()


async def _a_ticket(api: TestClient) -> dict[str, Any]:
    status, ticket = await answer(
        api, "POST", "/api/tickets", "agent1", json={"description": "港湾路路灯不亮"}
    )
    assert status == 201
    return ticket  # type: ignore[no-any-return]


@pytest.mark.parametrize("raw", ["²", "१", "１", "0", "-1", TOO_BIG, "1" * 25, "1e3"])
@pytest.mark.parametrize(
    "template",
    [
        "/api/citizens/{}",
        "/api/conversations/{}",
        "/api/departments/{}/summary",
    ],
)
async def test_ids_in_the_path_are_checked_before_the_database(
    api: TestClient, raw: str, template: str
) -> None:
    await _a_ticket(api)
    status, body = await answer(api, "GET", template.format(raw))
    assert status in (400, 404), (template, raw, status, body)
    assert body["error"]["code"] in ("invalid_field", "department_not_found")
    assert body["error"]["message"]


@pytest.mark.parametrize("raw", ["१", "²", "１", TOO_BIG])
async def test_a_ticket_is_never_found_by_a_digit_of_another_script(
    api: TestClient, raw: str
) -> None:
    ticket = await _a_ticket(api)
    assert ticket["id"] == 1
    status, body = await answer(api, "GET", f"/api/tickets/{raw}")
    assert (status, body["error"]["code"]) == (404, "ticket_not_found")
    status, body = await answer(api, "POST", f"/api/tickets/{raw}/urge", "agent1", json={})
    assert (status, body["error"]["code"]) == (404, "ticket_not_found")
    pages = await signed_in_client(api.app, "agent1")
    try:
        page = await pages.get(f"/ui/tickets/{raw}")
        assert page.status == 404
    finally:
        await pages.close()


@pytest.mark.parametrize(
    "query",
    [
        f"citizen_id={TOO_BIG}",
        f"department_id={TOO_SMALL}",
        "department_id=99999999999999999999999",
        "citizen_id=%C2%B2",
    ],
)
async def test_ids_in_queries_beyond_64_bits_are_400(api: TestClient, query: str) -> None:
    status, body = await answer(api, "GET", f"/api/tickets?{query}")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = await answer(api, "GET", f"/api/conversations?{query}")
    assert (status, body["error"]["code"]) == (400, "invalid_request")


async def test_ids_in_bodies_beyond_64_bits_are_400(api: TestClient) -> None:
    ticket = await _a_ticket(api)
    status, body = await answer(
        api,
        "POST",
        f"/api/tickets/{ticket['number']}/dispatch",
        "agent1",
        json={"department_id": int(TOO_BIG)},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = await answer(
        api,
        "PUT",
        f"/api/acd/agents/{TOO_BIG}",
        json={"capacity": 2},
    )
    assert (status, body["error"]["code"]) == (400, "invalid_field")
    status, body = await answer(
        api, "POST", "/api/conversations/1/transfer", "agent1", json={"to_agent_id": int(TOO_BIG)}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_request")


async def test_a_ticket_for_a_citizen_or_conversation_that_does_not_exist_is_400(
    api: TestClient,
) -> None:
    rt: Runtime = api.rt  # type: ignore[attr-defined]
    result = await receive_message(rt, Inbound("sms", "phone", "+8613800000021", "你好"))
    other = await receive_message(rt, Inbound("sms", "phone", "+8613800000022", "你好"))
    for extra, code in (
        ({"citizen_id": 999999}, "unknown_citizen"),
        ({"conversation_id": 999999}, "unknown_conversation"),
        (
            {"citizen_id": other.citizen_id, "conversation_id": result.conversation_id},
            "conversation_of_another_citizen",
        ),
    ):
        status, body = await answer(
            api, "POST", "/api/tickets", "agent1", json={"description": "路灯不亮", **extra}
        )
        assert (status, body["error"]["code"]) == (400, code), body
        assert str(list(extra.values())[-1]) in body["error"]["message"]
    status, body = await answer(
        api,
        "POST",
        "/api/tickets",
        "agent1",
        json={
            "description": "路灯不亮",
            "citizen_id": result.citizen_id,
            "conversation_id": result.conversation_id,
        },
    )
    assert status == 201 and body["conversation_id"] == result.conversation_id


async def test_the_staff_socket_refuses_topics_and_resume_ids_of_other_scripts(
    api: TestClient,
) -> None:
    for user, query in (
        ("mh-water", "topics=department:%C2%B2"),  # "²"
        ("agent1", "topics=conversation:%E0%A5%A7"),  # "१"
    ):
        response = await api.get(f"/ui/ws?{query}", headers=auth(user))
        assert response.status == 403, query
        assert (await response.json())["error"]["code"] == "topic_not_allowed"
    socket = await api.ws_connect("/ui/ws?last_event_id=%C2%B2", headers=auth("agent1"))
    hello = await socket.receive_json(timeout=5)
    assert hello["type"] == "hello"
    await socket.close()


async def test_the_portal_takes_a_department_only_in_ascii_digits(api: TestClient) -> None:
    pages = await signed_in_client(api.app, "supervisor")
    try:
        response = await pages.get("/ui/portal?department=%C2%B2", allow_redirects=False)
        assert response.status == 200  # as for any text that is not a department's id
    finally:
        await pages.close()


@pytest.mark.parametrize("raw", ["²", "१", TOO_BIG])
async def test_a_mediation_or_a_party_is_named_only_in_ascii_digits(
    api: TestClient, raw: str
) -> None:
    pages = await signed_in_client(api.app, "supervisor")
    try:
        page = await pages.get(f"/ui/mediations/{raw}", allow_redirects=False)
        assert page.status == 404, await page.text()
        # a party's link: the party's id, a nonce and a signature
        link = await pages.get(f"/m/{raw}-nonce-signature", allow_redirects=False)
        assert 400 <= link.status < 500, await link.text()
    finally:
        await pages.close()


# --- an agent writes only into their own conversations (and waiting ones) ----------------


async def _outbound_count(rt: Runtime) -> int:
    async with rt.db.read() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(messages).where(messages.c.direction == "out")
        )
    return int(found or 0)


async def test_an_agent_writes_only_into_conversations_that_are_theirs(api: TestClient) -> None:
    rt: Runtime = api.rt  # type: ignore[attr-defined]
    waiting = await receive_message(rt, Inbound("sms", "phone", "+8613800000031", "你好"))
    a1 = await assign_to(rt, waiting.conversation_id, "agent1")
    path = f"/api/conversations/{waiting.conversation_id}/messages"
    before = await _outbound_count(rt)

    # another agent: refused, as for the conversation's end, transfer and ticket
    status, body = await answer(api, "POST", path, "agent2", json={"body": "我来回复"})
    assert (status, body["error"]["code"]) == (403, "not_your_conversation")
    for step, payload in (
        ("end", {"wrap_up_code": "resolved"}),
        ("transfer", {"to_queue": "general"}),
        ("ticket", {"description": "路灯"}),
    ):
        status, body = await answer(
            api,
            "POST",
            f"/api/conversations/{waiting.conversation_id}/{step}",
            "agent2",
            json=payload,
        )
        assert (status, body["error"]["code"]) == (403, "not_your_conversation"), step
    assert await _outbound_count(rt) == before

    # the agent who holds it, and a supervisor, may
    status, _ = await answer(api, "POST", path, "agent1", json={"body": "您好，请讲"})
    assert status == 201
    status, _ = await answer(api, "POST", path, "supervisor", json={"body": "班长在线"})
    assert status == 201

    # once it ended, nobody writes into it any more: the citizen's next text opens a new one
    await acd.end_conversation(rt, waiting.conversation_id, wrap_up_code="resolved", actor=a1)
    before = await _outbound_count(rt)
    for user, code in (
        ("agent1", "illegal_conversation_step"),
        ("agent2", "not_your_conversation"),
        ("supervisor", "illegal_conversation_step"),
    ):
        status, body = await answer(api, "POST", path, user, json={"body": "还在吗"})
        assert status in (403, 409) and body["error"]["code"] == code, (user, body)
    assert await _outbound_count(rt) == before
    status, body = await answer(api, "POST", path, "agent1", json={"body": "还在吗"})
    assert (
        "Ended" in body["error"]["message"] and "Write to the citizen" in body["error"]["message"]
    )

    # a conversation the bot closed (an automatic ticket) is nobody's to write into either
    closed = await receive_message(rt, Inbound("sms", "phone", "+8613800000032", "港湾路路灯坏了"))
    assert closed.conversation_state == "closed"
    status, body = await answer(
        api,
        "POST",
        f"/api/conversations/{closed.conversation_id}/messages",
        "agent1",
        json={"body": "x"},
    )
    assert (status, body["error"]["code"]) == (409, "illegal_conversation_step")
