"""The department portal: a department's dispatched tickets, most pressing first, with
lights and counters. Department staff see their own; supervisors and admins pick one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui.common import not_found, page_handler, require
from agent_ui.render import render, ui_locale
from callcenter.api.keys import RUNTIME
from callcenter.domain.ids import parse_id
from callcenter.domain.routing import DESK_KIND, Department
from callcenter.domain.workflow import Actor, Role
from callcenter.reports import department_summary
from callcenter.runtime import Runtime
from callcenter.views import TicketFilter, list_tickets, ticket_view

ROLES = frozenset({Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN})


def handling_departments(rt: Runtime, locale: str) -> list[Department]:
    """Departments that handle tickets (not the city's areas, except streets), by name."""
    chosen = [
        d
        for d in rt.directory.departments
        if (not d.is_area or d.kind == "street") and d.kind != DESK_KIND
    ]
    return sorted(chosen, key=lambda d: (d.kind == "street", d.name(locale)))


async def _department(request: web.Request, actor: Actor) -> Department | None:
    """The department this page shows, or None (a supervisor who has not picked one).
    Another department's number in the URL is 404 for department staff."""
    rt: Runtime = request.config_dict[RUNTIME]
    raw = request.query.get("department", "")
    if actor.role is Role.DEPARTMENT:
        if raw and raw != str(actor.department_id):
            raise await not_found(request, actor)
        return rt.directory.by_id.get(actor.department_id or -1)
    dept_id = parse_id(raw) if raw else None
    if dept_id is None:  # nothing chosen yet, or text that is no department's id
        return None
    dept = rt.directory.by_id.get(dept_id)
    if dept is None:
        raise await not_found(request, actor)
    return dept


async def inbox_context(request: web.Request, actor: Actor, dept: Department) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        summary = await department_summary(conn, rt, dept.id)
        rows, _ = await list_tickets(
            conn,
            rt,
            TicketFilter(states=["dispatched", "accepted"], department_id=dept.id),
            actor=actor,
            per_page=200,
            sort="urgency",
        )
    now = rt.clock.now()
    return {
        "summary": summary,
        "items": [ticket_view(rt, r, locale, actor=actor, now=now) for r in rows],
    }


@page_handler
async def portal_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ROLES)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    dept = await _department(request, actor)
    context: dict[str, Any] = {
        "page": "portal",
        "department": dept,
        "departments": handling_departments(rt, locale)
        if actor.role is not Role.DEPARTMENT
        else [],
        "topic": f"department:{dept.id}" if dept else "",
    }
    if dept is not None:
        context.update(await inbox_context(request, actor, dept))
    return await render(request, "portal.html", actor, context)


@page_handler
async def portal_inbox(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ROLES)
    dept = await _department(request, actor)
    if dept is None:
        return web.Response(status=204)
    return await render(
        request, "parts/portal_inbox.html", actor, await inbox_context(request, actor, dept)
    )
