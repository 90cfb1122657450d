"""The administrator's configuration pages: categories and routing, with a "test the
routing" box that shows where a sample text and place would go, and why; and the
working calendar's local holidays and working days; canned replies and SMS texts. A change is
an audited action that every process takes up at once (the directory is reloaded on
the bus's ``directory.changed``), so the next text that comes in is routed by it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from agent_ui.auth import csrf_ok, current_session
from agent_ui.common import error_text, page_handler, require, require_form
from agent_ui.render import render, ui_locale
from callcenter.actions.calendar_days import parse_day, set_calendar_day
from callcenter.actions.directory import (
    create_category,
    create_department,
    update_category,
    update_department,
    upload_grid,
)
from callcenter.actions.queue_settings import STRATEGIES, set_queue
from callcenter.actions.sla_policy import set_sla_policy
from callcenter.actions.texts import allowed_variables, editable_keys, set_texts
from callcenter.adminviews import (
    category,
    count_cells,
    list_categories,
    list_departments,
    local_days,
    national_days,
)
from callcenter.api.keys import RUNTIME
from callcenter.config import LOCALES
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput, NotFound
from callcenter.domain.ids import require_id
from callcenter.domain.routing import AREA_KINDS, Location
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
    r.add_get("/ui/admin/departments", departments_page)
    r.add_post("/ui/admin/departments", departments_create)
    r.add_get("/ui/admin/departments/{department}", department_page)
    r.add_post("/ui/admin/departments/{department}", department_update)
    r.add_post("/ui/admin/grid", grid_upload)
    r.add_get("/ui/admin/sla", sla_page)
    r.add_post("/ui/admin/sla", sla_save)
    r.add_get("/ui/admin/queues", queues_page)
    r.add_post("/ui/admin/queues", queues_save)
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


# --- departments and the grid -----------------------------------------------------------------

DEPT_FIELDS = ("code", "name_zh", "name_en", "kind", "parent", "duty_phone", "keywords")
MAX_GRID = 1024 * 1024  # the server's own limit on a request body


def _tree(rt: Runtime, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Departments parents first, each with its depth (city, district, street, community)."""
    children: dict[int | None, list[dict[str, Any]]] = {}
    for row in rows:
        children.setdefault(row["parent_id"], []).append(row)
    ordered: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for row in sorted(children.get(parent, []), key=lambda r: r["code"]):
            ordered.append({**row, "depth": min(depth, 6)})
            walk(row["id"], depth + 1)

    walk(None, 0)
    return ordered


async def _departments_page(
    request: web.Request, actor: Any, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        rows = await list_departments(conn)
        cells = await count_cells(conn)
    context = {
        "page": "admin_departments",
        "tree": _tree(rt, rows),
        "cells": cells,
        "kinds": sorted({*(d["kind"] for d in rows), *AREA_KINDS}),
        "form": {},
        "error": "",
        "grid": None,
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_departments.html", actor, context, status=status)


@page_handler
async def departments_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _departments_page(request, actor)


@page_handler
async def departments_create(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in DEPT_FIELDS}
    values = {**data, "parent": data["parent"] or None, "keywords": _keywords_list(data)}
    try:
        await create_department(rt, values, actor=actor)
    except HotlineError as error:
        return await _departments_page(
            request, actor, status=error.status, form=data, error=error_text(request, error)
        )
    locale = ui_locale(request, actor)
    return await _departments_page(request, actor, notice=rt.text("ui.admin.saved", locale))


def _keywords_list(data: dict[str, Any]) -> list[str]:
    text = str(data.get("keywords") or "").replace("，", ",")
    return [w.strip() for line in text.splitlines() for w in line.split(",") if w.strip()]


async def _department_page(
    request: web.Request, actor: Any, department_id: int, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        rows = await list_departments(conn)
    row = next((r for r in rows if r["id"] == department_id), None)
    if row is None:
        raise NotFound("unknown_department", department=department_id)
    by_id = {r["id"]: r for r in rows}
    parent = by_id.get(row["parent_id"]) if row["parent_id"] else None
    form = {
        **{k: row.get(k) or "" for k in DEPT_FIELDS},
        "parent": parent["code"] if parent else "",
        "keywords": "\n".join(row.get("keywords") or []),
        "active": row["active"],
    }
    context = {
        "page": "admin_department",
        "row": row,
        "tree": _tree(rt, rows),
        "kinds": sorted({*(d["kind"] for d in rows), *AREA_KINDS}),
        "form": form,
        "error": "",
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_department.html", actor, context, status=status)


@page_handler
async def department_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _department_page(
        request, actor, require_id(request.match_info["department"], field="department")
    )


@page_handler
async def department_update(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    department_id = require_id(request.match_info["department"], field="department")
    data: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in DEPT_FIELDS}
    data["active"] = form.get("active") == "on"
    try:
        await update_department(
            rt, department_id, {**data, "keywords": _keywords_list(data)}, actor=actor
        )
    except HotlineError as error:
        return await _department_page(
            request,
            actor,
            department_id,
            status=error.status,
            form=data,
            error=error_text(request, error),
        )
    locale = ui_locale(request, actor)
    return await _department_page(
        request, actor, department_id, notice=rt.text("ui.admin.saved", locale)
    )


@page_handler
async def grid_upload(request: web.Request) -> web.StreamResponse:
    """A GeoJSON file of grid cells: checked whole, then added or replaced by code."""
    actor = await require(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    if request.content_length is not None and request.content_length > MAX_GRID:
        raise InvalidInput("body_too_large", limit=MAX_GRID)
    form = await request.post()
    session = await current_session(request)
    if session is None or not csrf_ok(request, session, str(form.get("csrf", ""))):
        raise Forbidden("csrf_failed")
    upload = form.get("file")
    if isinstance(upload, FileField):
        raw = upload.file.read(MAX_GRID + 1)
    else:
        raw = str(upload or "").encode()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    check = await upload_grid(rt, document, actor=actor)
    problems = [rt.text(key, locale, **params) for key, params in check.problems]
    grid = {
        "ok": check.ok,
        "problems": problems,
        "cells": len(check.cells),
        "gaps": len(check.gaps),
    }
    return await _departments_page(
        request,
        actor,
        status=200 if check.ok else 400,
        grid=grid,
        notice=rt.text("ui.grid.saved", locale, cells=len(check.cells)) if check.ok else "",
    )


# --- queues -----------------------------------------------------------------------------------

QUEUE_FIELDS = (
    "name",
    "strategy",
    "overflow_to",
    "overflow_after_s",
    "offer_timeout_s",
    "wrap_up_s",
)


async def _queues_page(
    request: web.Request, actor: Any, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    context = {
        "page": "admin_queues",
        "queues": sorted(rt.settings.acd.queues.items()),
        "strategies": STRATEGIES,
        "form": {},
        "error": "",
        "error_queue": "",
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_queues.html", actor, context, status=status)


@page_handler
async def queues_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _queues_page(request, actor)


@page_handler
async def queues_save(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data = {k: str(form.get(k, "")).strip() for k in QUEUE_FIELDS}
    try:
        await set_queue(rt, data["name"], data, actor=actor)
    except HotlineError as error:
        return await _queues_page(
            request,
            actor,
            status=error.status,
            form=data,
            error=error_text(request, error),
            error_queue=data["name"],
        )
    locale = ui_locale(request, actor)
    return await _queues_page(request, actor, notice=rt.text("ui.admin.saved", locale))


# --- deadlines --------------------------------------------------------------------------------

UNITS = ("working_days", "working_hours", "hours", "minutes")


def _limit(form: Any, name: str) -> dict[str, Any]:
    return {
        "amount": str(form.get(f"{name}_amount", "")).strip() or None,
        "unit": str(form.get(f"{name}_unit", "")),
    }


def _policy_form(form: Any) -> dict[str, Any]:
    yellow = str(form.get("yellow_pct", "")).strip()
    try:
        yellow_at: Any = float(yellow) / 100 if yellow else None
    except ValueError:
        yellow_at = yellow
    return {
        "sign_for": _limit(form, "sign_for"),
        "handle": {t.value: _limit(form, f"handle_{t.value}") for t in TicketType},
        "urgent_sign_for": _limit(form, "urgent_sign_for"),
        "urgent_handle": _limit(form, "urgent_handle"),
        "max_extension_days": str(form.get("max_extension_days", "")).strip() or None,
        "yellow_at": yellow_at,
    }


async def _sla_page(
    request: web.Request, actor: Any, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    policy = extra.pop("policy", None) or rt.sla.settings.model_dump(mode="json")
    context = {
        "page": "admin_sla",
        "policy": policy,
        "types": [t.value for t in TicketType],
        "units": UNITS,
        "error": "",
        "notice_kind": "ok",
        **extra,
    }
    return await render(request, "admin_sla.html", actor, context, status=status)


@page_handler
async def sla_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _sla_page(request, actor)


@page_handler
async def sla_save(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data = _policy_form(form)
    try:
        await set_sla_policy(rt, data, actor=actor)
    except HotlineError as error:
        return await _sla_page(
            request, actor, status=error.status, policy=data, error=error_text(request, error)
        )
    locale = ui_locale(request, actor)
    return await _sla_page(request, actor, notice=rt.text("ui.sla.saved", locale))
