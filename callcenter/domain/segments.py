"""SMS segments: how many parts a text costs, and shortening to a budget.

A text that fits the GSM 03.38 alphabet is sent in GSM-7: 160 characters in
one part, 153 per part when concatenated; characters of the extension table
(``^{}\\[~]|€`` and form feed) cost two. Anything else (Chinese, emoji) goes in
UCS-2: 70 characters in one part, 67 per part; a character outside the Basic
Multilingual Plane (most emoji) takes two UTF-16 units.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def _units(text: str) -> tuple[str, int]:
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        return "GSM-7", sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
    return "UCS-2", sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def count_segments(text: str) -> Segments:
    encoding, units = _units(text)
    single, part = (160, 153) if encoding == "GSM-7" else (70, 67)
    if units <= single:
        return Segments(encoding, units, 1 if units else 0)
    return Segments(encoding, units, -(-units // part))


def capacity(encoding: str, segments: int) -> int:
    """Units that fit in ``segments`` parts."""
    single, part = (160, 153) if encoding == "GSM-7" else (70, 67)
    return single if segments <= 1 else part * segments


def fit(text: str, max_segments: int, suffix: str = "…") -> str:
    """``text`` shortened (keeping whole characters, ending in ``suffix``) to fit
    ``max_segments`` parts; unchanged when it already fits."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text).segments <= max_segments:
        return text
    encoding, _ = _units(text + suffix)
    limit = capacity(encoding, max_segments) - _units(suffix)[1]
    used = 0
    kept: list[str] = []
    for ch in text:
        cost = _units(ch)[1] if encoding == "GSM-7" else (2 if ord(ch) > 0xFFFF else 1)
        if used + cost > limit:
            break
        kept.append(ch)
        used += cost
    return "".join(kept).rstrip() + suffix
