"""SMS segment counting and shortening (callcenter.domain.segments), and per-sender pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.domain.pacing import SendPacer
from callcenter.domain.segments import GSM7, UCS2, count_segments, encoding_of, fit

HAN = "路"  # one Chinese character, one UTF-16 code unit
EMOJI = "😀"  # outside the BMP: a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (GSM7, 0, 0)),
        ("a" * 160, (GSM7, 160, 1)),
        ("a" * 161, (GSM7, 161, 2)),
        ("a" * 306, (GSM7, 306, 2)),
        ("a" * 307, (GSM7, 307, 3)),
        (HAN * 70, (UCS2, 70, 1)),
        (HAN * 71, (UCS2, 71, 2)),
        (HAN * 134, (UCS2, 134, 2)),
        (HAN * 135, (UCS2, 135, 3)),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", (GSM7, 42, 1)),
    ],
)
def test_single_and_concatenated_limits(text: str, expected: tuple[str, int, int]) -> None:
    assert count_segments(text) == expected


def test_chinese_text_is_70_single_and_67_per_part() -> None:
    assert count_segments("您的工单" + HAN * 66).segments == 1  # exactly 70
    assert count_segments("您的工单" + HAN * 67).segments == 2  # 71
    assert count_segments(HAN * 67 * 3).segments == 3
    assert count_segments(HAN * (67 * 3 + 1)).segments == 4


def test_extension_characters_cost_two_septets() -> None:
    for ch in "€[]{}^~|\\\f":
        assert encoding_of(ch) == GSM7, repr(ch)
        assert count_segments(ch) == (GSM7, 2, 1)
    assert count_segments("€" * 80) == (GSM7, 160, 1)
    assert count_segments("€" * 80 + "a") == (GSM7, 161, 2)
    # an escape sequence is not split between parts: 152 plain septets leave one septet,
    # so the euro sign moves to the second part
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == (GSM7, 306, 3)
    assert count_segments("a" * 151 + "€" + "a" * 153) == (GSM7, 306, 2)


def test_one_character_outside_gsm_makes_the_whole_text_ucs2() -> None:
    assert count_segments("a" * 100) == (GSM7, 100, 1)
    assert count_segments("a" * 100 + "…") == (UCS2, 101, 2)
    assert count_segments("Your ticket 20261127-0042 was closed" + HAN).encoding == UCS2
    assert encoding_of("ç") == UCS2  # only the capital Ç is in the GSM alphabet
    assert encoding_of("`") == UCS2


def test_emoji_cost_two_code_units_and_are_not_split() -> None:
    assert count_segments(EMOJI) == (UCS2, 2, 1)
    assert count_segments(EMOJI * 35) == (UCS2, 70, 1)
    assert count_segments(EMOJI * 35 + "a") == (UCS2, 71, 2)
    # 66 units then an emoji: it does not fit in the first part's last unit
    assert count_segments(HAN * 66 + EMOJI + HAN * 66) == (UCS2, 134, 3)
    assert count_segments(HAN * 65 + EMOJI + HAN * 67) == (UCS2, 134, 2)


def test_fit_leaves_short_texts_alone() -> None:
    assert fit(HAN * 70, 1) == HAN * 70
    assert fit("a" * 160, 1) == "a" * 160
    assert fit("", 1) == ""


def test_fit_shortens_chinese_to_the_budget() -> None:
    text = "您的工单已办结。" + HAN * 200
    one = fit(text, 1)
    assert one.endswith("…") and len(one) == 70 and count_segments(one).segments == 1
    assert text.startswith(one[:-1])
    two = fit(text, 2)
    assert len(two) == 134 and count_segments(two).segments == 2


def test_fit_keeps_gsm_texts_gsm() -> None:
    text = "Your case was closed. " + "The department answered at length. " * 20
    short = fit(text, 1)
    assert short.endswith("...") and count_segments(short) == (GSM7, 160, 1)
    assert fit(text, 1, suffix=" [more]").endswith(" [more]")


def test_fit_never_breaks_surrogate_pairs_or_joined_emoji() -> None:
    text = HAN * 67 + EMOJI * 10
    short = fit(text, 1)
    assert count_segments(short).segments == 1
    short.encode("utf-8")  # a lone surrogate would not encode
    family = "👨\u200d👩\u200d👧"
    # 65 + 2 + 1 units would leave "man + joiner" before the suffix: the joiner goes
    assert fit(HAN * 65 + family, 1) == HAN * 65 + "👨…"


def test_fit_refuses_a_zero_budget() -> None:
    with pytest.raises(ValueError):
        fit("x", 0)


@given(st.text(max_size=600), st.integers(min_value=1, max_value=5))
def test_fit_always_fits_and_keeps_a_prefix(text: str, budget: int) -> None:
    short = fit(text, budget)
    assert count_segments(short).segments <= budget
    if short != text:
        kept = short.removesuffix("…").removesuffix("...")
        assert text.startswith(kept)


@given(st.text(max_size=400))
def test_segments_grow_with_the_text(text: str) -> None:
    assert count_segments(text).segments <= count_segments(text + "x").segments


T = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_the_pacer_spaces_sends_per_sender() -> None:
    pacer = SendPacer(1.0)
    assert pacer.reserve("+15550001", 3, T) == 0  # a three-segment message
    assert pacer.reserve("+15550001", 1, T) == 3.0  # next one in three seconds
    assert pacer.reserve("+15550002", 1, T) == 0  # another sender is not held up
    assert pacer.reserve("+15550001", 1, T + timedelta(seconds=2)) == 1.0
    assert pacer.reserve("+15550001", 1, T + timedelta(seconds=3)) == 0
    pacer.hold("+15550002", 30, T)  # the provider said "retry after 30 s"
    assert pacer.reserve("+15550002", 1, T + timedelta(seconds=10)) == 20.0
    fast = SendPacer(10.0)
    assert fast.reserve("a", 1, T) == 0
    assert fast.reserve("a", 1, T) == pytest.approx(0.1)
