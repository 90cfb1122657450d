"""The administrator's configuration pages: categories and routing, with a "test the
routing" box that shows where a sample text and place would go, and why; and the
working calendar's local holidays and working days; canned replies and SMS texts. A change is
an audited action that every process takes up at once (the directory is reloaded on
the bus's ``directory.changed``), so the next text that comes in is routed by it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui.common import error_text, page_handler, require, require_form
from agent_ui.render import render, ui_locale
from callcenter.actions.calendar_days import parse_day, set_calendar_day
from callcenter.actions.directory import create_category, update_category
from callcenter.actions.texts import allowed_variables, editable_keys, set_texts
from callcenter.adminviews import category, list_categories, local_days, national_days
from callcenter.api.keys import RUNTIME
from callcenter.config import LOCALES
from callcenter.domain.errors import HotlineError, NotFound
from callcenter.domain.ids import require_id
from callcenter.domain.routing import Location
from callcenter.domain.templates import sample_segments
from callcenter.domain.workflow import Priority, Role, TicketType
from callcenter.runtime import Runtime
from callcenter.views import routing_suggestion

ADMINS = frozenset({Role.ADMIN})
FIELDS = (
    "code",
    "name_zh",
    "name_en",
    "department_kind",
    "default_type",
    "default_priority",
    "handle_working_days",
    "keywords_zh",
    "keywords_en",
)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/ui/admin/categories", categories_page)
    r.add_post("/ui/admin/categories", categories_create)
    r.add_get("/ui/admin/categories/{category}", category_page)
    r.add_post("/ui/admin/categories/{category}", category_update)
    r.add_post("/ui/admin/routing/test", routing_test)
    r.add_get("/ui/admin/calendar", calendar_page)
    r.add_post("/ui/admin/calendar", calendar_set)
    r.add_get("/ui/admin/texts", texts_page)
    r.add_post("/ui/admin/texts", texts_save)


def _choices(rt: Runtime) -> dict[str, Any]:
    return {
        "kinds": sorted({d.kind for d in rt.directory.departments}),
        "types": [t.value for t in TicketType],
        "priorities": [p.value for p in Priority],
    }


def _form(form: Any) -> dict[str, Any]:
    data = {name: str(form.get(name, "")).strip() for name in FIELDS}
    data["active"] = form.get("active") == "on"
    return data


def _as_form(row: dict[str, Any]) -> dict[str, Any]:
    data = {name: row.get(name) for name in FIELDS}
    data["keywords_zh"] = "\n".join(row.get("keywords_zh") or [])
    data["keywords_en"] = "\n".join(row.get("keywords_en") or [])
    data["handle_working_days"] = row.get("handle_working_days") or ""
    data["active"] = row.get("active", True)
    return data


async def _page(
    request: web.Request, actor: Any, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        rows = await list_categories(conn)
    context = {
        "page": "admin_categories",
        "categories": rows,
        "form": {},
        "error": "",
        "notice_kind": "ok",
        **_choices(rt),
        **extra,
    }
    return await render(request, "admin_categories.html", actor, context, status=status)


@page_handler
async def categories_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _page(request, actor)


@page_handler
async def categories_create(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data = _form(form)
    try:
        await create_category(rt, data, actor=actor)
    except HotlineError as error:
        return await _page(
            request, actor, form=data, error=error_text(request, error), status=error.status
        )
    locale = ui_locale(request, actor)
    return await _page(request, actor, notice=rt.text("ui.admin.category_created", locale))


async def _category_page(
    request: web.Request, actor: Any, category_id: int, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        row = await category(conn, category_id)
    if row is None:
        raise NotFound("unknown_category", category=category_id)
    context = {
        "page": "admin_category",
        "row": row,
        "form": _as_form(row),
        "error": "",
        "notice_kind": "ok",
        **_choices(rt),
        **extra,
    }
    return await render(request, "admin_category.html", actor, context, status=status)


@page_handler
async def category_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _category_page(
        request, actor, require_id(request.match_info["category"], field="category")
    )


@page_handler
async def category_update(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    category_id = require_id(request.match_info["category"], field="category")
    data = _form(form)
    try:
        await update_category(rt, category_id, data, actor=actor)
    except HotlineError as error:
        return await _category_page(
            request,
            actor,
            category_id,
            status=error.status,
            form=data,
            error=error_text(request, error),
        )
    locale = ui_locale(request, actor)
    return await _category_page(
        request, actor, category_id, notice=rt.text("ui.admin.saved", locale)
    )


@page_handler
async def routing_test(request: web.Request) -> web.StreamResponse:
    """Where a sample text and place would be routed, and why (changes nothing)."""
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    text = str(form.get("text", ""))[:2000]
    address = str(form.get("address", "")).strip()[:200] or None
    found: dict[str, Any]
    try:
        found = routing_suggestion(rt, text, ui_locale(request, actor), location=Location(address))
    except HotlineError as error:
        found = {"error": error_text(request, error)}
    return await render(request, "parts/routing_test.html", actor, {"s": found})


# --- the working calendar ---------------------------------------------------------------------


def festival_key(name: str) -> str:
    return "ui.calendar.festival." + "".join(c for c in name.lower() if c.isalnum())


async def _calendar_page(
    request: web.Request, actor: Any, year: int, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        local = await local_days(conn, year)
    overridden = {d["day"] for d in local}
    national = [
        {
            **d,
            "label": rt.text(festival_key(d["name"]), locale)
            if rt.catalog.has(festival_key(d["name"]))
            else d["name"],
            "overridden": d["day"] in overridden,
        }
        for d in national_days(year)
    ]
    context = {
        "page": "admin_calendar",
        "year": year,
        "national": national,
        "local": local,
        "hours": rt.settings.calendar.work_hours,
        "form": {},
        "error": "",
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_calendar.html", actor, context, status=status)


def _year(request: web.Request, rt: Runtime) -> int:
    raw = request.query.get("year", "")
    if raw.isdigit() and 2000 <= int(raw) <= 2100:
        return int(raw)
    return rt.local(rt.clock.now()).year


@page_handler
async def calendar_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _calendar_page(request, actor, _year(request, request.config_dict[RUNTIME]))


@page_handler
async def calendar_set(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data = {k: str(form.get(k, "")).strip() for k in ("day", "kind", "note")}
    year = _year(request, rt)
    try:
        day = parse_day(data["day"])
        year = day.year
        kind = data["kind"] if data["kind"] != "none" else None
        await set_calendar_day(rt, day, kind, actor=actor, note=data["note"])
    except HotlineError as error:
        return await _calendar_page(
            request, actor, year, status=error.status, form=data, error=error_text(request, error)
        )
    locale = ui_locale(request, actor)
    return await _calendar_page(
        request, actor, year, notice=rt.text("ui.calendar.saved", locale, day=data["day"])
    )


# --- canned replies and SMS texts -------------------------------------------------------------


def _text_rows(rt: Runtime) -> list[dict[str, Any]]:
    rows = []
    for key in editable_keys(rt):
        per_locale = {}
        for locale in LOCALES:
            current = rt.catalog.texts[locale].get(key, "")
            segments = sample_segments(current)
            per_locale[locale] = {
                "text": current,
                "changed": current != rt.catalog.shipped(key, locale),
                "segments": segments.segments,
                "units": segments.units,
                "encoding": segments.encoding,
            }
        rows.append(
            {
                "key": key,
                "sms": key.startswith("notify."),
                "variables": sorted(allowed_variables(rt, key)),
                "locales": per_locale,
            }
        )
    return rows


async def _texts_page(
    request: web.Request, actor: Any, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    context = {
        "page": "admin_texts",
        "rows": _text_rows(rt),
        "error": "",
        "error_key": "",
        "typed": {},
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_texts.html", actor, context, status=status)


@page_handler
async def texts_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _texts_page(request, actor)


@page_handler
async def texts_save(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    key = str(form.get("key", ""))
    restore = form.get("restore") == "1"
    typed = {locale: str(form.get(f"text_{locale}", "")) for locale in LOCALES}
    texts: dict[str, str | None] = {
        locale: None if restore else typed[locale] for locale in LOCALES
    }
    try:
        await set_texts(rt, key, texts, actor=actor)
    except HotlineError as error:
        return await _texts_page(
            request,
            actor,
            status=error.status,
            error=error_text(request, error),
            error_key=key,
            typed=typed,
        )
    locale = ui_locale(request, actor)
    return await _texts_page(request, actor, notice=rt.text("ui.admin.saved", locale))
