"""Work queues: the dispatch desk (派单台), every ticket waiting for a department, and the
supervisors' approvals (extension requests and returned tickets to decide)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui.common import DESK, SUPERVISORS, page_handler, require, require_form
from agent_ui.portal import handling_departments
from agent_ui.render import render, ui_locale
from callcenter.actions.tickets import dispatch_tickets
from callcenter.api.keys import RUNTIME
from callcenter.domain.ids import require_id
from callcenter.domain.routing import Department
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.views import TicketFilter, TicketView, list_tickets, ticket_view

WAITING_STATES = ("new", "returned")
APPROVERS = SUPERVISORS
LIST_LIMIT = 200


class DispatchItem(TicketView):
    """A ticket on the dispatch desk, with the department routing suggests (None: the desk)."""

    suggested: Department | None


def _rt(request: web.Request) -> Runtime:
    return request.config_dict[RUNTIME]


async def dispatch_context(request: web.Request, actor: Actor) -> dict[str, Any]:
    rt = _rt(request)
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        rows, total = await list_tickets(
            conn,
            rt,
            TicketFilter(states=WAITING_STATES),
            actor=actor,
            per_page=LIST_LIMIT,
            sort="oldest",
        )
    now = rt.clock.now()
    items: list[DispatchItem] = []
    for row in rows:
        view = ticket_view(rt, row, locale, actor=actor, now=now)
        routing = view["routing"] or {}
        suggested = routing.get("department_id") if not routing.get("to_desk") else None
        dept = rt.directory.by_id.get(suggested) if suggested is not None else None
        items.append({**view, "suggested": dept})
    return {
        "items": items,
        "total": total,
        "departments": handling_departments(rt, locale),
        "can_cancel": actor.role is Role.SUPERVISOR,
    }


@page_handler
async def dispatch_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    context = {"page": "dispatch", **await dispatch_context(request, actor)}
    return await render(request, "dispatch.html", actor, context)


@page_handler
async def dispatch_list(request: web.Request) -> web.StreamResponse:
    actor = await require(request, DESK)
    context = await dispatch_context(request, actor)
    return await render(request, "parts/dispatch_list.html", actor, context)


@page_handler
async def dispatch_selected(request: web.Request) -> web.StreamResponse:
    """Bulk 派单: the ticked tickets, each to its suggested department or all to one."""
    actor, form = await require_form(request, DESK)
    rt = _rt(request)
    numbers = [str(n) for n in form.getall("ticket", []) if str(n).strip()]
    raw = str(form.get("department_id", "")).strip()
    department_id = require_id(raw, field="department_id") if raw else None
    done = await dispatch_tickets(rt, numbers, department_id, actor=actor)
    locale = ui_locale(request, actor)
    context = await dispatch_context(request, actor)
    context.update(
        notice=rt.text("ui.dispatch.done", locale, count=len(done)),
        notice_kind="ok",
        oob=True,
    )
    return await render(request, "parts/dispatch_list.html", actor, context)


async def approvals_context(request: web.Request, actor: Actor) -> dict[str, Any]:
    rt = _rt(request)
    locale = ui_locale(request, actor)
    now = rt.clock.now()
    async with rt.db.read() as conn:
        extensions, _ = await list_tickets(
            conn,
            rt,
            TicketFilter(states=["accepted"], extension_pending=True),
            actor=actor,
            per_page=LIST_LIMIT,
            sort="urgency",
        )
        returned, _ = await list_tickets(
            conn,
            rt,
            TicketFilter(states=["returned"]),
            actor=actor,
            per_page=LIST_LIMIT,
            sort="oldest",
        )
    return {
        "extensions": [ticket_view(rt, r, locale, actor=actor, now=now) for r in extensions],
        "returned": [ticket_view(rt, r, locale, actor=actor, now=now) for r in returned],
        "departments": handling_departments(rt, locale),
        "may_decide": actor.role is Role.SUPERVISOR,
    }


@page_handler
async def approvals_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, APPROVERS)
    context = {"page": "approvals", **await approvals_context(request, actor)}
    return await render(request, "approvals.html", actor, context)


@page_handler
async def approvals_list(request: web.Request) -> web.StreamResponse:
    actor = await require(request, APPROVERS)
    context = await approvals_context(request, actor)
    return await render(request, "parts/approvals_list.html", actor, context)
