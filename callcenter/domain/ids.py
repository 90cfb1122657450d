"""Numbers that arrive as text: row ids in paths, queries, forms, topics and button data.

Python's ``str.isdigit()`` is true for ``"²"`` (which ``int()`` refuses) and
for ``"१"`` (Devanagari one, which ``int()`` reads as 1), and a 20-digit id
overflows the 64-bit integers both databases store. Every id read from text
goes through :func:`parse_id`, so that such input is a clear 400 or 404,
never a server error and never another row.
"""

from __future__ import annotations

import re

from callcenter.domain.errors import InvalidInput

MAX_ID = 2**63 - 1  # the largest BIGINT of SQLite and PostgreSQL
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def ascii_int(text: str | None, *, maximum: int = MAX_ID) -> int | None:
    """``text`` as a whole number of ASCII digits from 0 to ``maximum``, or None."""
    if text is None or not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_id(text: str | None) -> int | None:
    """A row id (1 to :data:`MAX_ID`, ASCII digits only) from text, or None."""
    value = ascii_int(text)
    return value if value is not None and value >= 1 else None


def require_id(text: str | None, *, field: str) -> int:
    """A row id from text, or :class:`InvalidInput` ``invalid_field`` naming ``field``."""
    value = parse_id(text)
    if value is None:
        raise InvalidInput("invalid_field", field=field)
    return value
