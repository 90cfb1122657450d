"""SMS segments: how many messages a text costs, and shortening it to a budget.

An SMS carries 140 bytes. A text made only of characters of the GSM 03.38
alphabet is packed in 7-bit septets (GSM-7): 160 per message. Anything else
(Chinese, emoji, "…") sends the whole text as UCS-2: 70 UTF-16 code units per
message. A longer text is split into parts that each lose room to the
concatenation header: 153 septets or 67 code units per part. Characters of
the GSM extension table (``€ [ ] { } ^ ~ | \\`` and form feed) cost two
septets, emoji and other characters outside the Basic Multilingual Plane cost
two UTF-16 code units, and neither is cut between two parts, as phones and
providers (Twilio among them) split them.

The module is pure: the outbox uses it to keep a text within a configured
segment budget, and templates can be checked with it in tests.
"""

from __future__ import annotations

from typing import NamedTuple

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet, in code order (0x1B, the escape to the extension table,
# is not a character of its own)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# the extension table: each costs the escape septet plus its own
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}


class Segments(NamedTuple):
    """What a text costs: ``(encoding, units, segments)``.

    ``units`` is the length in the encoding's own units: septets for GSM-7 (an
    extension character counts two), UTF-16 code units for UCS-2 (an emoji
    counts two). ``segments`` is the number of messages billed (0 for no text).
    """

    encoding: str
    units: int
    segments: int


def encoding_of(text: str) -> str:
    """GSM-7 when every character is in the GSM alphabet (with its extension), else UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return GSM7
    return UCS2


def _cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def count_segments(text: str) -> Segments:
    """The encoding, length in units and number of segments of ``text``."""
    encoding = encoding_of(text)
    costs = [_cost(ch, encoding) for ch in text]
    units = sum(costs)
    if units <= SINGLE[encoding]:
        return Segments(encoding, units, 1 if units else 0)
    # concatenated: fill parts greedily, never splitting a character's units
    per_part = PART[encoding]
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return Segments(encoding, units, parts)


def capacity(encoding: str, segments: int) -> int:
    """Units that fit in ``segments`` parts (an upper bound: a two-unit character is not
    split between parts, so a part may carry one unit less)."""
    return SINGLE[encoding] if segments <= 1 else PART[encoding] * segments


# characters that must not end a shortened text: they join or modify what follows or
# precedes them, and alone they show as a stray box or a broken emoji
_DANGLING = frozenset("\u200d\ufe0e\ufe0f\u20e3")


def fit(text: str, max_segments: int, suffix: str = "…") -> str:
    """``text`` itself if it fits in ``max_segments``, else its longest prefix plus ``suffix``.

    The cut falls between characters, so surrogate pairs and GSM escape
    sequences are never broken, and it does not leave a zero-width joiner or
    variation selector dangling at the end. If the kept text is GSM-7 but the
    suffix is not (the default "…" is not in the GSM alphabet), "..." is used
    instead: one non-GSM character would switch the whole text to UCS-2 and
    more than halve what fits.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text).segments <= max_segments:
        return text

    def candidate(length: int) -> str:
        head = text[:length].rstrip()
        while head and head[-1] in _DANGLING:
            head = head[:-1].rstrip()
        tail = suffix
        if encoding_of(head) == GSM7 and encoding_of(suffix) != GSM7:
            tail = "..."
        return head + tail

    # the cost of prefix + suffix grows with the prefix: binary search the longest that fits
    low, high = 0, len(text) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if count_segments(candidate(middle)).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    result = candidate(low)
    if count_segments(result).segments > max_segments:  # only the suffix is left
        return fit(suffix, max_segments, suffix="") if suffix else ""
    return result
