"""The staff password policy: length, not the username, not a common password."""

from __future__ import annotations

import pytest

from callcenter.domain.errors import InvalidInput
from callcenter.domain.passwords import MIN_LENGTH, check_password, is_common


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short1!", "password_too_short"),
        ("x" * 257, "password_too_long"),
        ("password123", "password_common"),  # in zxcvbn's list as it is
        ("Qwertyuiop2024!", "password_common"),  # a common one with digits and a mark added
        ("iloveyou12", "password_common"),
        ("aaaaaaaaaaaa", "password_common"),  # too few different characters
        ("12345678901", "password_guessable"),
        ("abcdefghijkl", "password_guessable"),
        ("wang.fang-2026", "password_has_username"),
    ],
)
def test_refused(password: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password(password, username="wang.fang")
    assert refused.value.code == code


def test_accepted() -> None:
    for password in ("湖畔 路灯 三只猫 晚安", "correct horse battery staple", "Tq7#vL9p!mZ2"):
        assert check_password(password, username="wang.fang") == password
    assert len("Tq7#vL9p!m") == MIN_LENGTH and check_password("Tq7#vL9p!m") == "Tq7#vL9p!m"


def test_the_list_is_zxcvbns() -> None:
    assert is_common("123456") and is_common("PASSWORD") and is_common("dragon")
    assert not is_common("湖畔路灯三只猫")
