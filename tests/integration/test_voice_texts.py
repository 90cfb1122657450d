"""Every text the IVR can say, as the caller will hear it: Mandarin phonemes, numbers in words.

espeak-ng's ``-x`` prints the phonemes it would speak; ``(en)`` in them means
it switched to English for a stretch (what its ``cmn`` voice does with every
Chinese character in Debian 12). The texts are the zh-CN catalog's voice
texts filled with every value the flows put into them: the demo city's
categories, departments and ticket states, ticket numbers, dates, counts.
"""

from __future__ import annotations

import re
import shutil
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.bootstrap import build_runtime
from callcenter.clock import ManualClock
from callcenter.demo import CATEGORIES, CITY_DEPARTMENTS, DISTRICT_DEPARTMENTS, DISTRICTS
from callcenter.runtime import Runtime
from ivr.spoken import spoken_code, spoken_date, spoken_number, spoken_phone
from ivr.tts import phonemes
from tests.conftest import T0, make_settings

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng (Debian) is needed to make speech"
)


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    return build_runtime(
        make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"), clock=ManualClock(T0)
    )


def values(rt: Runtime, locale: str) -> dict[str, list[str]]:
    departments = [zh for _, _, zh, _ in CITY_DEPARTMENTS]
    departments += [d[1] + zh for d in DISTRICTS for _, _, zh, _ in DISTRICT_DEPARTMENTS]
    return {
        "hotline": [spoken_code(rt, rt.settings.hotline_number, locale)],
        "number": [
            spoken_code(rt, "20261127-0042", locale),
            spoken_code(rt, "2026112799", locale),
            spoken_phone(rt, "+8613800000000", locale),
        ],
        "state": [
            text for key, text in rt.catalog.texts[locale].items() if key.startswith("state.")
        ],
        "department": departments,
        "due": [
            spoken_date(rt, datetime(2026, 12, 15, 2, tzinfo=UTC), locale),
            spoken_date(rt, datetime(2027, 1, 11, 2, tzinfo=UTC), locale),
        ],
        "category": [c["name_zh"] for c in CATEGORIES],
        "digit": [spoken_number(d, locale) for d in range(10)],
        "position": [spoken_number(n, locale) for n in (1, 3, 12, 40)],
        "minutes": [spoken_number(n, locale) for n in (3, 15, 120)],
        "text": ["港湾路的路灯坏了三天了"],  # a ticket title (shown, not said)
    }


def voice_texts(rt: Runtime) -> Iterator[tuple[str, str]]:
    filled = values(rt, "zh-CN")
    for key, template in rt.catalog.texts["zh-CN"].items():
        if not key.startswith("voice."):
            continue
        if not re.search(r"[\u4e00-\u9fff]", template):
            assert key == "voice.language_en"  # said in English: the flow fixes its locale
            continue
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if not names:
            yield key, template
            continue
        for name in names:
            assert name in filled, f"{key}: no test values for {{{name}}}"
        longest = max(len(filled[n]) for n in names)
        for i in range(longest):
            params = {n: filled[n][i % len(filled[n])] for n in names}
            yield key, template.format(**params)


def test_every_chinese_prompt_is_spoken_in_mandarin(rt: Runtime) -> None:
    by_key: dict[str, list[str]] = {}
    for key, text in voice_texts(rt):
        by_key.setdefault(key, []).append(text)
    assert sum(len(texts) for texts in by_key.values()) > 80
    for key, texts in by_key.items():
        heard = phonemes("\n".join(texts), "zh-CN")  # one line a text
        lines = [line for line in heard.splitlines() if line.strip()]
        assert "(en)" not in heard, f"{key}: {texts} is read partly as English: {heard}"
        assert all(re.search(r"[a-zA-Z@]+[1-5]{2,3}", line) for line in lines), heard


def test_numbers_dates_and_codes_are_said_as_people_say_them(rt: Runtime) -> None:
    assert spoken_code(rt, "20261127-0042", "zh-CN") == "二零二六，幺幺二七，杠，零零四二"
    assert spoken_code(rt, "20261127-0042", "en") == (
        "two zero two six, one one two seven, dash, zero zero four two"
    )
    assert spoken_phone(rt, "+8613800000000", "zh-CN") == "幺三八，零零零零，零零零零"
    december = datetime(2026, 12, 15, 2, tzinfo=UTC)  # the clock's year: no year said
    assert spoken_date(rt, december, "zh-CN") == "十二月十五日"
    assert spoken_date(rt, december, "en") == "December fifteenth"
    january = datetime(2027, 1, 5, 2, tzinfo=UTC)
    assert spoken_date(rt, january, "zh-CN") == "二零二七年一月五日"
    assert spoken_date(rt, january, "en") == "January fifth, twenty twenty-seven"
    assert spoken_number(12, "zh-CN") == "十二" and spoken_number(42, "en") == "forty-two"
    # the voice says what is left in figures as words ("press 2"), and never a figure itself
    assert "t'u:" in phonemes("For English, press 2.", "en")
    assert "'@r51" in phonemes("中文服务请按2。", "zh-CN")
