"""Ticket text search by pairs of characters.

A search for text inside a ticket is ``LIKE '%text%'`` over its title, description and
address; across a year of a city's tickets that reads every row. Most Chinese search
words are two characters, too short for a trigram index (pg_trgm, FTS5's trigram
tokenizer), so each ticket's text is kept as the set of its pairs of neighbouring
characters (``ticket_terms``): a text that contains the searched words contains every
pair of them. The search takes the tickets holding two of its pairs (the rarest, see
:func:`narrowest`) and confirms each with the same ``LIKE`` as before, so it finds
exactly what the ``LIKE`` alone would.

Letters A-Z are folded to a-z (SQLite's ``LIKE`` ignores their case, PostgreSQL's does
not: the pairs serve both, the ``LIKE`` decides). A pair is one integer: the first
character's code point shifted left by 21 bits (code points need 21), plus the second's.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from itertools import pairwise

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def pairs(text: str) -> set[int]:
    """The pairs of neighbouring characters of ``text``, A-Z folded to a-z."""
    folded = text.translate(_ASCII_LOWER)
    return {(ord(a) << 21) | ord(b) for a, b in pairwise(folded)}


def ticket_terms(texts: Iterable[str | None]) -> set[int]:
    """The pairs of a ticket's searched texts (each field alone: no pair spans two)."""
    terms: set[int] = set()
    for text in texts:
        if text:
            terms |= pairs(text)
    return terms


def search_pattern(q: str) -> str:
    """What a search looks for: the text without ``LIKE``'s wildcards."""
    return q.replace("%", "").replace("_", "")


def query_terms(q: str) -> list[int] | None:
    """The pairs every ticket containing ``q`` holds, in the order they first occur in
    it; None when they cannot narrow the search: one character has no pair, and
    PostgreSQL's ``LIKE`` reads a backslash as an escape (so the text it matches is not
    ``q``'s characters)."""
    text = search_pattern(q)
    if "\\" in text or len(text) < 2:
        return None
    folded = text.translate(_ASCII_LOWER)
    return list(dict.fromkeys((ord(a) << 21) | ord(b) for a, b in pairwise(folded)))


def narrowest(terms: list[int], counts: list[int]) -> list[int]:
    """The (at most) two pairs to look up, given how many tickets hold each (counted up to
    a cap): the rarest, and the rarest of those that do not overlap it, the farthest
    from it among equals. Two narrow a search enough for ``LIKE`` to confirm the few
    tickets left; reading every pair's tickets would cost more than it saves."""
    order = sorted(range(len(terms)), key=lambda i: (counts[i], i))
    first = order[0]
    if len(terms) == 1 or counts[first] == 0:
        return [terms[first]]
    apart = [i for i in order[1:] if abs(i - first) >= 2] or order[1:]
    second = min(apart, key=lambda i: (counts[i], -abs(i - first)))
    return [terms[first], terms[second]]
