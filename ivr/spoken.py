"""Numbers, dates and codes as a person says them on the phone, in each language.

- counts and positions are words: "three", "forty-two" (num2words); 三, 四十二 (cn2an);
- dates are the calendar's words: "Tuesday, December fifteenth" or
  "December fifteenth, twenty twenty-seven" when the year is not this one;
  十二月十五日 (二〇二七年十二月十五日 in another year);
- ticket numbers and phone numbers are read digit by digit in groups, with a
  pause between groups, as an agent reads them out: "20261127-0042" is
  "two zero two six, one one two seven, dash, zero zero four two" and
  二零二六，幺幺二七，杠，零零四二 — on the phone a Chinese speaker says 幺
  for the digit one in a code, so that it cannot be heard as 七.

The words that are no numbers (dash, star, hash) come from the catalogs
(``voice.dash``, ``voice.star``, ``voice.hash``).
"""

from __future__ import annotations

import re
from datetime import date, datetime

import cn2an
import phonenumbers
from num2words import num2words

from callcenter.runtime import Runtime

ZH_CODE_DIGITS = "零幺二三四五六七八九"  # digits of a code read on the phone
ZH_DIGITS = "零一二三四五六七八九"
EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_RUN = re.compile(r"\d+")


def spoken_number(value: int, locale: str) -> str:
    """A count or a position in words: "forty-two", 四十二."""
    if locale == "zh-CN":
        return str(cn2an.an2cn(int(value)))
    return str(num2words(int(value)))


def _group(digits: str, locale: str) -> str:
    if locale == "zh-CN":
        return "".join(ZH_CODE_DIGITS[int(d)] for d in digits)
    return " ".join(EN_DIGITS[int(d)] for d in digits)


def _pause(locale: str) -> str:
    return "，" if locale == "zh-CN" else ", "


def _groups(digits: str, size: int = 4) -> list[str]:
    """Groups of ``size`` from the left; a short remainder joins the last group."""
    parts = [digits[i : i + size] for i in range(0, len(digits), size)]
    if len(parts) > 1 and len(parts[-1]) < 2:
        last = parts.pop()
        parts[-1] += last
    return parts


def spoken_code(rt: Runtime, text: str, locale: str) -> str:
    """A ticket number or any code typed on the keypad, digit by digit in groups of four.

    A dash is said ("dash", 杠); ``*`` and ``#`` are named; anything else is left out.
    """
    pieces: list[str] = []
    for part in re.split(r"([-*#])", text):
        if not part:
            continue
        if part == "-":
            pieces.append(rt.text("voice.dash", locale).strip())
        elif part == "*":
            pieces.append(rt.text("voice.star", locale))
        elif part == "#":
            pieces.append(rt.text("voice.hash", locale))
        else:
            digits = "".join(ch for ch in part if ch.isdigit())
            pieces.extend(_group(g, locale) for g in _groups(digits))
    return _pause(locale).join(pieces)


def spoken_phone(rt: Runtime, number: str, locale: str) -> str:
    """A phone number in the groups it is written in (138 0000 0000; 202 555 0100)."""
    try:
        parsed = phonenumbers.parse(number, rt.settings.default_region)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = number
    groups = [g for g in re.split(r"[^0-9]+", national) if g]
    if len(groups) <= 1:
        return spoken_code(rt, number.lstrip("+"), locale)
    return _pause(locale).join(_group(g, locale) for g in groups)


def spoken_date(rt: Runtime, when: datetime | date | None, locale: str) -> str:
    """A day as people say it; the year only when it is not the current one."""
    if when is None:
        return ""
    day = rt.local(when).date() if isinstance(when, datetime) else when
    this_year = rt.local(rt.clock.now()).year
    if locale == "zh-CN":
        text = f"{cn2an.an2cn(day.month)}月{cn2an.an2cn(day.day)}日"
        if day.year != this_year:
            year = "".join(ZH_DIGITS[int(d)] for d in f"{day.year:04d}")
            text = f"{year}年{text}"
        return text
    text = f"{EN_MONTHS[day.month - 1]} {num2words(day.day, to='ordinal')}"
    if day.year != this_year:
        text += f", {num2words(day.year, to='year')}"
    return text


def numbers_to_words(text: str, locale: str) -> str:
    """Arabic numerals left in a text (a key to press, a count) as words, for the voice."""

    def one(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) > 4:  # a code, not an amount
            return _group(run, locale) if locale == "zh-CN" else " " + _group(run, locale) + " "
        return spoken_number(int(run), locale) if locale == "zh-CN" else f" {num2words(int(run))} "

    spoken = re.sub(r"\s{2,}", " ", _RUN.sub(one, text))
    return re.sub(r"\s+([,.;:?!])", r"\1", spoken).strip()
