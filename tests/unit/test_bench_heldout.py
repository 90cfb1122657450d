"""The speech benchmark's held-out complaints are in the tree, labelled in the demo city's terms."""

from __future__ import annotations

import pytest

from bench.stt import load
from callcenter.demo import CATEGORIES, DISTRICTS

PLACES = {
    name
    for _code, district_zh, district_en, _lon, streets in DISTRICTS
    for name in (
        district_zh,
        district_en,
        *(n for _c, zh, en, keywords, _communities in streets for n in (zh, en, *keywords)),
        *(n for *_, communities in streets for community in communities for n in community),
    )
}


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_held_out_set_parses_with_known_categories_and_places(locale: str) -> None:
    rows = load(locale)

    assert len(rows) >= 40
    assert {category for category, _, _ in rows} - {c["code"] for c in CATEGORIES} == set()
    assert {place for _, place, _ in rows if place} - PLACES == set()
    assert any(place is None for _, place, _ in rows)
    assert len({text for *_, text in rows}) == len(rows)


def test_the_chinese_set_names_its_places_as_written() -> None:
    rows = load("zh-CN")

    assert [text for _, place, text in rows if place and place not in text] == []
