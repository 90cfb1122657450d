"""The demo city's month, played through the real actions: tickets reach the department
their category calls for, and the month has a working hotline's shape."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, close_runtime, start_runtime
from callcenter.clock import ManualClock
from callcenter.demo import load_demo
from callcenter.demo.city import data
from callcenter.runtime import Runtime
from callcenter.store.tables import categories, conversations, departments, surveys, tickets
from tests.conftest import T0, make_settings


@pytest_asyncio.fixture
async def empty(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Runtime]:
    """A started runtime with no city loaded yet, on a manual clock."""
    rt = build_runtime(make_settings(tmp_path, sqlite_url), clock=ManualClock(T0), seed=5)
    await start_runtime(rt, start_jobs=False)
    yield rt
    await close_runtime(rt)


async def test_a_week_of_the_demo_month(empty: Runtime) -> None:
    rt = empty
    summary = await load_demo(rt, tickets=50, days=5, seed=3)
    assert summary["departments"] == 46 and summary["tickets"] >= 35
    assert rt.clock.now() == T0  # the clock is back where it was
    async with rt.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    tickets.c.state,
                    tickets.c.origin_channel,
                    tickets.c.created_at,
                    tickets.c.routing,
                    departments.c.kind.label("department_kind"),
                    categories.c.department_kind.label("category_kind"),
                )
                .outerjoin(departments, departments.c.id == tickets.c.department_id)
                .outerjoin(categories, categories.c.id == tickets.c.category_id)
            )
        ).all()
    dispatched = [r for r in rows if r.department_kind is not None]
    from_the_desk = [r for r in dispatched if r.routing.get("to_desk")]
    assert from_the_desk, "no ticket needed the dispatcher in this sample"
    # every ticket went to a department of the kind its category calls for, the
    # dispatcher's too (not the Water Group whatever the category)
    assert [(r.category_kind, r.department_kind) for r in dispatched if r.category_kind] == [
        (r.category_kind, r.category_kind) for r in dispatched if r.category_kind
    ]
    # the shape of a month: several channels, phone calls the most; open and closed
    # tickets; contacts mostly in the day, in the hotline's time zone
    channels = Counter(r.origin_channel for r in rows)
    assert channels.most_common(1)[0][0] == "voice" and len(channels) >= 3
    states = Counter(r.state for r in rows)
    assert states["closed"] > 0 and states["accepted"] + states["dispatched"] > 0
    daytime = sum(1 for r in rows if 8 <= rt.local(r.created_at).hour < 20)
    assert daytime / len(rows) > 0.7


@pytest.mark.slow
async def test_the_month_leaves_no_text_waiting_and_scores_agree(empty: Runtime) -> None:
    """The whole month ``callcenter demo-data`` loads: the desk opens on an empty queue, not
    on texts waiting for weeks, and full marks never come with "not solved"."""
    rt = empty
    await load_demo(rt)
    async with rt.db.read() as conn:
        waiting = (
            await conn.execute(
                select(conversations.c.id, conversations.c.queued_at).where(
                    conversations.c.state == "queued"
                )
            )
        ).all()
        answers = (
            await conn.execute(
                select(surveys.c.score, surveys.c.solved).where(surveys.c.score.is_not(None))
            )
        ).all()
    # no text waits in the queue for days: the desk's staff answered every one
    assert [w for w in waiting if w.queued_at < T0 - timedelta(hours=1)] == []
    # a citizen who gives full marks says it was solved
    assert answers and all(a.solved for a in answers if a.score == 5), answers


def test_the_city_is_data() -> None:
    """The city and its month come from the data file; the code only lays them out."""
    source = data()
    assert {c["code"] for c in source["categories"]} == set(source["descriptions"])
    month = source["month"]
    assert len(month["hours"]) == 24 and len(month["weekdays"]) == 7
    assert 0 < month["on_time_share"] <= 1 and len(month["survey_scores"]) == 5
    kinds = {d["kind"] for d in source["city_departments"]} | {
        d["kind"] for d in source["district_departments"]
    }
    # every category names a kind of department the city has (streets and communities too)
    assert {c["department_kind"] for c in source["categories"]} <= kinds | {"street", "community"}
