"""The whole configuration as one file, to stage changes and move them between
installations: departments (the tree, kinds, duty phones, place names), categories,
grid cells, the calendar's local days, the rewritten texts, the ACD queues and the
deadlines. Staff
accounts are not in it (passwords and two-factor secrets never leave the installation).

Import is one transaction, checked whole first: every part is validated as the admin
pages validate it (a grid as :func:`check_grid`, a text's variables as
:func:`check_template`) and with any problem nothing is written. What the file names
is added or, by its code (day, key), replaced; what it does not name stays (tickets
point at departments, categories and cells). One audit event with the counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shapely.geometry import shape
from sqlalchemy import delete, select, update

from callcenter.actions import audit
from callcenter.actions.calendar_days import KINDS, parse_day
from callcenter.actions.directory import (
    _category_values,
    _keywords,
    _required,
    add_category,
    add_department,
    add_grid_cell,
    directory_changed,
    require_admin,
)
from callcenter.actions.queue_settings import checked_queue
from callcenter.actions.sla_policy import checked_policy
from callcenter.actions.texts import allowed_variables, editable_keys
from callcenter.config import LOCALES
from callcenter.domain.errors import InvalidInput
from callcenter.domain.grid import check_grid
from callcenter.domain.phone import normalize_phone
from callcenter.domain.templates import check_template
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import (
    calendar_days,
    categories,
    departments,
    grid_cells,
    queue_settings,
    sla_policy,
    text_overrides,
)

FORMAT = "hotline-configuration"
VERSION = 1


async def export_configuration(rt: Runtime) -> dict[str, Any]:
    """Everything an administrator configures, as plain JSON-ready data."""
    async with rt.db.read() as conn:
        dept_rows = (await conn.execute(select(departments).order_by(departments.c.id))).all()
        codes = {r.id: r.code for r in dept_rows}
        cat_rows = (await conn.execute(select(categories).order_by(categories.c.code))).all()
        cell_rows = (await conn.execute(select(grid_cells).order_by(grid_cells.c.code))).all()
        day_rows = (await conn.execute(select(calendar_days).order_by(calendar_days.c.day))).all()
        text_rows = (
            await conn.execute(
                select(text_overrides).order_by(text_overrides.c.key, text_overrides.c.locale)
            )
        ).all()
    return {
        "format": FORMAT,
        "version": VERSION,
        "departments": [
            {
                "code": r.code,
                "kind": r.kind,
                "name_zh": r.name_zh,
                "name_en": r.name_en,
                "parent": codes.get(r.parent_id) if r.parent_id else None,
                "keywords": list(r.keywords or []),
                "duty_phone": r.duty_phone,
                "active": r.active,
            }
            for r in dept_rows
        ],
        "categories": [
            {
                "code": r.code,
                "name_zh": r.name_zh,
                "name_en": r.name_en,
                "department_kind": r.department_kind,
                "default_type": r.default_type,
                "default_priority": r.default_priority,
                "handle_working_days": r.handle_working_days,
                "keywords_zh": list(r.keywords_zh or []),
                "keywords_en": list(r.keywords_en or []),
                "active": r.active,
            }
            for r in cat_rows
        ],
        "grid": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"code": r.code, "name": r.name, "owner": codes[r.owner_id]},
                    "geometry": r.geometry,
                }
                for r in cell_rows
            ],
        },
        "calendar_days": [
            {"day": r.day.isoformat(), "kind": r.kind, "note": r.note} for r in day_rows
        ],
        "texts": [{"key": r.key, "locale": r.locale, "text": r.body} for r in text_rows],
        "queues": [
            {"name": name, **queue.model_dump()}
            for name, queue in sorted(rt.settings.acd.queues.items())
        ],
        "sla": rt.sla.settings.model_dump(mode="json"),
    }


def _list(document: Mapping[str, Any], name: str) -> list[Any]:
    value = document.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidInput("config_part", part=name)
    return value


async def import_configuration(rt: Runtime, document: Any, *, actor: Actor) -> dict[str, int]:
    """Apply a file made by :func:`export_configuration` (here or elsewhere)."""
    require_admin(actor)
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise InvalidInput("config_format")
    if document.get("version") != VERSION:
        raise InvalidInput("config_version", version=str(document.get("version")))
    depts = _list(document, "departments")
    cats = _list(document, "categories")
    days = _list(document, "calendar_days")
    texts = _list(document, "texts")
    grid = document.get("grid")
    counts = {
        "departments": 0,
        "categories": 0,
        "grid_cells": 0,
        "calendar_days": 0,
        "texts": 0,
        "queues": 0,
    }
    # checked before the transaction: texts, days, categories (these need no rows)
    keys = set(editable_keys(rt))
    checked_texts = []
    for item in texts:
        key, locale = str(item.get("key", "")), str(item.get("locale", ""))
        if key not in keys or locale not in LOCALES:
            raise InvalidInput("unknown_text", key=f"{key} ({locale})")
        checked_texts.append(
            (key, locale, check_template(str(item.get("text", "")), allowed_variables(rt, key)))
        )
    queue_items = _list(document, "queues")
    names = {str(q.get("name", "")) for q in queue_items} | set(rt.settings.acd.queues)
    checked_queues = [
        (str(q.get("name", "")), checked_queue(rt, str(q.get("name", "")), q, names))
        for q in queue_items
    ]
    policy = checked_policy(document["sla"]) if "sla" in document else None
    checked_days = []
    for item in days:
        kind = str(item.get("kind", ""))
        if kind not in KINDS:
            raise InvalidInput("invalid_choice", field="kind", choices=", ".join(KINDS))
        checked_days.append((parse_day(item.get("day")), kind, str(item.get("note") or "")[:200]))
    async with rt.transaction() as tx:
        counts["departments"] = await _departments(tx, rt, depts, actor=actor)
        # the kinds categories may name include the departments just imported
        known_kinds = {r.kind for r in (await tx.execute(select(departments.c.kind))).all()}
        counts["categories"] = await _categories(tx, rt, cats, known_kinds, actor=actor)
        if grid is not None:
            counts["grid_cells"] = await _grid(tx, rt, grid, actor=actor)
        for day, kind, note in checked_days:
            await tx.execute(delete(calendar_days).where(calendar_days.c.day == day))
            await tx.execute(
                calendar_days.insert().values(
                    day=day, kind=kind, note=note, updated_at=tx.state["now"]
                )
            )
        counts["calendar_days"] = len(checked_days)
        for key, locale, text in checked_texts:
            await tx.execute(
                delete(text_overrides).where(
                    text_overrides.c.key == key, text_overrides.c.locale == locale
                )
            )
            await tx.execute(
                text_overrides.insert().values(
                    key=key, locale=locale, body=text, updated_at=tx.state["now"]
                )
            )
        counts["texts"] = len(checked_texts)
        for name, queue in checked_queues:
            await tx.execute(delete(queue_settings).where(queue_settings.c.name == name))
            await tx.execute(
                queue_settings.insert().values(
                    name=name, **queue.model_dump(), updated_at=tx.state["now"]
                )
            )
        counts["queues"] = len(checked_queues)
        if policy is not None:
            await tx.execute(delete(sla_policy).where(sla_policy.c.id == 1))
            await tx.execute(
                sla_policy.insert().values(
                    id=1, policy=policy.model_dump(mode="json"), updated_at=tx.state["now"]
                )
            )
        await audit.record(
            tx,
            actor=actor,
            entity_type="configuration",
            entity_id=None,
            action="configuration.import",
            after=counts,
        )
        await directory_changed(tx)
    await rt.reload_directory()
    return counts


def _parents_first(items: list[Mapping[str, Any]], known: set[str]) -> list[Mapping[str, Any]]:
    """Departments ordered so that each comes after its parent (in the file or here)."""
    placed, ordered, pending = set(known), [], list(items)
    while pending:
        ready = [d for d in pending if d.get("parent") is None or d.get("parent") in placed]
        if not ready:
            raise InvalidInput("unknown_department", department=pending[0].get("parent"))
        for dept in ready:
            ordered.append(dept)
            placed.add(str(dept.get("code")))
            pending.remove(dept)
    return ordered


async def _departments(tx: Tx, rt: Runtime, items: list[Mapping[str, Any]], *, actor: Actor) -> int:
    known = {r.code for r in (await tx.execute(select(departments.c.code)))}
    for item in _parents_first(items, known):
        code = _required(item, "code", 64)
        ids = {
            r.code: r.id for r in (await tx.execute(select(departments.c.id, departments.c.code)))
        }
        if code not in ids:
            await add_department(tx, rt, item, actor=actor)
            continue
        phone = str(item.get("duty_phone") or "").strip()
        parent = item.get("parent")
        if parent is not None and parent not in ids:
            raise InvalidInput("unknown_department", department=parent)
        values = {
            "kind": _required(item, "kind", 40),
            "name_zh": _required(item, "name_zh"),
            "name_en": _required(item, "name_en"),
            "parent_id": ids[parent] if parent is not None else None,
            "keywords": _keywords(item.get("keywords")),
            "duty_phone": normalize_phone(phone, rt.settings.default_region) if phone else None,
            "active": bool(item.get("active", True)),
        }
        await tx.execute(update(departments).where(departments.c.id == ids[code]).values(**values))
    return len(items)


async def _categories(
    tx: Tx,
    rt: Runtime,
    items: list[Mapping[str, Any]],
    kinds: set[str],
    *,
    actor: Actor,
) -> int:
    existing = {
        r.code: r.id for r in (await tx.execute(select(categories.c.id, categories.c.code)))
    }
    for item in items:
        code = _required(item, "code", 64)
        if item.get("department_kind") not in kinds:
            raise InvalidInput(
                "invalid_choice", field="department_kind", choices=", ".join(sorted(kinds))
            )
        values = _category_values(rt, item)
        values["active"] = bool(item.get("active", True))
        if code in existing:
            await tx.execute(
                update(categories).where(categories.c.id == existing[code]).values(**values)
            )
        else:
            await add_category(tx, rt, {**values, "code": code}, actor=actor)
    return len(items)


async def _grid(tx: Tx, rt: Runtime, document: Any, *, actor: Actor) -> int:
    owners = {
        r.code: r.id for r in (await tx.execute(select(departments.c.id, departments.c.code)))
    }
    staying = {r.code: shape(r.geometry) for r in (await tx.execute(select(grid_cells))).all()}
    check = check_grid(document, list(owners), staying)
    if not check.ok:
        key, params = check.problems[0]
        raise InvalidInput("config_grid", problem=rt.text(key, None, **params))
    existing = {
        r.code: r.id for r in (await tx.execute(select(grid_cells.c.id, grid_cells.c.code)))
    }
    for cell in check.cells:
        if cell["code"] in existing:
            await tx.execute(
                update(grid_cells)
                .where(grid_cells.c.id == existing[cell["code"]])
                .values(
                    name=cell["name"], owner_id=owners[cell["owner"]], geometry=cell["geometry"]
                )
            )
        else:
            await add_grid_cell(tx, rt, cell, actor=actor)
    return len(check.cells)
