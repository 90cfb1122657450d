from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.domain.quiet import QuietHours
from callcenter.domain.segments import count_segments, fit
from callcenter.domain.survey import AMBIGUOUS, Answer, parse_reply


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two
        ("€" * 81, "GSM-7", 2),
        ("路" * 70, "UCS-2", 1),
        ("路" * 71, "UCS-2", 2),
        ("路" * 134, "UCS-2", 2),
        ("路" * 135, "UCS-2", 3),
        ("a" * 69 + "路", "UCS-2", 1),  # one Chinese character turns the whole text to UCS-2
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segment_counts(text: str, encoding: str, segments: int) -> None:
    counted = count_segments(text)
    assert (counted.encoding, counted.segments) == (encoding, segments)


def test_fit_shortens_to_the_budget_and_keeps_short_texts() -> None:
    assert fit("路灯修好了", 1) == "路灯修好了"
    long = "已现场处理" * 40
    shortened = fit(long, 2)
    assert count_segments(shortened).segments == 2 and shortened.endswith("…")
    assert len(shortened) == 134
    assert count_segments(fit("😀" * 100, 1)).segments == 1


@given(st.text(max_size=600), st.integers(1, 5))
def test_fit_never_exceeds_the_budget(text: str, budget: int) -> None:
    assert count_segments(fit(text, budget)).segments <= budget


@pytest.mark.parametrize(
    ("reply", "score", "solved"),
    [
        ("5", 5, None),
        ("５", 5, None),
        ("２", 2, None),
        ("满意", 5, None),
        ("基本满意", 4, None),
        ("不满意", 1, None),
        ("非常不满意！！", 1, None),
        ("4 已解决", 4, True),
        ("3分，问题没解决", 3, False),
        ("不满意，没有解决", 1, False),
        ("已经解决了，谢谢，满意", 5, True),
        ("Very satisfied, solved", 5, True),
        ("dissatisfied. not solved", 1, False),
        ("3 yes", 3, True),
        ("2 no", 2, False),
        ("未解决", None, False),
        ("我给5分", 5, None),
        ("工单20261127-0042 打4分", 4, None),
    ],
)
def test_answers(reply: str, score: int | None, solved: bool | None) -> None:
    answer = parse_reply(reply)
    assert isinstance(answer, Answer)
    assert (answer.score, answer.solved) == (score, solved)


def test_the_ticket_number_names_the_survey() -> None:
    answer = parse_reply("20261127-0042：满意")
    assert (
        isinstance(answer, Answer) and answer.ticket_number == "20261127-0042" and answer.score == 5
    )


@pytest.mark.parametrize("reply", ["3 4", "满意 不满意", "1 满意", "已解决 没解决", "0", "9"])
def test_contradictions_are_ambiguous(reply: str) -> None:
    assert parse_reply(reply) is AMBIGUOUS


@pytest.mark.parametrize("reply", ["路灯又坏了", "谢谢", "hello", "13800000000", ""])
def test_other_texts_are_not_answers(reply: str) -> None:
    assert parse_reply(reply) is None


def test_unhappy() -> None:
    assert Answer(2, None).unhappy and Answer(5, False).unhappy
    assert not Answer(3, True).unhappy and not Answer(None, None).unhappy


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours.parse("21:00-08:00", "Asia/Shanghai")
    assert quiet is not None
    evening = datetime(2026, 11, 27, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    assert quiet.is_quiet(evening)
    assert quiet.next_allowed(evening) == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 08:00
    early = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)  # 07:00 next day local
    assert quiet.next_allowed(early) == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    noon = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    assert not quiet.is_quiet(noon) and quiet.next_allowed(noon) == noon
    assert QuietHours.parse("", "Asia/Shanghai") is None
    with pytest.raises(ValueError):
        QuietHours.parse("late", "Asia/Shanghai")
