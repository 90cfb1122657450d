"""Ticket search and lists: one page with every filter a hotline uses, views kept one
click away ("my tickets", "overdue in my department", "waiting for my approval"),
sortable, paged, and the same rows as CSV. The URL holds the whole search, so a
search is saved by bookmarking it and shared by sending it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from agent_ui.common import STAFF, page_handler, require
from agent_ui.portal import handling_departments
from agent_ui.render import render, ui_locale
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import InvalidInput
from callcenter.domain.ids import require_id
from callcenter.domain.phone import normalize_phone
from callcenter.domain.workflow import Actor, Role, TicketState, TicketType
from callcenter.reports import csv_text, local_day_start
from callcenter.runtime import Runtime
from callcenter.views import TicketFilter, list_tickets, ticket_view

FIELDS = (
    "view",
    "number",
    "phone",
    "citizen",  # a citizen's id: the ticket page's link to their other tickets
    "name",
    "q",
    "state",
    "type",
    "category",
    "department",
    "street",
    "cell",
    "light",
    "channel",
    "from",
    "to",
    "sort",
)
SORTS = ("newest", "oldest", "urgency")
PER_PAGE = (20, 50, 100)
CSV_LIMIT = 10_000
COUNT_LIMIT = 10_000  # past this the page says "10,000+" and pages on
CHANNELS = ("voice", "sms", "webchat", "telegram", "open311", "desk", "web")
LIGHTS = ("red", "yellow", "green")


@dataclass(frozen=True)
class View:
    code: str
    roles: frozenset[Role]


VIEWS = (
    View("mine", frozenset({Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT})),
    View("overdue_mine", frozenset({Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN})),
    View("approval", frozenset({Role.SUPERVISOR})),
    View("open", frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})),
)


def _date(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("invalid_field", field=name) from None


def build_filter(rt: Runtime, actor: Actor, query: MultiMapping[str]) -> TicketFilter:
    """The filter the page's form (or a view) asks for; bad values are 400s that say which."""
    get = lambda name: query.get(name, "").strip()  # noqa: E731
    states = [s for s in query.getall("state", []) if s]
    for state in states:
        if state not in TicketState.__members__.values():
            raise InvalidInput("invalid_choice", field="state", choices=", ".join(TicketState))
    ticket_type = get("type") or None
    if ticket_type is not None and ticket_type not in TicketType.__members__.values():
        raise InvalidInput("invalid_choice", field="type", choices=", ".join(TicketType))
    light = get("light") or None
    if light is not None and light not in LIGHTS:
        raise InvalidInput("invalid_choice", field="light", choices=", ".join(LIGHTS))
    first, last = _date(get("from"), "start"), _date(get("to"), "end")
    f = TicketFilter(
        states=states,
        number=get("number") or None,
        phone=normalize_phone(get("phone"), rt.settings.default_region) if get("phone") else None,
        citizen_id=require_id(get("citizen"), field="citizen_id") if get("citizen") else None,
        citizen_name=get("name") or None,
        q=get("q") or None,
        type=ticket_type,
        category=get("category") or None,
        department_id=require_id(get("department"), field="department_id")
        if get("department")
        else None,
        street_id=require_id(get("street"), field="street") if get("street") else None,
        grid_cell_id=None,
        light=light,
        channel=get("channel") or None,
        created_from=local_day_start(rt, first) if first else None,
        created_to=local_day_start(rt, last + timedelta(days=1)) if last else None,
    )
    cell = get("cell")
    if cell:
        found = next((c for c in rt.directory.cells if c.code == cell), None)
        f.grid_cell_id = found.id if found else -1
    match get("view"):
        case "mine":
            if actor.role is Role.DEPARTMENT:
                f.department_id = actor.department_id
                f.open_only = True
            else:
                f.created_by = actor.id
        case "overdue_mine":
            f.overdue = True
            if actor.role is Role.DEPARTMENT:
                f.department_id = actor.department_id
        case "approval":
            f.states = ["accepted"]
            f.extension_pending = True
        case "open":
            f.open_only = True
    return f


def _query_without(query: MultiMapping[str], *names: str) -> str:
    return urlencode([(k, v) for k, v in query.items() if k not in names and v])


async def search_context(request: web.Request, actor: Actor) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    query = request.query
    f = build_filter(rt, actor, query)
    sort = query.get("sort", "newest")
    if sort not in SORTS:
        raise InvalidInput("invalid_choice", field="sort", choices=", ".join(SORTS))
    page = require_id(query.get("page", "1"), field="page")
    raw_per_page = require_id(query.get("per_page", "20"), field="per_page")
    per_page = raw_per_page if raw_per_page in PER_PAGE else 20
    async with rt.db.read() as conn:
        rows, total = await list_tickets(
            conn,
            rt,
            f,
            actor=actor,
            page=page,
            per_page=per_page,
            sort=sort,
            count_limit=COUNT_LIMIT,
        )
    now = rt.clock.now()
    pages = max(1, -(-total // per_page))
    return {
        "items": [ticket_view(rt, r, locale, actor=actor, now=now) for r in rows],
        "total": total,
        "capped": total > COUNT_LIMIT,
        "count_limit": COUNT_LIMIT,
        "page_no": page,
        "pages": pages,
        "per_page": per_page,
        "per_pages": PER_PAGE,
        "sort": sort,
        "sorts": SORTS,
        "q": query,
        "states_chosen": set(query.getall("state", [])),
        "views": [v.code for v in VIEWS if actor.role in v.roles],
        "view": query.get("view", ""),
        "base_query": _query_without(query, "page"),
        "sort_query": _query_without(query, "page", "sort"),
        "csv_query": _query_without(query, "page", "per_page"),
        "states": [s.value for s in TicketState],
        "types": [t.value for t in TicketType],
        "categories": sorted(rt.directory.categories, key=lambda c: c.name(locale)),
        "departments": handling_departments(rt, locale)
        if actor.role is not Role.DEPARTMENT
        else [],
        "streets": [d for d in rt.directory.departments if d.kind == "street"],
        "channels": CHANNELS,
        "lights": LIGHTS,
        "csv_limit": CSV_LIMIT,
    }


@page_handler
async def search_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, STAFF)
    context = {"page": "search", **await search_context(request, actor)}
    return await render(request, "search.html", actor, context)


@page_handler
async def search_results(request: web.Request) -> web.StreamResponse:
    actor = await require(request, STAFF)
    response = await render(
        request, "parts/search_results.html", actor, await search_context(request, actor)
    )
    response.headers["HX-Push-Url"] = "/ui/tickets?" + request.query_string
    return response


@page_handler
async def search_csv(request: web.Request) -> web.StreamResponse:
    """The rows the search finds (up to ``CSV_LIMIT``), as the list shows them."""
    actor = await require(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    f = build_filter(rt, actor, request.query)
    sort = request.query.get("sort", "newest")
    async with rt.db.read(long=True) as conn:
        rows, _ = await list_tickets(
            conn,
            rt,
            f,
            actor=actor,
            page=1,
            per_page=CSV_LIMIT,
            sort=sort if sort in SORTS else "newest",
        )
    now = rt.clock.now()
    t = lambda key: rt.text(key, locale)  # noqa: E731
    header = [
        t("ui.ticket.number"),
        t("ui.ticket.title"),
        t("ui.ticket.state"),
        t("ui.ticket.type"),
        t("ui.ticket.category"),
        t("ui.ticket.department"),
        t("ui.ticket.light"),
        t("ui.search.channel"),
        t("ui.search.created"),
        t("ui.ticket.due"),
    ]
    lines = []
    for row in rows:
        v = ticket_view(rt, row, locale, actor=actor, now=now)
        lines.append(
            [
                v["number"],
                v["title"],
                v["state_label"],
                v["type_label"],
                v["category"]["name"] if v["category"] else "",
                v["department"]["name"] if v["department"] else "",
                rt.catalog.label("light", v["light"], locale) if v["light"] else "",
                rt.catalog.label("ui.channel", v["origin_channel"], locale),
                rt.local_text(v["created_at"]),
                rt.local_text(v["due_at"]),
            ]
        )
    stamp = rt.local(now).strftime("%Y%m%d-%H%M")
    return web.Response(
        text=csv_text(header, lines),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="tickets-{stamp}.csv"'},
    )
