from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.domain.calendar import WorkCalendar, parse_hours

SH = ZoneInfo("Asia/Shanghai")
cal = WorkCalendar()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_weekends_holidays_and_made_up_working_days_of_2026() -> None:
    assert cal.is_workday(date(2026, 11, 27))  # a Friday
    assert not cal.is_workday(date(2026, 11, 28))  # Saturday
    assert not cal.is_workday(date(2026, 10, 1))  # National Day
    assert not cal.is_workday(date(2026, 10, 7))
    assert cal.is_workday(date(2026, 10, 10))  # a Saturday made a working day (调休)
    assert cal.is_workday(date(2026, 9, 20))  # a Sunday made a working day
    assert not cal.is_workday(date(2026, 9, 25))  # Mid-Autumn Festival, a Friday
    assert cal.is_holiday(date(2026, 10, 1))
    assert not cal.is_holiday(date(2026, 11, 28))  # a plain weekend is not a holiday


def test_years_the_package_does_not_know_fall_back_to_weekdays_and_overrides_win() -> None:
    assert cal.is_workday(date(2027, 3, 3))  # Wednesday
    assert not cal.is_workday(date(2027, 3, 6))  # Saturday
    custom = WorkCalendar.from_settings(
        "Asia/Shanghai",
        ["09:00-17:00"],
        extra_holidays=["2027-03-03"],
        extra_workdays=["2027-03-06"],
    )
    assert not custom.is_workday(date(2027, 3, 3))
    assert custom.is_workday(date(2027, 3, 6))
    assert custom.is_holiday(date(2027, 3, 3))


def test_day_length_is_the_sum_of_the_working_spans() -> None:
    assert cal.day_length == timedelta(hours=7)
    assert WorkCalendar.from_settings(
        "UTC", ["08:30-12:00", "13:00-17:30"]
    ).day_length == timedelta(hours=8)


def test_adding_working_time_skips_lunch_nights_weekends_and_holidays() -> None:
    # Friday 16:00 + 2 working days (14 h): 1.5 h Friday, 7 h Monday, 5.5 h Tuesday
    assert cal.add_days(local(2026, 11, 27, 16, 0), 2) == local(2026, 12, 1, 16, 0)
    # 11:00 + 2 h crosses the lunch break
    assert cal.add(local(2026, 11, 26, 11, 0), timedelta(hours=2)) == local(2026, 11, 26, 14, 30)
    # Saturday night: the clock starts on Monday morning
    assert cal.add(local(2026, 11, 28, 22, 0), timedelta(hours=1)) == local(2026, 11, 30, 10, 0)
    # the last day before National Day: the clock jumps the whole holiday week
    assert cal.add_days(local(2026, 9, 30, 17, 0), 1) == local(2026, 10, 8, 17, 0)
    # and the made-up working Saturday counts
    assert cal.add_days(local(2026, 10, 9, 9, 0), 2) == local(2026, 10, 10, 17, 30)


def test_adding_zero_or_negative() -> None:
    start = local(2026, 11, 27, 10, 0)
    assert cal.add(start, timedelta()) == start
    with pytest.raises(ValueError):
        cal.add(start, timedelta(hours=-1))


def test_between_counts_only_working_time() -> None:
    assert cal.between(local(2026, 11, 27, 16, 0), local(2026, 12, 1, 16, 0)) == timedelta(hours=14)
    assert cal.between(local(2026, 11, 28, 9, 0), local(2026, 11, 29, 18, 0)) == timedelta()
    assert cal.between(local(2026, 11, 27, 12, 0), local(2026, 11, 27, 13, 30)) == timedelta()
    assert cal.between(local(2026, 11, 27, 12, 0), local(2026, 11, 27, 10, 0)) == timedelta()


def test_between_inverts_add() -> None:
    start = local(2026, 9, 18, 11, 17)
    for hours in (0.5, 3, 7, 19, 40, 70):
        end = cal.add(start, timedelta(hours=hours))
        assert cal.between(start, end) == timedelta(hours=hours)


def test_working_time_and_next_opening() -> None:
    assert cal.is_working_time(local(2026, 11, 27, 10, 0))
    assert not cal.is_working_time(local(2026, 11, 27, 12, 30))
    assert not cal.is_working_time(local(2026, 11, 28, 10, 0))
    assert cal.next_open(local(2026, 11, 27, 18, 0)) == local(2026, 11, 30, 9, 0)
    assert cal.next_open(local(2026, 11, 27, 10, 0)) == local(2026, 11, 27, 10, 0)
    assert cal.next_open(local(2026, 11, 27, 12, 15)) == local(2026, 11, 27, 13, 30)


def test_results_are_utc() -> None:
    assert cal.add(local(2026, 11, 27, 10, 0), timedelta(hours=1)).tzinfo == UTC


@pytest.mark.parametrize("spans", [["9-12"], ["12:00-09:00"], ["09:00-12:00", "11:00-13:00"], []])
def test_bad_working_hours_are_rejected(spans: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_hours(spans)
