"""Departments, categories and the grid: the city as the hotline sees it."""

from __future__ import annotations

from typing import Any

from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import CategoryOut, DepartmentOut, GridOut, LangQuery
from callcenter.domain.errors import NotFound
from callcenter.domain.ids import parse_id
from callcenter.domain.routing import Department
from callcenter.domain.workflow import Role
from callcenter.views import grid_cell_rows

STAFF = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN}


def _department(ctx: Context, d: Department) -> dict[str, Any]:
    return {
        "id": d.id,
        "code": d.code,
        "kind": d.kind,
        "kind_label": ctx.rt.catalog.label("department_kind", d.kind, ctx.locale),
        "name": d.name(ctx.locale),
        "name_zh": d.name_zh,
        "name_en": d.name_en,
        "parent_id": d.parent_id,
        "is_area": d.is_area,
    }


@endpoint(
    "GET",
    "/departments",
    summary="All departments, as a tree by parent_id",
    tag="directory",
    roles=STAFF,
    query=LangQuery,
    response=list[DepartmentOut],
    errors=(401,),
)
async def list_departments(ctx: Context) -> list[dict[str, Any]]:
    return [_department(ctx, d) for d in ctx.rt.directory.departments]


@endpoint(
    "GET",
    "/departments/{department_id}",
    summary="One department",
    tag="directory",
    roles=STAFF,
    query=LangQuery,
    response=DepartmentOut,
    errors=(401, 404),
)
async def show_department(ctx: Context) -> dict[str, Any]:
    raw = ctx.params["department_id"]
    dept = ctx.rt.directory.by_id.get(parse_id(raw) or 0)
    if dept is None:
        dept = next((d for d in ctx.rt.directory.departments if d.code == raw), None)
    if dept is None:
        raise NotFound("department_not_found", department=raw)
    return _department(ctx, dept)


@endpoint(
    "GET",
    "/categories",
    summary="Ticket categories with their responsible department kind",
    tag="directory",
    roles=STAFF,
    query=LangQuery,
    response=list[CategoryOut],
    errors=(401,),
)
async def list_categories(ctx: Context) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "code": c.code,
            "name": c.name(ctx.locale),
            "name_zh": c.name_zh,
            "name_en": c.name_en,
            "department_kind": c.department_kind,
            "default_type": c.default_type,
        }
        for c in ctx.rt.directory.categories
    ]


@endpoint(
    "GET",
    "/grid",
    summary="Grid cells as a GeoJSON FeatureCollection",
    tag="directory",
    roles=STAFF,
    query=LangQuery,
    response=GridOut,
    errors=(401,),
)
async def grid(ctx: Context) -> dict[str, Any]:
    async with ctx.rt.db.read() as conn:
        rows = await grid_cell_rows(conn)
    directory = ctx.rt.directory
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.id,
                "properties": {
                    "code": r.code,
                    "name": r.name,
                    "owner_id": r.owner_id,
                    "owner": (
                        directory.by_id[r.owner_id].name(ctx.locale)
                        if r.owner_id in directory.by_id
                        else None
                    ),
                },
                "geometry": r.geometry,
            }
            for r in rows
        ],
    }
