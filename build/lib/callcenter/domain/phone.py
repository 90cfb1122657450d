"""Phone numbers, normalised to E.164 so that one person is one citizen.

``13800000000``, ``+86 138 0000 0000`` and ``008613800000000`` are all
``+8613800000000``.
"""

from __future__ import annotations

import phonenumbers

from callcenter.domain.errors import InvalidInput


def normalize_phone(raw: str, region: str = "CN") -> str:
    """Return the E.164 form of ``raw`` or raise :class:`InvalidInput`."""
    text = (raw or "").strip()
    if not text or len(text) > 40:
        raise InvalidInput("invalid_phone", number=text[:40])
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("invalid_phone", number=text) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidInput("invalid_phone", number=text)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """Whether SMS can reach this number (mobile, or of a type that may be mobile)."""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(parsed)
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def last_four(e164: str | None) -> str:
    return (e164 or "")[-4:]
