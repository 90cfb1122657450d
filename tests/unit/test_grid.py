"""The grid check: polygons, overlaps (with the cells that stay too), gaps."""

from __future__ import annotations

from typing import Any

from shapely.geometry import shape

from callcenter.domain.grid import check_grid


def square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def collection(*cells: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": c, "owner": "D"}, "geometry": g}
            for c, g in cells
        ],
    }


def test_touching_cells_do_not_overlap() -> None:
    check = check_grid(collection(("a", square(0, 0, 1, 1)), ("b", square(1, 0, 2, 1))), ["D"])
    assert check.ok and check.gaps == []


def test_problems_named_by_cell() -> None:
    bow = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    check = check_grid(
        collection(("a", square(0, 0, 2, 2)), ("b", square(1, 1, 3, 3)), ("c", bow), ("d", line)),
        ["D"],
        staying={"old": shape(square(2.5, 2.5, 4, 4)), "a": shape(square(0, 0, 9, 9))},
    )
    keys = [(k, p.get("cell"), p.get("other")) for k, p in check.problems]
    assert ("grid.overlap", "a", "b") in keys
    assert ("grid.overlap", "b", "old") in keys  # a cell that stays counts
    # "a" replaces the cell of that code that is there: it is not checked against it
    assert ("grid.overlap", "a", "a") not in keys and ("grid.overlap", "b", "a") not in keys
    assert ("grid.bad_geometry", "c", None) in keys and ("grid.not_polygon", "d", None) in keys


def test_a_hole_is_a_gap() -> None:
    cells = [
        (f"{i}{j}", square(i, j, i + 1, j + 1))
        for i in range(3)
        for j in range(3)
        if (i, j) != (1, 1)
    ]
    check = check_grid(collection(*cells), ["D"])
    assert check.ok and len(check.gaps) == 1
    assert shape(check.gaps[0]).equals(shape(square(1, 1, 2, 2)))
