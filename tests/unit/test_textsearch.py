"""The pairs of characters the ticket text search is indexed and looked up by."""

from __future__ import annotations

from callcenter.domain.textsearch import narrowest, pairs, query_terms, ticket_terms


def pair(text: str) -> int:
    return (ord(text[0]) << 21) | ord(text[1])


def test_a_text_holds_the_pairs_of_every_part_of_it() -> None:
    text = "荷花路学校门口的井盖松动了, Main St."
    for start in range(len(text)):
        for end in range(start + 2, len(text) + 1):
            assert pairs(text[start:end]) <= pairs(text)
    assert pairs("井盖") == {pair("井盖")}
    assert pairs("井") == set()


def test_latin_letters_are_folded_and_nothing_else() -> None:
    assert pairs("AbC") == pairs("abc") == {pair("ab"), pair("bc")}
    assert pairs("ÄÖ") != pairs("äö")  # SQLite's LIKE tells them apart: so must the pairs


def test_each_field_alone() -> None:
    assert ticket_terms(["井盖", None, "路口"]) == {pair("井盖"), pair("路口")}


def test_what_cannot_narrow_a_search() -> None:
    assert query_terms("井") is None
    assert query_terms("%井_") is None  # the wildcards are not searched for
    assert query_terms("a\\b") is None
    assert query_terms("井盖井盖") == [pair("井盖"), pair("盖井")]


def test_the_rarest_pair_and_the_rarest_apart_from_it() -> None:
    terms = query_terms("荷花路学校门口")
    assert terms is not None
    #       荷花    花路    路学    学校    校门    门口
    counts = [900, 2000, 1500, 1500, 1500, 3000]
    assert narrowest(terms, counts) == [pair("荷花"), pair("校门")]  # the farthest of equals
    capped = [20_000] * 6  # all common: the farthest apart
    assert narrowest(terms, capped) == [pair("荷花"), pair("门口")]
    assert narrowest(terms, [5, 0, 9, 9, 9, 9]) == [pair("花路")]  # none holds it
    assert narrowest(terms[:1], [7]) == [pair("荷花")]
