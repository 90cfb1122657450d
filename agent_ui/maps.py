"""The map: the city's grid cells and streets (from its own GeoJSON, shapely joining a
street's cells) and the open tickets with a place, coloured by their light. Department
staff see their own department's tickets only. With a tile server configured
(``[map] tile_url``) a basemap lies under them; without one the city's layers are drawn
alone."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from agent_ui.common import STAFF, page_handler, require
from agent_ui.render import render, ui_locale
from callcenter.api.http import json_response
from callcenter.api.keys import RUNTIME
from callcenter.domain.workflow import Role
from callcenter.runtime import Runtime
from callcenter.views import TicketFilter, grid_cell_rows, list_tickets, ticket_view

MAX_POINTS = 2000


@page_handler
async def map_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    context = {
        "page": "map",
        "tiles": rt.settings.map.tile_url or "",
        "attribution": rt.settings.map.attribution,
        "max_zoom": rt.settings.map.max_zoom,
    }
    return await render(request, "map.html", actor, context)


@page_handler
async def grid_layer(request: web.Request) -> web.StreamResponse:
    """The grid cells, and each street as the union of its cells, as GeoJSON."""
    actor = await require(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        rows = await grid_cell_rows(conn)
    directory = rt.directory
    features: list[dict[str, Any]] = []
    by_street: dict[int, list[Any]] = {}
    for r in rows:
        owner = directory.by_id.get(r.owner_id)
        street = next((d for d in directory.chain(r.owner_id) if d.kind == "street"), None)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "layer": "cell",
                    "code": r.code,
                    "name": r.name,
                    "owner": owner.name(locale) if owner else None,
                },
                "geometry": r.geometry,
            }
        )
        if street is not None:
            by_street.setdefault(street.id, []).append(shape(r.geometry))
    for street_id, shapes in by_street.items():
        street = directory.by_id[street_id]
        features.append(
            {
                "type": "Feature",
                "properties": {"layer": "street", "code": street.code, "name": street.name(locale)},
                "geometry": mapping(unary_union(shapes)),
            }
        )
    return json_response({"type": "FeatureCollection", "features": features})


@page_handler
async def ticket_layer(request: web.Request) -> web.StreamResponse:
    """Open tickets with a place (at most ``MAX_POINTS``, most pressing first)."""
    actor = await require(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    f = TicketFilter(open_only=True)
    if actor.role is Role.DEPARTMENT:
        f.department_id = actor.department_id
    async with rt.db.read() as conn:
        rows, _ = await list_tickets(
            conn, rt, f, actor=actor, page=1, per_page=MAX_POINTS, sort="urgency"
        )
    now = rt.clock.now()
    points = []
    for row in rows:
        if row.lat is None or row.lon is None:
            continue
        v = ticket_view(rt, row, locale, actor=actor, now=now)
        points.append(
            {
                "type": "Feature",
                "properties": {
                    "number": v["number"],
                    "title": v["title"],
                    "light": v["light"],
                    "state": v["state_label"],
                    "href": f"/ui/tickets/{v['number']}",
                },
                "geometry": {"type": "Point", "coordinates": [row.lon, row.lat]},
            }
        )
    return json_response({"type": "FeatureCollection", "features": points})
