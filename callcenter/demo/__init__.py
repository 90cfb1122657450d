"""The demo city of Minghu (明湖市): a fictional city to try the hotline with.

Three districts, six streets, twelve communities (each one grid cell), a
dispatch desk, 23 functional departments, 26 categories and staff for every
role, all in a data file (``minghu.toml``, read by :mod:`callcenter.demo.city`);
and a month of its hotline's past, a few hundred contacts in every state,
played through the real actions on a clock that walks through that month
(:mod:`callcenter.demo.history`), so that lists, audit history and KPIs look
like a working hotline's.

Every demo user's API token is ``demo-<username>``: this data is for trying
the system, never for production.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from callcenter.actions.directory import load_city
from callcenter.clock import ManualClock
from callcenter.demo.city import (
    CATEGORIES,
    CITY,
    CITY_DEPARTMENTS,
    DEMO_PASSWORD,
    DESCRIPTIONS,
    DISTRICT_DEPARTMENTS,
    DISTRICTS,
    city,
    data,
    demo_password_hash,
)
from callcenter.demo.history import History
from callcenter.domain.workflow import SYSTEM
from callcenter.runtime import Runtime

__all__ = [
    "CATEGORIES",
    "CITY",
    "CITY_DEPARTMENTS",
    "DEMO_PASSWORD",
    "DESCRIPTIONS",
    "DISTRICTS",
    "DISTRICT_DEPARTMENTS",
    "History",
    "city",
    "demo_password_hash",
    "load_demo",
]


async def load_demo(
    rt: Runtime, *, tickets: int | None = None, days: int | None = None, seed: int = 12345
) -> dict[str, Any]:
    """Load the city and a month of its past: ``tickets`` contacts over the last ``days``
    days (the data file's ``[month]`` by default).

    The runtime's clock must be a :class:`ManualClock`; it ends at the time it had.
    """
    clock = rt.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("load_demo needs a runtime with a ManualClock")
    source = data()
    days = source["month"]["days"] if days is None else days
    tickets = source["month"]["tickets"] if tickets is None else tickets
    end = clock.now()
    start = end - timedelta(days=days)
    clock.set(start - timedelta(days=1))
    tokens = await load_city(rt, city(), actor=SYSTEM)
    counts = await History(rt, source, random.Random(seed)).play(tickets, start, end)
    return {"tokens": tokens, "departments": len(rt.directory.departments), **counts}
