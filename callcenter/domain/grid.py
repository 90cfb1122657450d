"""Checking an uploaded grid (GeoJSON cells) before it replaces anything: every cell a
valid polygon with a code, a name and an owning department; no two cells overlapping;
and the holes the cells leave inside the area they cover listed as gaps (a point in a
gap belongs to no cell, and its tickets go by street or to the dispatch desk)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import Polygon, mapping, shape
from shapely.ops import unary_union
from shapely.validation import explain_validity

# overlaps smaller than this share of the smaller cell are drawing noise, not overlaps
OVERLAP_TOLERANCE = 1e-6


@dataclass
class GridCheck:
    cells: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, params)
    gaps: list[dict[str, Any]] = field(default_factory=list)  # GeoJSON of each hole

    @property
    def ok(self) -> bool:
        return not self.problems


def check_grid(
    document: Any, owners: Sequence[str], staying: Mapping[str, Any] | None = None
) -> GridCheck:
    """Read a FeatureCollection; every problem is named with the cell it is in.
    ``staying``: the cells already there that the file does not replace (code to shapely
    geometry); a new cell may not overlap them either, and gaps count them too."""
    result = GridCheck()
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        result.problems.append(("grid.not_collection", {}))
        return result
    features = document.get("features")
    if not isinstance(features, list) or not features:
        result.problems.append(("grid.empty", {}))
        return result
    shapes = []
    seen: set[str] = set()
    for index, feature in enumerate(features, start=1):
        props = (feature or {}).get("properties") or {} if isinstance(feature, Mapping) else {}
        code = str(props.get("code") or "").strip()
        label = code or f"#{index}"
        if not code:
            result.problems.append(("grid.no_code", {"cell": label}))
            continue
        if code in seen:
            result.problems.append(("grid.duplicate_code", {"cell": code}))
            continue
        seen.add(code)
        owner = str(props.get("owner") or "").strip()
        if owner not in owners:
            result.problems.append(("grid.unknown_owner", {"cell": code, "owner": owner}))
        try:
            geometry = shape(feature.get("geometry"))
        except Exception:
            result.problems.append(("grid.bad_geometry", {"cell": code, "why": "unreadable"}))
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            result.problems.append(("grid.not_polygon", {"cell": code, "kind": geometry.geom_type}))
            continue
        if not geometry.is_valid:
            result.problems.append(
                ("grid.bad_geometry", {"cell": code, "why": explain_validity(geometry)})
            )
            continue
        shapes.append((code, geometry))
        result.cells.append(
            {
                "code": code,
                "name": str(props.get("name") or code).strip()[:200],
                "owner": owner,
                "geometry": mapping(geometry),
            }
        )
    for i, (code_a, a) in enumerate(shapes):
        for code_b, b in shapes[i + 1 :]:
            if a.intersects(b):
                shared = a.intersection(b).area
                if shared > OVERLAP_TOLERANCE * min(a.area, b.area):
                    result.problems.append(("grid.overlap", {"cell": code_a, "other": code_b}))
    kept = [(code, g) for code, g in (staying or {}).items() if code not in seen]
    for code_a, a in shapes:
        for code_b, b in kept:
            if a.intersects(b) and a.intersection(b).area > OVERLAP_TOLERANCE * min(a.area, b.area):
                result.problems.append(("grid.overlap", {"cell": code_a, "other": code_b}))
    if shapes:
        union = unary_union([g for _, g in shapes + kept])
        parts = list(union.geoms) if union.geom_type == "MultiPolygon" else [union]
        for part in parts:
            for ring in getattr(part, "interiors", []):
                hole = Polygon(ring)
                if hole.area > OVERLAP_TOLERANCE * union.area:  # not a sliver of rounding
                    result.gaps.append(mapping(hole))
    return result
