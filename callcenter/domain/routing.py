"""Routing (派单): which department handles a ticket, and why.

A category names the *kind* of department responsible for it (urban
management, water, housing...). The location names an *area*: a grid cell
found by point-in-polygon from coordinates, or a street found by address
keywords. Walking from that area up through street, district and city, the
first department of the right kind with jurisdiction there is responsible. A
category with a city-wide department needs no location. Anything else goes to
the dispatch desk, where an agent decides.

Every decision names the rule that produced it, so an agent can see why a
ticket went where it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

AREA_KINDS = ("city", "district", "street", "community")
DESK_KIND = "dispatch_desk"


@dataclass(frozen=True)
class Department:
    id: int
    code: str
    kind: str
    name_zh: str
    name_en: str
    parent_id: int | None = None
    keywords: tuple[str, ...] = ()

    @property
    def is_area(self) -> bool:
        return self.kind in AREA_KINDS

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


@dataclass(frozen=True)
class Category:
    id: int
    code: str
    name_zh: str
    name_en: str
    department_kind: str
    default_type: str = "help"
    keywords_zh: tuple[str, ...] = ()
    keywords_en: tuple[str, ...] = ()
    default_priority: str = "normal"
    handle_working_days: float | None = None  # None: the ticket type's limit

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


@dataclass(frozen=True)
class GridCell:
    id: int
    code: str
    name: str
    owner_id: int
    geometry: BaseGeometry

    @classmethod
    def from_geojson(cls, id: int, code: str, name: str, owner_id: int, geojson: Any) -> GridCell:
        return cls(id, code, name, owner_id, shape(geojson))


@dataclass(frozen=True)
class Location:
    address: str | None = None
    lat: float | None = None
    lon: float | None = None

    @property
    def has_point(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class RoutingDecision:
    """Where a ticket goes and which rule sent it there."""

    department_id: int
    rule: str  # grid | address | text | citywide | no_category | no_location | no_department
    category_code: str | None = None
    department_kind: str | None = None
    grid_cell_id: int | None = None
    area_id: int | None = None
    street_id: int | None = None
    district_id: int | None = None
    matched: str | None = None  # the keyword or cell code that located the ticket
    via_area_id: int | None = None  # the area whose department took it
    to_desk: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Directory:
    """Departments, categories and grid cells, indexed for routing."""

    departments: Sequence[Department]
    categories: Sequence[Category]
    cells: Sequence[GridCell]
    by_id: dict[int, Department] = field(init=False)
    category_by_code: dict[str, Category] = field(init=False)
    category_by_id: dict[int, Category] = field(init=False)
    cell_by_id: dict[int, GridCell] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {d.id: d for d in self.departments}
        self.category_by_code = {c.code: c for c in self.categories}
        self.category_by_id = {c.id: c for c in self.categories}
        self.cell_by_id = {c.id: c for c in self.cells}
        self._tree = STRtree([c.geometry for c in self.cells]) if self.cells else None
        self._children: dict[int | None, list[Department]] = {}
        for dept in self.departments:
            self._children.setdefault(dept.parent_id, []).append(dept)
        keyword_pairs = [(kw, d) for d in self.departments if d.is_area for kw in d.keywords if kw]
        # longest keyword first, so "湖滨北路" beats "湖滨"
        self._address_keywords = sorted(keyword_pairs, key=lambda p: -len(p[0]))
        desks = [d for d in self.departments if d.kind == DESK_KIND]
        self.desk = desks[0] if desks else None

    def chain(self, area_id: int | None) -> list[Department]:
        """The area and its parents, narrowest first."""
        out: list[Department] = []
        seen: set[int] = set()
        while area_id is not None and area_id not in seen:
            seen.add(area_id)
            dept = self.by_id.get(area_id)
            if dept is None:
                break
            if dept.is_area:
                out.append(dept)
            area_id = dept.parent_id
        return out

    def cell_at(self, lon: float, lat: float) -> GridCell | None:
        if self._tree is None:
            return None
        point = Point(lon, lat)
        for index in self._tree.query(point, predicate="intersects"):
            return self.cells[int(index)]
        return None

    def area_for_address(self, address: str) -> tuple[Department, str] | None:
        text = address.lower()
        for keyword, dept in self._address_keywords:
            if keyword.lower() in text:
                return dept, keyword
        return None

    def of_kind(self, kind: str) -> list[Department]:
        return [d for d in self.departments if d.kind == kind]

    def responsible_in(self, kind: str, area: Department) -> Department | None:
        if area.kind == kind:
            return area
        for child in self._children.get(area.id, []):
            if child.kind == kind:
                return child
        return None

    def citywide(self, kind: str) -> Department | None:
        candidates = self.of_kind(kind)
        if len(candidates) == 1:
            return candidates[0]
        top = [
            d for d in candidates if (p := self.by_id.get(d.parent_id or -1)) and p.kind == "city"
        ]
        return top[0] if len(top) == 1 else None

    def level(self, area: Department | None, kind: str) -> Department | None:
        for dept in self.chain(area.id if area else None):
            if dept.kind == kind:
                return dept
        return None


def route(
    directory: Directory, category: Category | None, location: Location, text: str | None = None
) -> RoutingDecision:
    """Decide the responsible department. Never fails: the desk takes what no rule does.

    The place is looked for in this order: the coordinates (grid cell), the
    address, then place names in the citizen's own words (``text``).
    """
    desk_id = directory.desk.id if directory.desk else 0

    area: Department | None = None
    cell: GridCell | None = None
    how: str | None = None
    matched: str | None = None
    if location.has_point:
        assert location.lat is not None and location.lon is not None
        cell = directory.cell_at(location.lon, location.lat)
        if cell is not None:
            area, how, matched = directory.by_id.get(cell.owner_id), "grid", cell.code
    if area is None and location.address:
        found = directory.area_for_address(location.address)
        if found is not None:
            (area, matched), how = found, "address"
    if area is None and text:
        found = directory.area_for_address(text)
        if found is not None:
            (area, matched), how = found, "text"

    where: dict[str, Any] = {
        "grid_cell_id": cell.id if cell else None,
        "area_id": area.id if area else None,
        "street_id": (s.id if (s := directory.level(area, "street")) else None),
        "district_id": (d.id if (d := directory.level(area, "district")) else None),
        "matched": matched,
    }

    if category is None:
        return RoutingDecision(desk_id, "no_category", to_desk=True, **where)
    kind = category.department_kind
    common: dict[str, Any] = {"category_code": category.code, "department_kind": kind, **where}

    if area is not None and how is not None:
        for level in directory.chain(area.id):
            dept = directory.responsible_in(kind, level)
            if dept is not None:
                return RoutingDecision(dept.id, how, via_area_id=level.id, **common)
        return RoutingDecision(desk_id, "no_department", to_desk=True, **common)

    dept = directory.citywide(kind)
    if dept is not None:
        return RoutingDecision(dept.id, "citywide", **common)
    return RoutingDecision(desk_id, "no_location", to_desk=True, **common)


# --- classification of free text -------------------------------------------------

TYPE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "complaint": ("投诉", "complain", "complaint"),
    "report": ("举报", "report illegal", "whistleblow"),
    "suggestion": ("建议", "suggest", "suggestion", "proposal"),
    "praise": ("表扬", "感谢", "点赞", "thank", "praise", "well done"),
    "inquiry": ("咨询", "请问", "怎么办理", "如何", "how do i", "how to", "where can i", "what is"),
}

_ASCII = re.compile(r"^[\x00-\x7f]+$")


@dataclass(frozen=True)
class Classification:
    category_code: str | None
    confidence: float
    matched: tuple[str, ...] = ()
    runner_up: str | None = None
    ticket_type: str | None = None


@lru_cache(maxsize=4096)
def _word_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(keyword)}(?:s|es)?\b")


@lru_cache(maxsize=8192)
def _matcher(keyword: str) -> tuple[re.Pattern[str] | None, str]:
    lowered = keyword.lower()
    return (_word_pattern(lowered) if _ASCII.match(lowered) else None), lowered


def _matches(keyword: str, text: str) -> bool:
    """Latin keywords match whole words (and plurals); Chinese ones match anywhere."""
    pattern, lowered = _matcher(keyword)
    if pattern is not None:
        return pattern.search(text) is not None
    return lowered in text


def infer_type(text: str, default: str, *, problem_named: bool = False) -> str:
    """The ticket type the words ask for, else ``default``. Once the text names a
    problem (a category whose own type is not an inquiry), "咨询"/"请问" is how people
    open a call, not what they want: a broken street light stays a request for help."""
    lowered = text.lower()
    for ticket_type, words in TYPE_KEYWORDS.items():
        if ticket_type == "inquiry" and problem_named:
            continue
        if any(_matches(w, lowered) for w in words):
            return ticket_type
    return default


def classify(text: str, categories: Iterable[Category]) -> Classification:
    """Score each category by the keywords found in ``text``.

    Confidence grows with the number of distinct keywords matched (one: 0.6,
    two: 0.8, three or more: 1.0) and shrinks by the share a runner-up
    category takes, so one clear keyword is enough but two categories tied
    are not.
    """
    lowered = text.lower()
    scored: list[tuple[int, Category, tuple[str, ...]]] = []
    for category in categories:
        found = tuple(
            kw
            for kw in (*category.keywords_zh, *category.keywords_en)
            if kw and _matches(kw, lowered)
        )
        if found:
            scored.append((len(found), category, found))
    if not scored:
        return Classification(None, 0.0, ticket_type=infer_type(text, "help"))
    scored.sort(key=lambda s: -s[0])
    best_score, best, found = scored[0]
    second_score = scored[1][0] if len(scored) > 1 else 0
    strength = min(1.0, 0.4 + 0.2 * best_score)
    share = best_score / (best_score + second_score)
    confidence = round(strength * share, 3)
    return Classification(
        best.code,
        confidence,
        found,
        runner_up=scored[1][1].code if len(scored) > 1 else None,
        ticket_type=infer_type(
            text, best.default_type, problem_named=best.default_type != "inquiry"
        ),
    )
