import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.domain.audit import GENESIS_HASH, chain_hash, first_broken_link
from callcenter.domain.errors import InvalidInput
from callcenter.domain.phone import is_mobile, normalize_phone
from callcenter.i18n import Catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "raw",
    ["13800000000", "+86 138 0000 0000", "008613800000000", "+86-138-0000-0000", " 138 0000 0000 "],
)
def test_one_number_many_spellings(raw: str) -> None:
    assert normalize_phone(raw) == "+8613800000000"


@pytest.mark.parametrize("raw", ["", "abc", "12", "+86", "1" * 50, "+86 1"])
def test_unusable_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw)
    assert caught.value.code == "invalid_phone"


def test_other_regions_and_mobiles() -> None:
    assert normalize_phone("+1 415 555 0100") == "+14155550100"
    assert normalize_phone("(415) 555-0100", "US") == "+14155550100"
    assert is_mobile("+8613800000000")
    assert not is_mobile("+861085550000")  # a Beijing landline


def _chain(n: int) -> list[dict[str, object]]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        event: dict[str, object] = {
            "seq": seq,
            "at": datetime(2026, 1, 1, tzinfo=UTC),
            "actor_id": 1,
            "actor_role": "agent",
            "actor_name": "a",
            "entity_type": "ticket",
            "entity_id": 1,
            "action": "x",
            "before": {"state": "new"},
            "after": {"state": "dispatched"},
            "details": None,
        }
        event["prev_hash"] = prev
        event["hash"] = prev = chain_hash(prev, event)
        events.append(event)
    return events


def test_the_chain_finds_the_first_broken_link() -> None:
    events = _chain(5)
    assert first_broken_link(events) is None
    events[2]["after"] = {"state": "closed"}
    broken = first_broken_link(events)
    assert broken is not None and (broken.seq, broken.reason) == (3, "hash")
    events = _chain(5)
    del events[1]
    broken = first_broken_link(events)
    assert broken is not None and (broken.seq, broken.reason) == (2, "gap")
    events = _chain(5)
    events[3]["prev_hash"] = events[1]["hash"]
    broken = first_broken_link(events)
    assert broken is not None and broken.seq == 4


def test_both_languages_have_every_text() -> None:
    catalog = Catalog.core()
    assert catalog.missing() == {}
    for folder in [*(ROOT / "channels").glob("*/strings"), *(ROOT / "agent_ui").rglob("strings")]:
        extra = Catalog()
        extra.load_dir(folder)
        assert extra.missing() == {}, folder


def test_every_error_code_raised_in_the_code_has_a_message() -> None:
    catalog = Catalog.core()
    pattern = re.compile(
        r"(?:InvalidInput|Forbidden|NotFound|Conflict|Unauthenticated|HotlineError|ChannelNotReady"
        r"|RateLimited)"
        r"\(\s*\"([a-z_]+)\""
    )
    codes = set()
    folders = ("callcenter", "channels", "agent_ui")
    for path in [f for folder in folders for f in (ROOT / folder).rglob("*.py")]:
        codes |= set(pattern.findall(path.read_text("utf-8")))
    assert codes, "the pattern found no error codes"
    missing = sorted(c for c in codes if not catalog.has(f"errors.{c}"))
    assert missing == []


def test_placeholders_agree_between_languages() -> None:
    catalog = Catalog.core()
    en, zh = catalog.texts["en"], catalog.texts["zh-CN"]
    for key, text in en.items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", zh[key])), key


def test_each_catalog_file_exists_in_both_languages() -> None:
    folder = ROOT / "callcenter/i18n"
    assert {p.name for p in (folder / "en").glob("*.json")} == {
        p.name for p in (folder / "zh-CN").glob("*.json")
    }
    for path in (folder / "en").glob("*.json"):
        json.loads(path.read_text("utf-8"))


def test_locale_negotiation() -> None:
    catalog = Catalog("zh-CN")
    assert catalog.negotiate("en-US,en;q=0.9") == "en"
    assert catalog.negotiate("fr-FR, en;q=0.5, zh;q=0.8") == "zh-CN"
    assert catalog.negotiate("de") == "zh-CN"
    assert catalog.negotiate(None) == "zh-CN"
    assert Catalog.core("en").text("state.new", "zh-TW") == "待派单"
    assert Catalog.core("en").text("state.new") == "New"
