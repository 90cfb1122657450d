"""Numbers and dates as a caller should hear them: digit by digit, in their language.

"20261127-0042" is read "two zero two six one one two seven, dash, zero zero
four two" (or 二零二六一一二七 杠 零零四二), never "twenty million...". The
words come from the catalogs (``voice.digits``, ``voice.dash``, ``voice.date``).
"""

from __future__ import annotations

from datetime import datetime

from callcenter.runtime import Runtime


def spoken_digits(rt: Runtime, text: str, locale: str) -> str:
    words = rt.text("voice.digits", locale).split()
    out: list[str] = []
    for ch in text:
        if ch.isdigit():
            out.append(words[int(ch)])
        elif ch == "-":
            out.append(rt.text("voice.dash", locale).strip())
        elif ch == "*":
            out.append(rt.text("voice.star", locale))
        elif ch == "#":
            out.append(rt.text("voice.hash", locale))
        elif ch == "+":
            continue
    return " ".join(out)


def spoken_date(rt: Runtime, when: datetime | None, locale: str) -> str:
    if when is None:
        return ""
    local = rt.local(when)
    return rt.text(
        "voice.date",
        locale,
        year=spoken_digits(rt, f"{local.year:04d}", locale),
        month=spoken_digits(rt, f"{local.month:02d}", locale),
        day=spoken_digits(rt, f"{local.day:02d}", locale),
    )
