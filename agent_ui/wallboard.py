"""The supervisors' wallboard: live numbers (a fragment htmx fetches again on every live
event, at most twice a second), and the KPIs, score and rankings of a named period with
charts (Chart.js, drawn by wallboard.js from a JSON block in the fragment)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from agent_ui.common import SUPERVISORS, page_handler, require
from agent_ui.render import render, ui_locale
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import InvalidInput
from callcenter.domain.kpi import TICKET_KPIS
from callcenter.reports import kpi_report, period, trends, wallboard
from callcenter.runtime import Runtime

KPIS = TICKET_KPIS
MAX_DAYS = 400
TREND_DAYS = 30


def _date(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("invalid_field", field=name) from None


async def live_context(request: web.Request) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    async with rt.db.read(long=True) as conn:
        board = await wallboard(conn, rt, ui_locale(request, None))
    return {"board": board}


async def kpi_context(request: web.Request) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, None)
    first = _date(request.query.get("start", ""), "start")
    last = _date(request.query.get("end", ""), "end")
    start, end = period(rt, first, last)
    if end <= start or (end - start).days > MAX_DAYS:
        raise InvalidInput("invalid_field", field="end")
    async with rt.db.read(long=True) as conn:
        report = await kpi_report(conn, rt, start, end, locale)
    shown_first = rt.local(start).date()
    shown_last = rt.local(end).date() - timedelta(days=1)
    query = urlencode({"start": shown_first.isoformat(), "end": shown_last.isoformat()})
    top = [r for r in report["departments"] if r["score"] is not None][:12]
    chart = {
        "labels": [r["name"] for r in top],
        "series": [
            {"label": rt.text("ui.wall.score", locale), "data": [r["score"] for r in top]},
            *(
                {
                    "label": rt.text(f"ui.kpi.{name}", locale),
                    "data": [round((r["kpis"][name]["value"] or 0) * 100, 1) for r in top],
                }
                for name in ("satisfaction_rate", "on_time_rate")
            ),
        ],
    }
    today = rt.local(rt.clock.now()).date()
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    presets = [
        ("ui.wall.this_month", month, today),
        ("ui.wall.last_month", last_month_end.replace(day=1), last_month_end),
        ("ui.wall.last_30_days", today - timedelta(days=29), today),
    ]
    return {
        "presets": [
            {
                "label": rt.text(key, locale),
                "query": urlencode({"start": a.isoformat(), "end": b.isoformat()}),
                "current": (a, b) == (shown_first, shown_last),
            }
            for key, a, b in presets
        ],
        "report": report,
        "kpis": KPIS,
        "first": shown_first,
        "last": shown_last,
        "period_name": rt.text(
            "ui.wall.period",
            locale,
            start=shown_first.isoformat(),
            end=shown_last.isoformat(),
        ),
        "csv_query": f"{query}&lang={locale}",
        "chart": chart,
    }


async def trends_context(request: web.Request) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, None)
    async with rt.db.read() as conn:
        data = await trends(conn, rt, TREND_DAYS)
    t = lambda key: rt.text(key, locale)  # noqa: E731
    days = [d[5:] for d in data["days"]]  # MM-DD
    return {
        "trend_days": TREND_DAYS,
        "charts": [
            {
                "id": "chart-hours",
                "title": t("ui.trend.hours"),
                "spec": {
                    "type": "bar",
                    "labels": data["hours"],
                    "series": [{"label": t("ui.trend.contacts"), "data": data["contacts_today"]}],
                },
            },
            {
                "id": "chart-days",
                "title": t("ui.trend.days"),
                "spec": {
                    "type": "line",
                    "labels": days,
                    "series": [
                        {"label": t("ui.trend.contacts"), "data": data["contacts"]},
                        {"label": t("ui.trend.opened"), "data": data["opened"]},
                        {"label": t("ui.trend.closed"), "data": data["closed"]},
                    ],
                },
            },
            {
                "id": "chart-on-time",
                "title": t("ui.trend.on_time"),
                "spec": {
                    "type": "line",
                    "labels": days,
                    "max": 100,
                    "series": [
                        {
                            "label": t("ui.kpi.on_time_rate"),
                            "data": [
                                None if v is None else round(v * 100, 1)
                                for v in data["on_time_rate"]
                            ],
                        }
                    ],
                },
            },
        ],
    }


@page_handler
async def wallboard_trends(request: web.Request) -> web.StreamResponse:
    actor = await require(request, SUPERVISORS)
    return await render(request, "parts/wall_trends.html", actor, await trends_context(request))


@page_handler
async def wallboard_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, SUPERVISORS)
    context = {
        "page": "wallboard",
        **await live_context(request),
        **await kpi_context(request),
        **await trends_context(request),
    }
    return await render(request, "wallboard.html", actor, context)


@page_handler
async def wallboard_live(request: web.Request) -> web.StreamResponse:
    actor = await require(request, SUPERVISORS)
    return await render(request, "parts/wall_live.html", actor, await live_context(request))


@page_handler
async def wallboard_kpis(request: web.Request) -> web.StreamResponse:
    actor = await require(request, SUPERVISORS)
    return await render(request, "parts/wall_kpis.html", actor, await kpi_context(request))
