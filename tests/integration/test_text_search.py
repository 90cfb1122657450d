"""Ticket text search through the pairs index finds exactly what ``LIKE`` alone finds
(each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from callcenter.actions.search_index import index_ticket_text, searched_texts
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.domain.textsearch import search_pattern, ticket_terms
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from callcenter.store.tables import ticket_terms as ticket_terms_table
from callcenter.store.tables import tickets
from callcenter.views import TicketFilter, list_tickets
from tests.helpers import actor

# (title, description, address): Chinese, Latin, mixed, punctuation, wildcards, emoji
TEXTS: list[tuple[str | None, str, str | None]] = [
    (None, "井盖丢了，晚上很危险", None),
    ("荷花路学校门口井盖松动", "荷花路学校门口的井盖松动了，已经好几天了。", "荷花路学校门口"),
    ("荷花路口积水", "荷花路口下雨积水，学校门口也有", None),
    ("Pothole on Main Street", "A deep pothole on Main Street near the school.", "12 Main St"),
    (None, "main street light is OUT again", "Elm Road"),
    (None, "路灯不亮！！晚上看不见", "湖滨路12号"),
    (None, "水管漏水，急！", "明湖小区3栋"),
    ("满意度100%_测试", "对处理结果100% 满意_谢谢", None),
    (None, "a\\b path is blocked; ab path is fine", None),
    (None, "WiFi信号差，wifi经常断", "新港路"),
    (None, "🚧 施工噪音，夜里22:00以后还在施工", "青石路"),
    (None, "噪音", None),
    (None, "咨询一下公积金提取", None),
    (None, "小区东门外的人行道上有一处窨井盖破损，" * 30, None),
]

QUERIES = [
    "井",
    "井盖",
    "荷花路学校门口",
    "学校门口井盖",
    "荷花路口",
    "main",
    "MAIN STREET",
    "Main St",
    "pothole",
    "o",
    "！！",
    "，急",
    "100%",
    "_测",
    "%",
    "a\\b",
    "ab",
    "信号差",
    "wifi",
    "WIFI信号",
    "🚧",
    "🚧 施工",
    "22:00",
    "12号",
    "湖滨路12",
    "2026",
    "20261127-0001",
    "1127-00",
    "-",
    "不存在的词",
    "井盖丢了，晚上很危险",
    "噪音",
    " ",
    "有一处窨井盖破损，小区东门外的人行道上" * 3,
    "小区东门外的人行道上有一处窨井盖破损。" * 3,
]


def like_alone(q: str) -> Any:
    """The search as it was before the index: ``LIKE`` over every ticket."""
    pattern = f"%{search_pattern(q)}%"
    return or_(
        tickets.c.number.like(pattern),
        tickets.c.title.like(pattern),
        tickets.c.description.like(pattern),
        tickets.c.address.like(pattern),
    )


async def searched(rt: Runtime, q: str) -> tuple[list[int], int]:
    """The ids found (in id order) and the total the list shows."""
    async with rt.db.read() as conn:
        rows, total = await list_tickets(
            conn, rt, TicketFilter(q=q), actor=None, per_page=100, sort="oldest"
        )
    return sorted(r.id for r in rows), total


async def liked(rt: Runtime, q: str) -> list[int]:
    async with rt.db.read() as conn:
        return list(
            (
                await conn.execute(select(tickets.c.id).where(like_alone(q)).order_by(tickets.c.id))
            ).scalars()
        )


async def stored_terms(rt: Runtime, ticket_id: int) -> set[int]:
    async with rt.db.read() as conn:
        return set(
            (
                await conn.execute(
                    select(ticket_terms_table.c.term).where(
                        ticket_terms_table.c.ticket_id == ticket_id
                    )
                )
            ).scalars()
        )


async def open_all(rt: Runtime) -> list[dict[str, Any]]:
    agent = await actor(rt, "agent1")
    return [
        await create_ticket(
            rt, TicketDraft(description=d, title=t, address=a), actor=agent, dispatch=True
        )
        for t, d, a in TEXTS
    ]


async def test_the_search_finds_what_like_alone_finds(rt: Runtime) -> None:
    await open_all(rt)
    for q in QUERIES:
        ids, total = await searched(rt, q)
        expected = await liked(rt, q)
        assert (ids, total) == (expected, len(expected)), q


async def test_the_search_finds_each_kind_of_text(rt: Runtime) -> None:
    opened = await open_all(rt)
    number = {i: t["id"] for i, t in enumerate(opened)}
    assert (await searched(rt, "井盖"))[0] == [number[0], number[1], number[13]]
    assert (await searched(rt, "有一处窨井盖破损，小区东门外的人行道上" * 3))[0] == [number[13]]
    assert (await searched(rt, "小区东门外的人行道上有一处窨井盖破损。" * 3))[1] == 0
    assert (await searched(rt, "荷花路学校门口"))[0] == [number[1]]
    assert (await searched(rt, "学校门口井盖"))[0] == [number[1]]
    assert (await searched(rt, "信号差"))[0] == [number[9]]
    assert (await searched(rt, "🚧 施工"))[0] == [number[10]]
    assert (await searched(rt, "，急"))[0] == [number[6]]
    assert (await searched(rt, "湖滨路12"))[0] == [number[5]]
    assert (await searched(rt, "不存在的词"))[1] == 0
    assert (await searched(rt, opened[3]["number"]))[0] == [number[3]]
    # Latin letters: SQLite's LIKE ignores their case, PostgreSQL's does not
    main = (await searched(rt, "MAIN STREET"))[0]
    assert main == ([number[3], number[4]] if rt.db.is_sqlite else [])
    main = (await searched(rt, "Main Street"))[0]
    assert main == ([number[3], number[4]] if rt.db.is_sqlite else [number[3]])


async def test_every_ticket_holds_the_pairs_of_its_text(rt: Runtime) -> None:
    """What opening a ticket writes, and what the workflow's steps leave (none of them
    changes the text: the pairs stay those of the text)."""
    opened = await open_all(rt)
    for ticket in opened:
        assert await stored_terms(rt, ticket["id"]) == ticket_terms(searched_texts(ticket))
    department = await actor(rt, "mh-municipal")
    supervisor = await actor(rt, "supervisor")
    lit = next(t for t in opened if t["department_id"] == department.department_id)
    await take_step(rt, lit["id"], Step.SIGN_FOR, actor=department)
    await take_step(rt, lit["id"], Step.REPLY, actor=department, text="已修复井盖")
    await take_step(rt, lit["id"], Step.CLOSE, actor=supervisor)
    await take_step(rt, lit["id"], Step.REOPEN, actor=supervisor, reason="井盖又松了")
    assert await stored_terms(rt, lit["id"]) == ticket_terms(searched_texts(lit))
    assert (await searched(rt, "已修复"))[0] == await liked(rt, "已修复") == []


async def test_a_changed_text_is_found_by_its_new_words_only(rt: Runtime) -> None:
    """The helper an action that changes a ticket's text calls in its transaction."""
    opened = await open_all(rt)
    ticket = opened[0]
    before = searched_texts(ticket)
    changed = {"title": "窨井盖缺失", "description": "人行道上的窨井盖缺失", "address": "望江路"}
    async with rt.transaction() as tx:
        await tx.execute(tickets.update().where(tickets.c.id == ticket["id"]).values(**changed))
        await index_ticket_text(tx, ticket["id"], searched_texts(changed), before=before)
    assert await stored_terms(rt, ticket["id"]) == ticket_terms(searched_texts(changed))
    for q in ("窨井", "望江路", "井盖", "丢了", "晚上很危险", "人行道"):
        ids, total = await searched(rt, q)
        assert (ids, total) == (await liked(rt, q), len(await liked(rt, q))), q
    assert ticket["id"] not in (await searched(rt, "丢了"))[0]
    assert ticket["id"] in (await searched(rt, "望江路"))[0]
    async with rt.db.read() as conn:
        rows = await conn.scalar(select(func.count()).select_from(ticket_terms_table))
    each = [len(await stored_terms(rt, t["id"])) for t in opened]
    assert rows == sum(each)  # nothing left behind
