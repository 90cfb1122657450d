from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.config import Limit, SlaSettings
from callcenter.domain.calendar import WorkCalendar
from callcenter.domain.sla import Light, SlaPolicy, worst

SH = ZoneInfo("Asia/Shanghai")
sla = SlaPolicy(WorkCalendar(), SlaSettings())


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_default_limits_follow_the_ticket_type() -> None:
    start = local(2026, 11, 23, 9, 0)  # Monday morning
    assert sla.deadline(start, sla.handle_limit("inquiry", "normal")) == local(2026, 11, 24, 17, 30)
    assert sla.deadline(start, sla.handle_limit("complaint", "normal")) == local(
        2026, 12, 11, 17, 30
    )
    assert sla.deadline(start, sla.sign_limit("normal")) == local(2026, 11, 23, 17, 30)


def test_urgent_tickets_count_clock_hours_even_on_weekends() -> None:
    start = local(2026, 11, 28, 22, 0)  # Saturday night
    assert sla.deadline(start, sla.sign_limit("urgent")) == local(2026, 11, 28, 22, 30)
    assert sla.deadline(start, sla.handle_limit("report", "urgent")) == local(2026, 11, 29, 22, 0)
    assert sla.extend(local(2026, 11, 29, 22, 0), 2, "urgent") == local(2026, 12, 1, 22, 0)


def test_limits_are_configuration() -> None:
    custom = SlaPolicy(
        WorkCalendar(),
        SlaSettings(
            handle={"inquiry": Limit(amount=3, unit="working_hours")},
            urgent_handle=Limit(amount=90, unit="minutes"),
        ),
    )
    start = local(2026, 11, 27, 16, 0)
    assert custom.deadline(start, custom.handle_limit("inquiry", "normal")) == local(
        2026, 11, 30, 10, 30
    )
    assert custom.deadline(start, custom.handle_limit("inquiry", "urgent")) == local(
        2026, 11, 27, 17, 30
    )


def test_extension_moves_by_working_days() -> None:
    assert sla.extend(local(2026, 11, 27, 16, 0), 1, "normal") == local(2026, 11, 30, 16, 0)


def test_lights_turn_yellow_at_75_percent_and_red_when_overdue() -> None:
    start = local(2026, 11, 23, 9, 0)
    deadline = sla.deadline(start, sla.handle_limit("inquiry", "normal"))  # 14 working hours
    at = lambda hours: sla.calendar.add(start, timedelta(hours=hours))  # noqa: E731
    assert sla.light(start, deadline, at(10.4), working=True) is Light.GREEN
    assert sla.light(start, deadline, at(10.5), working=True) is Light.YELLOW
    assert sla.light(start, deadline, deadline - timedelta(minutes=1), working=True) is Light.YELLOW
    assert sla.light(start, deadline, deadline, working=True) is Light.RED
    # a night does not move the light: no working time passes
    evening = local(2026, 11, 23, 17, 30)
    night = local(2026, 11, 24, 6, 0)
    assert sla.light(start, deadline, evening, working=True) == sla.light(
        start, deadline, night, working=True
    )


def test_worst_light() -> None:
    assert worst(Light.GREEN, None, Light.YELLOW) is Light.YELLOW
    assert worst(Light.RED, Light.YELLOW) is Light.RED
    assert worst(None, None) is None


def test_a_category_may_set_its_own_handling_time() -> None:
    own = SlaPolicy(WorkCalendar(), SlaSettings(), category_days={7: 1})
    start = local(2026, 11, 23, 9, 0)
    assert own.deadline(start, own.handle_limit("complaint", "normal", 7)) == local(
        2026, 11, 23, 17, 30
    )
    assert own.deadline(start, own.handle_limit("complaint", "normal", 8)) == local(
        2026, 12, 11, 17, 30
    )
    assert own.handle_limit("complaint", "urgent", 7) == own.settings.urgent_handle
