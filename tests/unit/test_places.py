"""Places and categories heard with a recogniser's errors, against the demo city's gazetteer."""

from __future__ import annotations

import pytest

from callcenter.demo import CATEGORIES, city
from callcenter.domain.routing import Category, Department
from ivr.categories import sounds_like
from ivr.places import Gazetteer


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    departments = [
        Department(
            i, d["code"], d["kind"], d["name_zh"], d["name_en"], None, tuple(d.get("keywords", []))
        )
        for i, d in enumerate(city()["departments"])
    ]
    return Gazetteer(departments)


@pytest.mark.parametrize(
    ("heard", "name", "address"),
    [
        ("港湾路的路灯坏了三天了", "港湾路", "港湾路"),
        ("港弯路的路灯坏了", "港湾路", "港湾路"),  # a homophone
        ("我住在碼頭社區，楼下很吵", "码头社区", "码头社区"),  # traditional characters
        ("湖滨路上有个大坑", "湖滨路", "湖滨路"),  # the street, not the district 湖滨区
        ("The street light on Harbor Road is out", "Harbour Road", "Harbour Road"),
        ("a pothole on xincheng avenue near the school", "Xincheng Avenue", "Xincheng Avenue"),
        (
            "no water in Chunshiao community since Monday",
            "Chunxiao Community",
            "Chunxiao Community (春晓社区)",
        ),
    ],
)
def test_a_spoken_place_is_found_in_the_gazetteer(
    gazetteer: Gazetteer, heard: str, name: str, address: str
) -> None:
    place = gazetteer.find(heard)
    assert place is not None and (place.name, place.address) == (name, address)


@pytest.mark.parametrize(
    "heard", ["路灯坏了", "我家楼下天天很吵", "my neighbour is noisy", "the road is broken", ""]
)
def test_no_place_is_made_up(gazetteer: Gazetteer, heard: str) -> None:
    assert gazetteer.find(heard) is None


def categories() -> list[Category]:
    return [
        Category(
            i,
            c["code"],
            c["name_zh"],
            c["name_en"],
            c["department_kind"],
            keywords_zh=tuple(c["keywords_zh"]),
            keywords_en=tuple(c["keywords_en"]),
        )
        for i, c in enumerate(CATEGORIES)
    ]


@pytest.mark.parametrize(
    ("heard", "code"),
    [
        ("鲁灯坏了好几天", "street_light"),  # lu deng
        ("小区停睡了", "water_outage"),  # ting shui
        ("there is a pot hole near the school", "road_damage"),
        ("the street lite is out", "street_light"),
        ("a pipe is leaking under the road", "water_leak"),  # another ending
        ("路更坏了，晚上很黑", "street_light"),  # lu geng: one syllable, one final alike
    ],
)
def test_keywords_that_sound_alike_name_the_category(heard: str, code: str) -> None:
    assert sounds_like(heard, categories()).category_code == code


def test_nothing_alike_names_no_category() -> None:
    assert sounds_like("我想问一下办事时间", categories()).category_code is None
