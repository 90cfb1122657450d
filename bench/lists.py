"""Ticket lists, search and the wallboard's numbers on a city-year of data.

Builds a year of a big city's hotline on SQLite and on PostgreSQL (by default 1 M
tickets, 3 M messages, 60 departments, 500 grid cells) through the real schema
(Alembic) and the real directory loader, the bulk rows written straight into the
tables (executemany on SQLite, COPY on PostgreSQL), each ticket's search pairs
(``ticket_terms``) by the function the actions use. The distribution follows a real
hotline's: more on weekdays and in the day than at night and at weekends, a summer
peak, categories by a Zipf law, repeat callers (a few phones call very often), most
tickets closed, the last fortnight's still open, some of them late.

Then each query the staff pages run is timed through the read side the pages use
(``callcenter.views``, ``callcenter.reports``): p50 and p99 over ``--runs`` runs,
beside the same SQL statements, recorded from that call, replayed on the bare driver
(sqlite3 / asyncpg) on the same database in the same run. Target: p99 under
300 ms and within 2x of the bare SQL.

    .venv/bin/python bench/lists.py [--tickets 1000000] [--runs 40] [--backends sqlite postgres]

Stops by itself: generation is bounded by the counts, each query by ``--runs`` and
``--max-seconds``. The databases are made for the run and removed after it
(``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from callcenter.actions.directory import load_city  # noqa: E402
from callcenter.actions.search_index import searched_texts  # noqa: E402
from callcenter.bootstrap import close_runtime, open_runtime  # noqa: E402
from callcenter.clock import ManualClock  # noqa: E402
from callcenter.config import Settings  # noqa: E402
from callcenter.demo import city as demo_city  # noqa: E402
from callcenter.domain.textsearch import ticket_terms  # noqa: E402
from callcenter.domain.workflow import SYSTEM, Actor, Role  # noqa: E402
from callcenter.runtime import Runtime  # noqa: E402
from callcenter.store.migrate import upgrade  # noqa: E402

PG_ADMIN = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# the end of the year generated: a Wednesday, 15:00 in Shanghai
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
TARGET_MS = 300.0
LOCAL_OFFSET = timedelta(hours=8)  # Asia/Shanghai, for the tickets' numbers
# below this the bare driver answers in microseconds and a ratio says nothing: the
# target is then this much added time
SMALL_MS = 5.0
TARGET_RATIO = 2.0

# --- a city of 60 departments and 500 grid cells --------------------------------------------

ROADS = [
    "湖滨",
    "港湾",
    "荷花",
    "明湖",
    "新港",
    "青石",
    "桂花",
    "望江",
    "金桥",
    "东风",
    "人民",
    "解放",
    "长江",
    "黄河",
    "中山",
    "建设",
    "学府",
    "文化",
]
PLACES = [
    "小区",
    "路口",
    "公园",
    "菜市场",
    "学校门口",
    "地铁站",
    "公交站",
    "商场",
    "医院门口",
    "老街",
]
FILLERS = [
    "已经好几天了",
    "晚上尤其严重",
    "希望尽快处理",
    "影响居民出行",
    "之前反映过没有解决",
    "请相关部门来看一下",
    "老人小孩很不方便",
    "",
]


def synthetic_city() -> dict[str, Any]:
    """The demo city's categories and city-wide departments, with four districts of
    eight streets each and 500 communities (one grid cell each): 60 departments."""
    base = demo_city()
    depts = [d for d in base["departments"] if d["kind"] not in ("district", "street", "community")]
    depts = [d for d in depts if d.get("parent") in (None, "MH")]
    district_kinds = ("urban_management", "housing", "market_regulation", "civil_affairs")
    cells: list[dict[str, Any]] = []
    community = 0
    for d in range(4):
        dcode = f"D{d + 1}"
        depts.append(
            {
                "code": dcode,
                "kind": "district",
                "name_zh": f"第{d + 1}区",
                "name_en": f"District {d + 1}",
                "parent": "MH",
            }
        )
        for kind in district_kinds:
            depts.append(
                {
                    "code": f"{dcode}-{kind}",
                    "kind": kind,
                    "name_zh": f"第{d + 1}区{kind}",
                    "name_en": f"District {d + 1} {kind}",
                    "parent": dcode,
                }
            )
        for s in range(8):
            scode = f"{dcode}-S{s + 1}"
            depts.append(
                {
                    "code": scode,
                    "kind": "street",
                    "name_zh": f"第{d + 1}区{ROADS[s]}街道",
                    "name_en": f"Street {d + 1}.{s + 1}",
                    "parent": dcode,
                }
            )
            for _c in range(16 if (d * 8 + s) < 20 else 15):
                if community == 500:
                    break
                ccode = f"{scode}-C{community}"
                depts.append(
                    {
                        "code": ccode,
                        "kind": "community",
                        "name_zh": f"社区{community}",
                        "name_en": f"Community {community}",
                        "parent": scode,
                    }
                )
                lon = 120.0 + 0.02 * (community % 25)
                lat = 30.0 + 0.02 * (community // 25)
                ring = [
                    [lon, lat],
                    [lon + 0.02, lat],
                    [lon + 0.02, lat + 0.02],
                    [lon, lat + 0.02],
                    [lon, lat],
                ]
                cells.append(
                    {
                        "code": f"G{community}",
                        "name": f"网格{community}",
                        "owner": ccode,
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    }
                )
                community += 1
    codes = {d["code"] for d in depts}
    return {
        "departments": depts,
        "categories": base["categories"],
        "grid_cells": cells,
        "users": [u for u in base["users"] if u.get("department") in (None, *codes)],
    }


# --- the year's rows ------------------------------------------------------------------------------


@dataclass
class World:
    rt: Runtime
    categories: list[Any]
    weights: list[float]
    handling: dict[int, list[int]]  # category id -> departments that take it
    cells: list[Any]
    street_of_cell: dict[int, int]
    district_of_cell: dict[int, int]
    phones: list[str]
    phone_weights: list[float]


def world(rt: Runtime) -> World:
    directory = rt.directory
    categories = sorted(directory.categories, key=lambda c: c.code)
    rng = random.Random(7)
    rng.shuffle(categories)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(categories))]  # Zipf
    by_kind: dict[str, list[int]] = {}
    for d in directory.departments:
        by_kind.setdefault(d.kind, []).append(d.id)
    handling = {c.id: by_kind.get(c.department_kind) or by_kind["street"] for c in categories}
    street_of = {}
    district_of = {}
    for cell in directory.cells:
        chain = directory.chain(cell.owner_id)
        street_of[cell.id] = next(d.id for d in chain if d.kind == "street")
        district_of[cell.id] = next(d.id for d in chain if d.kind == "district")
    people = 450_000
    phones = [f"+86139{n:08d}" for n in range(people)]
    phone_weights = [1 / (rank + 10) ** 0.9 for rank in range(people)]  # repeat callers
    return World(
        rt,
        categories,
        weights,
        handling,
        list(directory.cells),
        street_of,
        district_of,
        phones,
        phone_weights,
    )


def day_weight(day: datetime) -> float:
    weekday = day.weekday()
    week = 1.15 if weekday < 5 else 0.65
    season = 1 + 0.15 * math.sin((day.timetuple().tm_yday - 100) / 365 * 2 * math.pi)
    return week * season


HOURS = [
    0.2,
    0.1,
    0.1,
    0.1,
    0.2,
    0.4,
    0.8,
    1.5,
    2.5,
    3.0,
    3.0,
    2.6,
    2.0,
    2.4,
    2.8,
    2.8,
    2.6,
    2.3,
    1.9,
    1.6,
    1.3,
    1.0,
    0.7,
    0.4,
]
CHANNELS = ["voice", "sms", "webchat", "telegram", "open311", "desk"]
CHANNEL_WEIGHTS = [55, 10, 20, 5, 5, 5]
TYPES_BY_DEFAULT = {
    "help": ["help"] * 8 + ["inquiry", "complaint"],
    "complaint": ["complaint"] * 8 + ["help", "report"],
}


def created_times(n: int, rng: random.Random) -> list[datetime]:
    start = NOW - timedelta(days=365)
    days = [start + timedelta(days=i) for i in range(365)]
    weights = [day_weight(d) for d in days]
    picked = rng.choices(range(365), weights=weights, k=n)
    hours = rng.choices(range(24), weights=HOURS, k=n)
    out = [
        (days[d] + timedelta(hours=h - 8, seconds=rng.randrange(3600))).replace(microsecond=0)
        for d, h in zip(picked, hours, strict=True)
    ]
    out = [t if t < NOW else NOW - timedelta(minutes=rng.randrange(1, 600)) for t in out]
    out.sort()
    return out


def text_for(category: Any, rng: random.Random) -> tuple[str, str]:
    keyword = rng.choice(category.keywords_zh or (category.name_zh,))
    road = rng.choice(ROADS) + "路"
    place = rng.choice(PLACES)
    filler = rng.choice(FILLERS)
    description = f"{road}{place}{keyword}，{filler}。" if filler else f"{road}{place}{keyword}。"
    if rng.random() < 0.3:
        description = "你好，" + description + rng.choice(["谢谢。", "麻烦了。", "请尽快回复。"])
    return description, f"{road}{place}{keyword}"[:60]


def ticket_rows(w: World, n: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """Tickets with the fields the lists and counters read, in creation order."""
    rng = random.Random(seed)
    times = created_times(n, rng)
    cats = rng.choices(w.categories, weights=w.weights, k=n)
    channels = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS, k=n)
    citizen_ids = rng.choices(range(1, len(w.phones) + 1), weights=w.phone_weights, k=n)
    per_day: dict[str, int] = {}
    for i, (created, category, channel) in enumerate(zip(times, cats, channels, strict=True)):
        day = (created + LOCAL_OFFSET).strftime("%Y%m%d")
        per_day[day] = per_day.get(day, 0) + 1
        cell = rng.choice(w.cells)
        candidates = w.handling[category.id]
        dept = candidates[0] if len(candidates) == 1 else rng.choice(candidates)
        if w.rt.directory.by_id[dept].kind == "street":
            dept = w.street_of_cell[cell.id]
        age = NOW - created
        urgent = rng.random() < 0.02
        limit_days = {
            "inquiry": 2,
            "help": 10,
            "suggestion": 10,
            "complaint": 15,
            "report": 15,
        }.get(category.default_type, 10)
        limit = timedelta(hours=8) if urgent else timedelta(days=limit_days * 7 / 5)
        dispatched = created + timedelta(minutes=rng.randrange(1, 90))
        sign_due = dispatched + (timedelta(hours=2) if urgent else timedelta(days=1.4))
        due = dispatched + limit
        state = "closed"
        accepted = dispatched + timedelta(hours=rng.uniform(0.2, 20))
        replied: datetime | None = dispatched + limit * rng.uniform(0.2, 1.15)
        closed: datetime | None = replied + timedelta(hours=rng.uniform(1, 30)) if replied else None
        roll = rng.random()
        if age < timedelta(days=20) and (replied is None or replied > NOW or roll < 0.35):
            # still running: not yet signed for, in hand, or late
            state = rng.choices(
                ["dispatched", "accepted", "new", "returned", "replied"], [25, 60, 6, 3, 6]
            )[0]
            if state == "dispatched" and accepted < NOW and rng.random() < 0.7:
                state = "accepted"
            replied = closed = None
            if state == "replied":
                replied = min(NOW, accepted + timedelta(hours=10))
        elif roll < 0.012:
            state = "cancelled"
            replied = None
        elif roll < 0.03:
            state = "merged"
            replied = None
        if state in ("new", "returned"):
            dispatched = sign_due = due = None  # type: ignore[assignment]
            dept = None  # type: ignore[assignment]
        if state in ("new", "returned", "dispatched"):
            accepted = None  # type: ignore[assignment]
        if state not in ("closed",):
            closed = (
                None
                if state in ("dispatched", "accepted", "new", "returned", "replied")
                else created + timedelta(days=1)
            )
        description, title = text_for(category, rng)
        ticket_type = rng.choice(
            TYPES_BY_DEFAULT.get(category.default_type, [category.default_type])
        )
        yield {
            "id": i + 1,
            "number": f"{day}-{per_day[day]:04d}",
            "type": ticket_type,
            "priority": "urgent" if urgent else "normal",
            "state": state,
            "category_id": category.id,
            "title": title,
            "description": description,
            "citizen_id": citizen_ids[i],
            "conversation_id": i + 1,
            "origin_channel": channel,
            "locale": "zh-CN",
            "address": None,
            "grid_cell_id": cell.id,
            "street_id": w.street_of_cell[cell.id],
            "district_id": w.district_of_cell[cell.id],
            "department_id": dept,
            "created_at": created,
            "updated_at": closed or replied or accepted or dispatched or created,
            "dispatched_at": dispatched,
            "sign_due_at": sign_due,
            "accepted_at": accepted,
            "handle_started_at": dispatched,
            "due_at": due,
            "sign_warn_at": dispatched + (sign_due - dispatched) * 0.75 if dispatched else None,
            "warn_at": dispatched + (due - dispatched) * 0.75 if dispatched else None,
            "replied_at": replied,
            "closed_at": closed,
            "reply": "已处理。" if replied else None,
            "closure": "replied" if state == "closed" else None,
            "extension_days": 0,
            "return_count": 1 if state == "returned" else 0,
            "reopen_count": 0,
            "urge_count": 0,
            "supervised": False,
            "version": 3,
        }


TICKET_COLUMNS = [
    "id",
    "number",
    "type",
    "priority",
    "state",
    "category_id",
    "title",
    "description",
    "citizen_id",
    "conversation_id",
    "origin_channel",
    "locale",
    "address",
    "grid_cell_id",
    "street_id",
    "district_id",
    "department_id",
    "created_at",
    "updated_at",
    "dispatched_at",
    "sign_due_at",
    "accepted_at",
    "handle_started_at",
    "due_at",
    "sign_warn_at",
    "warn_at",
    "replied_at",
    "closed_at",
    "reply",
    "closure",
    "extension_days",
    "return_count",
    "reopen_count",
    "urge_count",
    "supervised",
    "version",
]
CITIZEN_COLUMNS = ["id", "name", "phone", "locale", "created_at"]
CONVERSATION_COLUMNS = [
    "id", "citizen_id", "channel", "address", "state", "kind", "locale", "created_at",
    "updated_at", "closed_at", "last_message_at", "ticket_id",
]  # fmt: skip
MESSAGE_COLUMNS = [
    "id",
    "conversation_id",
    "channel",
    "direction",
    "body",
    "status",
    "kind",
    "essential",
    "urgent",
    "meta",
    "created_at",
    "ticket_id",
]
REPLIES = [
    "您好，已为您登记工单，工单号稍后短信告知。",
    "请问具体位置在哪里？",
    "好的，已转相关部门处理。",
    "感谢您的来电。",
]


def conversation_and_messages(
    tickets: list[dict[str, Any]], w: World, first_message_id: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One conversation per ticket (the contact it came from), with 3 messages on
    average: the citizen's words, the hotline's answers."""
    convs: list[tuple[Any, ...]] = []
    msgs: list[tuple[Any, ...]] = []
    mid = first_message_id
    for t in tickets:
        channel = (
            t["origin_channel"]
            if t["origin_channel"] in ("sms", "webchat", "telegram", "voice")
            else "sms"
        )
        created = t["created_at"]
        last = created + timedelta(minutes=4)
        convs.append(
            (
                t["id"],
                t["citizen_id"],
                channel,
                w.phones[t["citizen_id"] - 1],
                "closed",
                "message",
                "zh-CN",
                created,
                last,
                last,
                last,
                t["id"],
            )
        )
        count = rng.choices((1, 2, 3, 4, 5), weights=(10, 20, 35, 20, 15))[0]
        for k in range(count):
            direction = "in" if k % 2 == 0 else "out"
            body = (
                t["description"]
                if k == 0
                else (
                    rng.choice(REPLIES)
                    if direction == "out"
                    else "在" + rng.choice(ROADS) + "路那边。"
                )
            )
            msgs.append(
                (
                    mid,
                    t["id"],
                    channel,
                    direction,
                    body,
                    "received" if direction == "in" else "delivered",
                    "text",
                    True,
                    False,
                    "{}",
                    created + timedelta(seconds=40 * k),
                    t["id"] if k == 0 else None,
                )
            )
            mid += 1
    return convs, msgs


# --- writing them, fast --------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class SqliteLoader:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-2000000")  # 2 GB: index pages stay in memory
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.execute("PRAGMA foreign_keys=OFF")

    async def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        marks = ",".join("?" * len(columns))
        self.conn.executemany(
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
            ([_sqlite_value(v) for v in row] for row in rows),
        )
        self.conn.commit()

    async def finish(self) -> None:
        self.conn.execute("ANALYZE")
        self.conn.commit()
        self.conn.close()


class PostgresLoader:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def finish(self) -> None:
        for table in ("citizens", "conversations", "messages", "tickets"):
            await self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # as autovacuum does after a bulk load: the search's pairs are read from their
        # index alone once the visibility map says their pages are all visible
        await self.conn.execute("VACUUM ANALYZE")
        await self.conn.close()


async def generate(w: World, loader: Any, n_tickets: int) -> dict[str, int]:
    rng = random.Random(5)
    people = [
        (
            i + 1,
            None
            if rng.random() < 0.6
            else rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(["女士", "先生"]),
            phone,
            "zh-CN",
            NOW - timedelta(days=400),
        )
        for i, phone in enumerate(w.phones)
    ]
    for start in range(0, len(people), 50_000):
        await loader.write("citizens", CITIZEN_COLUMNS, people[start : start + 50_000])
    counts = {"citizens": len(people), "tickets": 0, "conversations": 0, "messages": 0}
    batch: list[dict[str, Any]] = []
    next_message = 1

    async def flush() -> None:
        nonlocal next_message
        convs, msgs = conversation_and_messages(batch, w, next_message, rng)
        next_message += len(msgs)
        await loader.write("conversations", CONVERSATION_COLUMNS, convs)
        await loader.write(
            "tickets", TICKET_COLUMNS, [tuple(t[c] for c in TICKET_COLUMNS) for t in batch]
        )
        await loader.write("messages", MESSAGE_COLUMNS, msgs)
        await loader.write(
            "ticket_terms",
            ["term", "ticket_id"],
            [(term, t["id"]) for t in batch for term in ticket_terms(searched_texts(t))],
        )
        counts["tickets"] += len(batch)
        counts["conversations"] += len(convs)
        counts["messages"] += len(msgs)
        batch.clear()

    for row in ticket_rows(w, n_tickets):
        batch.append(row)
        if len(batch) == 20_000:
            await flush()
    if batch:
        await flush()
    await loader.finish()
    return counts


# --- timing ------------------------------------------------------------------------------


class Recorder:
    """The statements (and their parameters) the driver was given while ``on``."""

    def __init__(self, engines: Sequence[Any]) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._record)

    def _record(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if self.on and not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.statements.append((statement, parameters))


@dataclass
class Timing:
    name: str
    app: list[float]
    bare: list[float]

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def line(self) -> str:
        a50, a99 = self.pct(self.app, 0.5), self.pct(self.app, 0.99)
        b50, b99 = self.pct(self.bare, 0.5), self.pct(self.bare, 0.99)
        ratio = a99 / b99 if b99 > 0 else float("inf")
        ok = (
            "ok"
            if a99 < TARGET_MS and (ratio <= TARGET_RATIO or a99 - b99 <= SMALL_MS)
            else "MISSED"
        )
        return (
            f"  {self.name:34} {a50:8.1f} {a99:8.1f}   {b50:8.1f} {b99:8.1f}   {ratio:5.2f}x  {ok}"
        )


async def measure(
    name: str,
    call: Callable[[], Awaitable[Any]],
    recorder: Recorder,
    replay: Callable[[list[tuple[str, Any]]], Awaitable[None]],
    runs: int,
    max_seconds: float,
) -> Timing:
    await call()  # warm (caches fill, as on a running server)
    recorder.statements.clear()
    recorder.on = True
    await call()  # learn the statements it sends when warm
    recorder.on = False
    statements = list(recorder.statements)
    app: list[float] = []
    bare: list[float] = []
    deadline = time.monotonic() + max_seconds
    for _ in range(runs):
        t0 = time.perf_counter()
        await call()
        app.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await replay(statements)
        bare.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() > deadline:
            break
    timing = Timing(name, app, bare)
    if os.environ.get("BENCH_EXPLAIN") == "all" or (
        os.environ.get("BENCH_EXPLAIN") and "MISSED" in timing.line()
    ):
        for sql, params in statements:  # which statement costs what, for the record
            t0 = time.perf_counter()
            await replay([(sql, params)])
            print(
                f"      {(time.perf_counter() - t0) * 1000:7.1f} ms  {' '.join(sql.split())[:150]}"
            )
    return timing


# --- the queries -------------------------------------------------------------------------


def queries(rt: Runtime, w: World) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    from callcenter.reports import department_summary, trends, wallboard
    from callcenter.views import TicketFilter, list_tickets, ticket_view

    supervisor = Actor(id=None, role=Role.SUPERVISOR, name="bench")
    busiest = max(w.handling.values(), key=len)[0]
    big = max(
        (
            d
            for d in rt.directory.departments
            if d.kind not in ("street", "community", "district", "city")
        ),
        key=lambda d: sum(1 for ids in w.handling.values() if d.id in ids),
    ).id
    staff = Actor(id=None, role=Role.DEPARTMENT, name="bench", department_id=big)
    category = w.categories[0].code
    frequent_phone = w.phones[0]
    rare_phone = w.phones[300_000]
    now = rt.clock.now()

    def listing(
        f: TicketFilter, actor: Actor = supervisor, sort: str = "newest"
    ) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with rt.db.read() as conn:
                rows, total = await list_tickets(
                    conn, rt, f, actor=actor, page=1, per_page=20, sort=sort, count_limit=10_000
                )
            return total, [ticket_view(rt, r, "zh-CN", actor=actor, now=now) for r in rows]

        return run

    async def board() -> Any:
        async with rt.db.read(long=True) as conn:
            return await wallboard(conn, rt, "zh-CN")

    async def summary() -> Any:
        async with rt.db.read() as conn:
            return await department_summary(conn, rt, big)

    async def trend() -> Any:
        async with rt.db.read(long=True) as conn:
            return await trends(conn, rt, 30)

    del busiest
    return [
        ("list: all, newest first", listing(TicketFilter())),
        (
            "list: open in a department, urgency",
            listing(
                TicketFilter(states=["dispatched", "accepted"], department_id=big), staff, "urgency"
            ),
        ),
        (
            "list: overdue in a department",
            listing(TicketFilter(department_id=big, overdue=True), staff, "urgency"),
        ),
        (
            "list: category, last 30 days",
            listing(TicketFilter(category=category, created_from=now - timedelta(days=30))),
        ),
        (
            "list: state new (dispatch desk)",
            listing(TicketFilter(states=["new", "returned"]), supervisor, "oldest"),
        ),
        ("search: phone (a frequent caller)", listing(TicketFilter(phone=frequent_phone))),
        ("search: phone (a one-time caller)", listing(TicketFilter(phone=rare_phone))),
        ("search: text 井盖", listing(TicketFilter(q="井盖"))),
        ("search: text 荷花路学校门口", listing(TicketFilter(q="荷花路学校门口"))),
        ("wallboard: live numbers", board),
        ("portal: a department's counters", summary),
        ("wallboard: 30-day trends", trend),
    ]


async def bench_backend(
    name: str, url: str, args: argparse.Namespace, workdir: Path
) -> list[Timing]:
    await upgrade(url)
    settings = Settings(
        data_dir=workdir / f"data-{name}",
        database_url=url,
        channels=[],
        ui=[],
        **{"media": {"janus": "off"}},
    )
    rt = await open_runtime(settings, clock=ManualClock(NOW), start_jobs=False)
    try:
        await load_city(rt, synthetic_city(), actor=SYSTEM)
        await rt.reload_directory()
        w = world(rt)
        handling = sum(1 for d in rt.directory.departments if not d.is_area or d.kind == "street")
        print(f"[{name}] {handling} departments, {len(rt.directory.cells)} grid cells", flush=True)
        t0 = time.perf_counter()
        if name == "sqlite":
            loader: Any = SqliteLoader(url.split(":///", 1)[1])
        else:
            import asyncpg

            loader = PostgresLoader(
                await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            )
        counts = await generate(w, loader, args.tickets)
        took = time.perf_counter() - t0
        rows = sum(counts.values())
        print(
            f"[{name}] generated {counts['tickets']:,} tickets, {counts['messages']:,} messages, "
            f"{counts['conversations']:,} conversations, {counts['citizens']:,} citizens "
            f"in {took:.0f} s ({rows / took:,.0f} rows/s)",
            flush=True,
        )
        engines = {id(e): e for e in (rt.db.read_engine, rt.db.long_read_engine)}
        recorder = Recorder(
            [e if not hasattr(e, "sync_engine") else e.sync_engine for e in engines.values()]
        )
        if name == "sqlite":
            raw = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)

            async def replay(statements: list[tuple[str, Any]]) -> None:
                for sql, params in statements:
                    raw.execute(sql, params).fetchall()
        else:
            import asyncpg

            pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))

            async def replay(statements: list[tuple[str, Any]]) -> None:
                for sql, params in statements:
                    await pg.fetch(sql, *(params or ()))

        timings = []
        for label, call in queries(rt, w):
            timings.append(
                await measure(label, call, recorder, replay, args.runs, args.max_seconds)
            )
            print(timings[-1].line(), flush=True)
        if name == "sqlite":
            raw.close()
        else:
            await pg.close()
        return timings
    finally:
        await close_runtime(rt)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="per query")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    header = (
        f"  {'query':34} {'p50 ms':>8} {'p99 ms':>8}   {'bare p50':>8} {'bare p99':>8}   ratio"
        f"  target: p99 <{TARGET_MS:.0f} ms and <={TARGET_RATIO:.0f}x bare"
        f" (or <={SMALL_MS:.0f} ms over bare)"
    )
    results: dict[str, list[Timing]] = {}
    try:
        for backend in args.backends:
            print(f"== {backend}: {args.tickets:,} tickets, {args.runs} runs a query", flush=True)
            print(header, flush=True)
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{workdir / 'city.db'}"
                results[backend] = await bench_backend("sqlite", url, args, workdir)
            else:
                import asyncpg

                admin_url = PG_ADMIN.replace("postgresql+asyncpg", "postgresql")
                dbname = f"bench_lists_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(admin_url)
                await admin.execute(f'CREATE DATABASE "{dbname}"')
                await admin.close()
                base, _, _ = PG_ADMIN.rpartition("/")
                try:
                    results[backend] = await bench_backend(
                        "postgres", f"{base}/{dbname}", args, workdir
                    )
                finally:
                    if not args.keep:
                        admin = await asyncpg.connect(admin_url)
                        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                        await admin.close()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    missed = [(b, t.name) for b, ts in results.items() for t in ts if "MISSED" in t.line()]
    print("== all within the target" if not missed else f"== {len(missed)} missed the target")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
