"""The directory: departments, categories, grid cells and staff users.

Loaded in bulk from a city description (the demo city, or an operator's own
file with the same shape) by :func:`load_city`, which is one transaction: a
city is loaded whole or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from shapely.geometry import shape
from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.bus import Event
from callcenter.bus.events import DIRECTORY_CHANGED
from callcenter.domain.auth import token_hash
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from callcenter.domain.grid import GridCheck, check_grid
from callcenter.domain.phone import normalize_phone
from callcenter.domain.workflow import Actor, Priority, Role, TicketType
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import categories, config_version, departments, grid_cells, users


def _required(data: Mapping[str, Any], name: str, limit: int = 200) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("missing_field", field=name)
    if len(value) > limit:
        raise InvalidInput("field_too_long", field=name, limit=limit)
    return value.strip()


async def _ids_by_code(tx: Tx) -> dict[str, int]:
    return {r.code: r.id for r in (await tx.execute(select(departments.c.id, departments.c.code)))}


async def add_department(tx: Tx, rt: Runtime, data: Mapping[str, Any], *, actor: Actor) -> int:
    code = _required(data, "code", 64)
    kind = _required(data, "kind", 40)
    if not rt.catalog.has(f"department_kind.{kind}"):
        raise InvalidInput(
            "invalid_choice", field="kind", choices="department_kind.* in the catalog"
        )
    ids = await _ids_by_code(tx)
    if code in ids:
        raise Conflict("duplicate_code", code=code)
    parent = data.get("parent")
    if parent is not None and parent not in ids:
        raise InvalidInput("unknown_department", department=parent)
    values = {
        "code": code,
        "kind": kind,
        "name_zh": _required(data, "name_zh"),
        "name_en": _required(data, "name_en"),
        "parent_id": ids[parent] if parent is not None else None,
        "keywords": [str(k) for k in data.get("keywords", [])],
        "duty_phone": (
            normalize_phone(data["duty_phone"], rt.settings.default_region)
            if data.get("duty_phone")
            else None
        ),
        "active": True,
    }
    dept_id = (await tx.execute(departments.insert().values(**values))).inserted_primary_key[0]
    await audit.record(
        tx,
        actor=actor,
        entity_type="department",
        entity_id=dept_id,
        action="department.create",
        after=values,
    )
    return int(dept_id)


async def add_category(tx: Tx, rt: Runtime, data: Mapping[str, Any], *, actor: Actor) -> int:
    default_type = data.get("default_type", TicketType.HELP.value)
    if default_type not in TicketType.__members__.values():
        raise InvalidInput("invalid_choice", field="default_type", choices=", ".join(TicketType))
    default_priority = data.get("default_priority", Priority.NORMAL.value)
    if default_priority not in Priority.__members__.values():
        raise InvalidInput("invalid_choice", field="default_priority", choices=", ".join(Priority))
    values = {
        "code": _required(data, "code", 64),
        "name_zh": _required(data, "name_zh"),
        "name_en": _required(data, "name_en"),
        "department_kind": _required(data, "department_kind", 40),
        "default_type": default_type,
        "default_priority": default_priority,
        "handle_working_days": _days(data.get("handle_working_days")),
        "keywords_zh": [str(k) for k in data.get("keywords_zh", [])],
        "keywords_en": [str(k) for k in data.get("keywords_en", [])],
        "active": True,
    }
    category_id = (await tx.execute(categories.insert().values(**values))).inserted_primary_key[0]
    await audit.record(
        tx,
        actor=actor,
        entity_type="category",
        entity_id=category_id,
        action="category.create",
        after=values,
    )
    return int(category_id)


def _days(value: Any) -> float | None:
    if value is None:
        return None
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("invalid_field", field="handle_working_days") from None
    if not 0 < days <= 365:
        raise InvalidInput("invalid_field", field="handle_working_days")
    return days


async def add_grid_cell(tx: Tx, rt: Runtime, data: Mapping[str, Any], *, actor: Actor) -> int:
    ids = await _ids_by_code(tx)
    owner = data.get("owner")
    if owner not in ids:
        raise InvalidInput("unknown_department", department=owner)
    geometry = data.get("geometry")
    try:
        polygon = shape(geometry)
    except Exception:
        raise InvalidInput("invalid_field", field="geometry") from None
    if polygon.geom_type not in ("Polygon", "MultiPolygon") or not polygon.is_valid:
        raise InvalidInput("invalid_field", field="geometry")
    values = {
        "code": _required(data, "code", 64),
        "name": _required(data, "name"),
        "owner_id": ids[owner],
        "geometry": geometry,
    }
    cell_id = (await tx.execute(grid_cells.insert().values(**values))).inserted_primary_key[0]
    await audit.record(
        tx,
        actor=actor,
        entity_type="grid_cell",
        entity_id=cell_id,
        action="grid_cell.create",
        after={k: v for k, v in values.items() if k != "geometry"},
    )
    return int(cell_id)


async def add_user(
    tx: Tx, rt: Runtime, data: Mapping[str, Any], *, actor: Actor, api_token: bool = True
) -> tuple[int, str]:
    """Create a staff user; returns (id, API token). The token is shown once, stored hashed;
    with ``api_token=False`` the user gets none (people sign in to the pages) and it is ""."""
    role = data.get("role")
    if role not in {r.value for r in Role} - {Role.SYSTEM.value}:
        raise InvalidInput(
            "invalid_choice", field="role", choices="agent, supervisor, department, admin"
        )
    department_id = None
    if role == Role.DEPARTMENT.value:
        ids = await _ids_by_code(tx)
        if data.get("department") not in ids:
            raise InvalidInput("unknown_department", department=data.get("department"))
        department_id = ids[data["department"]]
    token = (data.get("token") or secrets.token_urlsafe(24)) if api_token else ""
    values = {
        "username": _required(data, "username", 64),
        "display_name": _required(data, "display_name"),
        "role": role,
        "department_id": department_id,
        "locale": rt.catalog.normalize(data.get("locale") or rt.settings.default_locale),
        "phone": (
            normalize_phone(data["phone"], rt.settings.default_region)
            if data.get("phone")
            else None
        ),
        "token_hash": token_hash(token) if token else None,
        "password_hash": data.get("password_hash"),
        "active": True,
        "created_at": tx.state["now"],
    }
    user_id = (await tx.execute(users.insert().values(**values))).inserted_primary_key[0]
    await audit.record(
        tx,
        actor=actor,
        entity_type="user",
        entity_id=user_id,
        action="user.create",
        after={k: v for k, v in values.items() if k not in ("token_hash", "password_hash")},
    )
    return int(user_id), str(token)


async def load_city(rt: Runtime, city: Mapping[str, Any], *, actor: Actor) -> dict[str, str]:
    """Load departments, categories, grid cells and users in one transaction.

    Returns the API token of each user, by username.
    """
    tokens: dict[str, str] = {}
    async with rt.transaction() as tx:
        for dept in _parents_first(city.get("departments", [])):
            await add_department(tx, rt, dept, actor=actor)
        for category in city.get("categories", []):
            await add_category(tx, rt, category, actor=actor)
        for cell in city.get("grid_cells", []):
            await add_grid_cell(tx, rt, cell, actor=actor)
        for user in city.get("users", []):
            _, token = await add_user(tx, rt, user, actor=actor)
            tokens[user["username"]] = token
        await directory_changed(tx)
    await rt.reload_directory()
    return tokens


def _parents_first(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    placed: set[str] = set()
    ordered: list[Mapping[str, Any]] = []
    pending = list(items)
    while pending:
        ready = [d for d in pending if d.get("parent") is None or d.get("parent") in placed]
        if not ready:
            raise InvalidInput("unknown_department", department=pending[0].get("parent"))
        for dept in ready:
            ordered.append(dept)
            placed.add(str(dept.get("code")))
            pending.remove(dept)
    return ordered


# --- an administrator's changes, one at a time, in effect at once everywhere ----------------


def _keywords(value: Any) -> list[str]:
    """Keywords from a list, or from text with one per line or comma (either comma)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).replace("，", ",").split(",")
    words = []
    for item in items:
        for word in str(item).splitlines():
            word = word.strip()
            if word and word not in words:
                if len(word) > 40:
                    raise InvalidInput("field_too_long", field="keywords", limit=40)
                words.append(word)
    if len(words) > 200:
        raise InvalidInput("invalid_field", field="keywords")
    return words


def _category_values(rt: Runtime, data: Mapping[str, Any]) -> dict[str, Any]:
    kind = _required(data, "department_kind", 40)
    if not rt.catalog.has(f"department_kind.{kind}"):
        raise InvalidInput(
            "invalid_choice",
            field="department_kind",
            choices=", ".join(sorted({d.kind for d in rt.directory.departments})),
        )
    default_type = data.get("default_type") or TicketType.HELP.value
    if default_type not in TicketType.__members__.values():
        raise InvalidInput("invalid_choice", field="default_type", choices=", ".join(TicketType))
    priority = data.get("default_priority") or Priority.NORMAL.value
    if priority not in Priority.__members__.values():
        raise InvalidInput("invalid_choice", field="default_priority", choices=", ".join(Priority))
    days = data.get("handle_working_days")
    return {
        "name_zh": _required(data, "name_zh"),
        "name_en": _required(data, "name_en"),
        "department_kind": kind,
        "default_type": default_type,
        "default_priority": priority,
        "handle_working_days": _days(days if days not in ("", None) else None),
        "keywords_zh": _keywords(data.get("keywords_zh")),
        "keywords_en": _keywords(data.get("keywords_en")),
    }


async def directory_changed(tx: Tx) -> None:
    """Tell every process that the configuration changed: the version they watch moves
    (:meth:`Runtime.watch_directory`), and open pages hear ``directory.changed``."""
    await tx.execute(
        update(config_version)
        .where(config_version.c.id == 1)
        .values(version=config_version.c.version + 1)
    )
    tx.publish(Event(DIRECTORY_CHANGED, {}, tx.state["now"]))


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("role_not_allowed", role=actor.role.value)


async def create_category(rt: Runtime, data: Mapping[str, Any], *, actor: Actor) -> int:
    """A new category, recognised in the next text that comes in."""
    require_admin(actor)
    code = _required(data, "code", 64)
    values = _category_values(rt, data)
    async with rt.transaction() as tx:
        taken = (await tx.execute(select(categories.c.id).where(categories.c.code == code))).first()
        if taken is not None:
            raise Conflict("duplicate_code", code=code)
        category_id = await add_category(tx, rt, {**values, "code": code}, actor=actor)
        await directory_changed(tx)
    await rt.reload_directory()
    return category_id


async def update_category(
    rt: Runtime, category_id: int, data: Mapping[str, Any], *, actor: Actor
) -> None:
    """Change a category (names, type, department kind, time, keywords; on or off)."""
    require_admin(actor)
    values = _category_values(rt, data)
    values["active"] = bool(data.get("active", True))
    async with rt.transaction() as tx:
        row = (await tx.execute(select(categories).where(categories.c.id == category_id))).first()
        if row is None:
            raise NotFound("unknown_category", category=category_id)
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if not changed:
            return
        await tx.execute(update(categories).where(categories.c.id == category_id).values(**changed))
        await audit.record(
            tx,
            actor=actor,
            entity_type="category",
            entity_id=category_id,
            action="category.update",
            before={k: getattr(row, k) for k in changed},
            after=changed,
            details={"code": row.code},
        )
        await directory_changed(tx)
    await rt.reload_directory()


async def create_department(rt: Runtime, data: Mapping[str, Any], *, actor: Actor) -> int:
    """A new department (or area: district, street, community) in the tree."""
    require_admin(actor)
    async with rt.transaction() as tx:
        dept_id = await add_department(tx, rt, data, actor=actor)
        await directory_changed(tx)
    await rt.reload_directory()
    return dept_id


async def update_department(
    rt: Runtime, department_id: int, data: Mapping[str, Any], *, actor: Actor
) -> None:
    """Change a department's names, kind, parent, duty phone (for urgent alerts), the
    place names that route to it, or retire it."""
    require_admin(actor)
    kind = _required(data, "kind", 40)
    if not rt.catalog.has(f"department_kind.{kind}"):
        raise InvalidInput(
            "invalid_choice",
            field="kind",
            choices=", ".join(sorted({d.kind for d in rt.directory.departments})),
        )
    phone = str(data.get("duty_phone") or "").strip()
    values: dict[str, Any] = {
        "name_zh": _required(data, "name_zh"),
        "name_en": _required(data, "name_en"),
        "kind": kind,
        "duty_phone": normalize_phone(phone, rt.settings.default_region) if phone else None,
        "keywords": _keywords(data.get("keywords")),
        "active": bool(data.get("active", True)),
    }
    async with rt.transaction() as tx:
        ids = await _ids_by_code(tx)
        row = (
            await tx.execute(select(departments).where(departments.c.id == department_id))
        ).first()
        if row is None:
            raise NotFound("unknown_department", department=department_id)
        parent = str(data.get("parent") or "").strip()
        if parent:
            if parent not in ids:
                raise InvalidInput("unknown_department", department=parent)
            values["parent_id"] = ids[parent]
            # no department may end up beneath itself
            chain, seen = values["parent_id"], set()
            parents = {
                r.id: r.parent_id
                for r in (await tx.execute(select(departments.c.id, departments.c.parent_id)))
            }
            while chain is not None and chain not in seen:
                if chain == department_id:
                    raise InvalidInput("department_cycle")
                seen.add(chain)
                chain = parents.get(chain)
        else:
            values["parent_id"] = None
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if not changed:
            return
        await tx.execute(
            update(departments).where(departments.c.id == department_id).values(**changed)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="department",
            entity_id=department_id,
            action="department.update",
            before={k: getattr(row, k) for k in changed},
            after=changed,
            details={"code": row.code},
        )
        await directory_changed(tx)
    await rt.reload_directory()


async def upload_grid(rt: Runtime, document: Any, *, actor: Actor) -> GridCheck:
    """Grid cells from GeoJSON, checked whole first (:func:`check_grid`): with any problem
    nothing is written and the check lists them all; else each cell is added or, by its
    code, replaced (cells the file does not name stay: tickets point at them)."""
    require_admin(actor)
    owners = {d.code: d.id for d in rt.directory.departments}
    staying = {c.code: c.geometry for c in rt.directory.cells}
    check = check_grid(document, list(owners), staying)
    if not check.ok:
        return check
    async with rt.transaction() as tx:
        existing = {r.code: r for r in (await tx.execute(select(grid_cells))).all()}
        added = replaced = 0
        for cell in check.cells:
            values = {
                "name": cell["name"],
                "owner_id": owners[cell["owner"]],
                "geometry": cell["geometry"],
            }
            old = existing.get(cell["code"])
            if old is None:
                await add_grid_cell(
                    tx,
                    rt,
                    {
                        "code": cell["code"],
                        "name": cell["name"],
                        "owner": cell["owner"],
                        "geometry": cell["geometry"],
                    },
                    actor=actor,
                )
                added += 1
                continue
            await tx.execute(update(grid_cells).where(grid_cells.c.id == old.id).values(**values))
            replaced += 1
        await audit.record(
            tx,
            actor=actor,
            entity_type="grid_cell",
            entity_id=None,
            action="grid_cell.upload",
            after={"added": added, "replaced": replaced, "gaps": len(check.gaps)},
            details={"code": f"{len(check.cells)}"},
        )
        await directory_changed(tx)
    await rt.reload_directory()
    return check
