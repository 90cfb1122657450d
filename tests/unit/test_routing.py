import pytest

from callcenter.demo import city
from callcenter.domain.routing import (
    Category,
    Department,
    Directory,
    GridCell,
    Location,
    classify,
    infer_type,
    route,
)


@pytest.fixture(scope="module")
def directory() -> Directory:
    spec = city()
    ids = {d["code"]: i + 1 for i, d in enumerate(spec["departments"])}
    departments = [
        Department(
            ids[d["code"]],
            d["code"],
            d["kind"],
            d["name_zh"],
            d["name_en"],
            ids.get(d.get("parent")),
            tuple(d.get("keywords", [])),
        )
        for d in spec["departments"]
    ]
    categories = [
        Category(
            i + 1,
            c["code"],
            c["name_zh"],
            c["name_en"],
            c["department_kind"],
            c["default_type"],
            tuple(c["keywords_zh"]),
            tuple(c["keywords_en"]),
            c.get("default_priority", "normal"),
        )
        for i, c in enumerate(spec["categories"])
    ]
    cells = [
        GridCell.from_geojson(i + 1, g["code"], g["name"], ids[g["owner"]], g["geometry"])
        for i, g in enumerate(spec["grid_cells"])
    ]
    return Directory(departments, categories, cells)


def code(directory: Directory, dept_id: int) -> str:
    return directory.by_id[dept_id].code


def test_a_point_in_a_grid_cell_routes_to_that_districts_department(directory: Directory) -> None:
    garbage = directory.category_by_code["garbage"]
    # Qingshan District, Songlin Subdistrict, second community: lon 120.15-120.20, lat 30.06-30.12
    decision = route(directory, garbage, Location(lat=30.07, lon=120.16))
    assert decision.rule == "grid"
    assert code(directory, decision.department_id) == "QS-CG"
    assert directory.cell_by_id[decision.grid_cell_id].code == "GRID-QS-SL-02"  # type: ignore[index]
    assert code(directory, decision.street_id) == "QS-SL"  # type: ignore[arg-type]
    assert code(directory, decision.district_id) == "QS"  # type: ignore[arg-type]
    assert not decision.to_desk


def test_address_keywords_locate_the_street(directory: Directory) -> None:
    dispute = directory.category_by_code["neighbour_dispute"]  # handled by the street office
    decision = route(directory, dispute, Location(address="港湾路18号3单元"))
    assert decision.rule == "address" and decision.matched == "港湾路"
    assert code(directory, decision.department_id) == "XG-GW"


def test_place_names_in_the_text_are_the_last_resort(directory: Directory) -> None:
    garbage = directory.category_by_code["garbage"]
    decision = route(directory, garbage, Location(), text="松林路上的垃圾没人清运")
    assert decision.rule == "text" and code(directory, decision.department_id) == "QS-CG"
    decision = route(directory, garbage, Location(address="湖滨路1号"), text="松林路")
    assert decision.rule == "address" and code(directory, decision.department_id) == "HB-CG"


def test_the_point_wins_over_the_address(directory: Directory) -> None:
    garbage = directory.category_by_code["garbage"]
    decision = route(directory, garbage, Location(address="港湾路", lat=30.01, lon=120.01))
    assert decision.rule == "grid" and code(directory, decision.department_id) == "HB-CG"


def test_citywide_departments_need_no_location(directory: Directory) -> None:
    light = directory.category_by_code["street_light"]
    decision = route(directory, light, Location())
    assert decision.rule == "citywide" and code(directory, decision.department_id) == "MH-MUNICIPAL"
    # and a location still names the street and district on the ticket
    located = route(directory, light, Location(lat=30.01, lon=120.01))
    assert code(directory, located.department_id) == "MH-MUNICIPAL"
    assert code(directory, located.street_id) == "HB-HB"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("category", "location", "rule"),
    [
        (None, Location(lat=30.01, lon=120.01), "no_category"),
        ("garbage", Location(), "no_location"),
        ("garbage", Location(address="somewhere unknown"), "no_location"),
        ("garbage", Location(lat=31.5, lon=121.0), "no_location"),  # outside the city
    ],
)
def test_what_no_rule_matches_goes_to_the_desk(
    directory: Directory, category: str | None, location: Location, rule: str
) -> None:
    chosen = directory.category_by_code[category] if category else None
    decision = route(directory, chosen, location)
    assert decision.rule == rule and decision.to_desk
    assert code(directory, decision.department_id) == "MH-DESK"


def test_an_area_without_the_kind_goes_to_the_desk() -> None:
    city_ = Department(1, "C", "city", "市", "City")
    street = Department(2, "S", "street", "街", "Street", 1, ("某路",))
    desk = Department(3, "D", "dispatch_desk", "台", "Desk", 1)
    category = Category(1, "x", "x", "x", "housing")
    decision = route(
        Directory([city_, street, desk], [category], []), category, Location(address="某路")
    )
    assert decision.rule == "no_department" and decision.department_id == 3


def test_classification_recognises_chinese_and_english(directory: Directory) -> None:
    found = classify("小区路灯坏了", directory.categories)
    assert found.category_code == "street_light" and found.confidence >= 0.6
    assert found.matched == ("路灯", "路灯坏")
    english = classify("There is a pothole on Hubin Road", directory.categories)
    assert english.category_code == "road_damage"
    assert classify("你好", directory.categories).category_code is None
    assert classify("", directory.categories).confidence == 0


def test_ambiguous_text_has_low_confidence(directory: Directory) -> None:
    found = classify("停电了也停水了", directory.categories)
    assert found.runner_up is not None
    assert found.confidence < 0.6


def test_english_keywords_match_whole_words(directory: Directory) -> None:
    assert classify("the busy street", directory.categories).category_code != "bus_service"


def test_ticket_type_from_words() -> None:
    assert infer_type("我要投诉物业", "help") == "complaint"
    assert infer_type("I want to report illegal dumping", "help") == "report"
    assert infer_type("请问社保怎么转", "help") == "inquiry"
    assert infer_type("路灯坏了", "help") == "help"
