"""Texts an administrator rewrites: variables checked, segments counted with values."""

from __future__ import annotations

import pytest

from callcenter.domain.errors import InvalidInput
from callcenter.domain.templates import check_template, sample_segments, variables


def test_variables() -> None:
    assert variables("工单{number}已转{department}，{due}前") == {"number", "department", "due"}
    assert variables("{{literal}} braces") == set()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("工单{number", "template_braces"),
        ("x}", "template_braces"),
        ("{ticket.id}", "unknown_variable"),
        ("", "missing_field"),
    ],
)
def test_refused(text: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_template(text, {"number"})
    assert refused.value.code == code


def test_segments_with_values_filled_in() -> None:
    short = sample_segments("[{hotline}] Case {number} is closed.")
    assert (short.encoding, short.segments) == ("GSM-7", 1)
    chinese = sample_segments("【{hotline}热线】工单{number}已办结，详情：{status_url}")
    assert chinese.encoding == "UCS-2" and chinese.segments == 2  # 82 units with the link
