"""The wallboard, KPIs, rankings, CSV exports and the department portal's counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import QueryDate, Strict
from callcenter.domain.errors import InvalidInput, NotFound
from callcenter.domain.ids import parse_id
from callcenter.domain.workflow import Role
from callcenter.reports import (
    department_summary,
    kpi_report,
    kpis_csv,
    mediation_stats,
    mediations_csv,
    period,
    tickets_csv,
    wallboard,
)

SUPERVISORS = {Role.SUPERVISOR, Role.ADMIN}
STAFF = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN}
MAX_DAYS = 400


class PeriodQuery(Strict):
    start: QueryDate | None = None
    end: QueryDate | None = None
    lang: str | None = None


class LangOnly(Strict):
    lang: str | None = None


class WallboardOut(BaseModel):
    at: datetime
    waiting: int
    longest_wait_seconds: float
    oldest_queued_at: datetime | None
    queues: list[dict[str, Any]]
    agents: dict[str, int]
    agent_labels: dict[str, str]
    today: dict[str, Any]
    tickets_opened_today: int
    tickets_closed_today: int
    overdue_by_department: list[dict[str, Any]]
    overdue_total: int
    mediations: dict[str, Any]  # sessions today and now, this month's figures
    calls: dict[str, Any]  # calls apart from text: waiting, talking, on hold, service level


class KpiReportOut(BaseModel):
    start: datetime
    end: datetime
    weights: dict[str, float]
    overall: dict[str, Any]
    contacts: dict[str, Any]
    departments: list[dict[str, Any]]
    streets: list[dict[str, Any]]
    departments_unranked: list[dict[str, Any]] = []  # too few tickets to judge
    streets_unranked: list[dict[str, Any]] = []
    min_episodes: int = 1
    mediations: dict[str, Any]  # per month: held, agreement and no-show rates, days to session


class SummaryOut(BaseModel):
    department_id: int
    open: int
    to_sign: int
    in_hand: int
    overdue: int
    due_soon: int
    on_track: int


def _period(ctx: Context) -> tuple[datetime, datetime]:
    q: PeriodQuery = ctx.query
    if q.start and q.end and q.start > q.end:
        raise InvalidInput("invalid_field", field="start")
    start, end = period(ctx.rt, q.start, q.end)
    if (end - start).days > MAX_DAYS:
        raise InvalidInput("period_too_long", days=MAX_DAYS)
    return start, end


@endpoint(
    "GET",
    "/reports/wallboard",
    summary="Live numbers: waiting, longest wait, agents by state, today's service level...",
    tag="reports",
    roles=SUPERVISORS,
    query=LangOnly,
    response=WallboardOut,
    errors=(401, 403),
)
async def get_wallboard(ctx: Context) -> dict[str, Any]:
    async with ctx.rt.db.read(long=True) as conn:
        return await wallboard(conn, ctx.rt, ctx.locale)


@endpoint(
    "GET",
    "/reports/kpis",
    summary="KPIs and monthly score per department and street over a period (local dates)",
    tag="reports",
    roles=SUPERVISORS,
    query=PeriodQuery,
    response=KpiReportOut,
    errors=(400, 401, 403),
)
async def get_kpis(ctx: Context) -> dict[str, Any]:
    start, end = _period(ctx)
    async with ctx.rt.db.read(long=True) as conn:
        report = await kpi_report(conn, ctx.rt, start, end, ctx.locale)
    report["start"], report["end"] = report.pop("from"), report.pop("to")
    return report


def _csv_response(text: str, name: str) -> web.Response:
    return web.Response(
        body=text.encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@endpoint(
    "GET",
    "/reports/kpis.csv",
    summary="The KPI report as CSV",
    tag="reports",
    roles=SUPERVISORS,
    query=PeriodQuery,
    errors=(400, 401, 403),
    media_type="text/csv",
)
async def get_kpis_csv(ctx: Context) -> web.Response:
    start, end = _period(ctx)
    async with ctx.rt.db.read(long=True) as conn:
        report = await kpi_report(conn, ctx.rt, start, end, ctx.locale)
    return _csv_response(kpis_csv(report, ctx.locale, ctx.rt), "kpis.csv")


@endpoint(
    "GET",
    "/reports/mediations.csv",
    summary="Mediations per month: held, agreements, no-shows, days to session, as CSV",
    tag="reports",
    roles=SUPERVISORS,
    query=PeriodQuery,
    errors=(400, 401, 403),
    media_type="text/csv",
)
async def get_mediations_csv(ctx: Context) -> web.Response:
    start, end = _period(ctx)
    async with ctx.rt.db.read(long=True) as conn:
        stats = await mediation_stats(conn, ctx.rt, start, end)
    return _csv_response(mediations_csv(stats), "mediations.csv")


@endpoint(
    "GET",
    "/reports/tickets.csv",
    summary="Tickets opened in a period, as CSV",
    tag="reports",
    roles=SUPERVISORS,
    query=PeriodQuery,
    errors=(400, 401, 403),
    media_type="text/csv",
)
async def get_tickets_csv(ctx: Context) -> web.Response:
    start, end = _period(ctx)
    async with ctx.rt.db.read(long=True) as conn:
        text = await tickets_csv(conn, ctx.rt, start, end, ctx.locale)
    return _csv_response(text, "tickets.csv")


@endpoint(
    "GET",
    "/departments/{department_id}/summary",
    summary="A department's open, overdue and due-soon tickets (its own staff, or the desk)",
    tag="reports",
    roles=STAFF,
    query=LangOnly,
    response=SummaryOut,
    errors=(401, 403, 404),
)
async def get_department_summary(ctx: Context) -> dict[str, Any]:
    raw = ctx.params["department_id"]
    dept = ctx.rt.directory.by_id.get(parse_id(raw) or 0)
    actor = ctx.require_actor()
    if dept is None or (actor.role is Role.DEPARTMENT and actor.department_id != dept.id):
        raise NotFound("department_not_found", department=raw)
    async with ctx.rt.db.read(long=True) as conn:
        return await department_summary(conn, ctx.rt, dept.id)
