"""The demo city, read from its data file (``minghu.toml``) into the directory
description the real :func:`~callcenter.actions.directory.load_city` action loads.

The file holds the city: its departments (the city's own, and those every
district has), districts, streets with the road names routing knows them by,
communities (one grid cell each), categories, the desk's staff, what citizens
say, and the shape of the month :mod:`callcenter.demo.history` plays. This
module only lays it out: department codes, parents, duty phones, one duty
officer per department, the grid's boxes.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("minghu.toml")
# every demo user signs in to the browser pages with this password (demo data only)
DEMO_PASSWORD = "demo12345"


@functools.cache
def data(path: Path = DATA) -> dict[str, Any]:
    """The city's data file, as read (cached: it is read once per process)."""
    with path.open("rb") as handle:
        return tomllib.load(handle)


@functools.cache
def demo_password_hash() -> str:
    """One Argon2 hash shared by the demo users (hashing is slow on purpose)."""
    from callcenter.domain.passwords import hash_password

    return hash_password(DEMO_PASSWORD)


def _box(lon0: float, lat0: float, dlon: float, dlat: float) -> dict[str, Any]:
    ring = [
        [lon0, lat0],
        [lon0 + dlon, lat0],
        [lon0 + dlon, lat0 + dlat],
        [lon0, lat0 + dlat],
        [lon0, lat0],
    ]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


class _Layout:
    """Departments, cells and staff, in the order the file gives them."""

    def __init__(self, source: dict[str, Any]) -> None:
        self.source = source
        self.city = source["city"]
        self.departments: list[dict[str, Any]] = []
        self.cells: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = [dict(u) for u in source["desk_staff"]]
        self.phone = int(self.city["phone_numbers_after"])

    def next_phone(self) -> str:
        self.phone += 1
        return f"+86{self.phone}"

    def department(self, *, staffed: bool, **values: Any) -> None:
        if staffed:
            values["duty_phone"] = self.next_phone()
        self.departments.append(values)
        if staffed:
            self.users.append(
                {
                    "username": values["code"].lower(),
                    "display_name": f"{values['name_zh']} 值班员",
                    "role": "department",
                    "department": values["code"],
                    "phone": self.next_phone(),
                }
            )

    def build(self) -> None:
        city = self.city
        code = city["code"]
        self.department(
            staffed=False, code=code, kind="city", name_zh=city["name_zh"], name_en=city["name_en"]
        )
        self.department(
            staffed=False,
            code=city["desk_code"],
            kind="dispatch_desk",
            name_zh=city["desk_name_zh"],
            name_en=city["desk_name_en"],
            parent=code,
        )
        for dept in self.source["city_departments"]:
            self.department(staffed=True, parent=code, **dept)
        for district in self.source["districts"]:
            self._district(district)

    def _district(self, district: dict[str, Any]) -> None:
        dcode, dzh, den = district["code"], district["name_zh"], district["name_en"]
        self.department(
            staffed=False,
            code=dcode,
            kind="district",
            name_zh=dzh,
            name_en=den,
            parent=self.city["code"],
            keywords=[dzh],
        )
        for dept in self.source["district_departments"]:
            self.department(
                staffed=True,
                code=f"{dcode}-{dept['suffix']}",
                kind=dept["kind"],
                name_zh=dzh + dept["name_zh"],
                name_en=f"{den} {dept['name_en']}",
                parent=dcode,
            )
        for s_index, street in enumerate(district["streets"]):
            scode = street["code"]
            self.department(
                staffed=True,
                code=scode,
                kind="street",
                name_zh=street["name_zh"],
                name_en=street["name_en"],
                parent=dcode,
                keywords=list(street["keywords"]),
            )
            for c_index, (czh, cen) in enumerate(street["communities"]):
                ccode = f"{scode}-{c_index + 1:02d}"
                self.department(
                    staffed=False,
                    code=ccode,
                    kind="community",
                    name_zh=czh,
                    name_en=cen,
                    parent=scode,
                    keywords=[czh],
                )
                self.cells.append(
                    {
                        "code": f"GRID-{ccode}",
                        "name": f"{czh}网格",
                        "owner": ccode,
                        "geometry": _box(
                            district["lon0"] + self.city["cell_lon"] * c_index,
                            self.city["lat0"] + self.city["cell_lat"] * s_index,
                            self.city["cell_lon"],
                            self.city["cell_lat"],
                        ),
                    }
                )


def _categories(source: dict[str, Any]) -> list[dict[str, Any]]:
    """The categories as the directory takes them (without the month's weights)."""
    return [{k: v for k, v in c.items() if k != "month_weight"} for c in source["categories"]]


def city(path: Path = DATA) -> dict[str, Any]:
    """The demo city as a directory description (see :func:`load_city`)."""
    source = data(path)
    layout = _Layout(source)
    layout.build()
    return {
        "departments": layout.departments,
        "categories": _categories(source),
        "grid_cells": layout.cells,
        "users": [
            dict(u, token=f"demo-{u['username']}", password_hash=demo_password_hash())
            for u in layout.users
        ],
    }


# The city's parts in the shapes other modules read them in (the speech tests and
# benchmarks build their vocabularies from these).
_SOURCE = data()
CITY: str = _SOURCE["city"]["code"]
CATEGORIES: list[dict[str, Any]] = _categories(_SOURCE)
CITY_DEPARTMENTS: list[tuple[str, str, str, str]] = [
    (d["code"], d["kind"], d["name_zh"], d["name_en"]) for d in _SOURCE["city_departments"]
]
DISTRICT_DEPARTMENTS: list[tuple[str, str, str, str]] = [
    (d["suffix"], d["kind"], d["name_zh"], d["name_en"]) for d in _SOURCE["district_departments"]
]
DISTRICTS: list[tuple[str, str, str, float, list[Any]]] = [
    (
        d["code"],
        d["name_zh"],
        d["name_en"],
        d["lon0"],
        [
            (
                s["code"],
                s["name_zh"],
                s["name_en"],
                list(s["keywords"]),
                [tuple(c) for c in s["communities"]],
            )
            for s in d["streets"]
        ],
    )
    for d in _SOURCE["districts"]
]
DESCRIPTIONS: dict[str, list[str]] = _SOURCE["descriptions"]
