"""The mediation's workflow table, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.domain.errors import Forbidden, IllegalStep, InvalidInput, VersionConflict
from callcenter.domain.mediation import (
    PARTY_STEPS,
    WORKFLOW,
    Mediation,
    MediationState,
    MediationStep,
    PartyStep,
    Who,
    Window,
    allowed_steps,
    check_party_step,
    is_decline,
    recording_allowed,
)

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
S, St = MediationState, MediationStep


def proposed(**kw: object) -> Mediation:
    values: dict = {
        "id": 1,
        "ticket_id": 9,
        "state": S.PROPOSED,
        "created_at": NOW,
        "mediator_id": 5,
    }
    values.update(kw)
    return Mediation(**values)


def scheduled(at: datetime | None = None) -> Mediation:
    m = proposed()
    m.take(
        St.SCHEDULE,
        who=Who.MEDIATOR,
        now=NOW,
        parties=2,
        scheduled_at=at or NOW + timedelta(days=2),
    )
    return m


def test_the_happy_path_goes_through_every_state_and_counts_versions() -> None:
    m = scheduled()
    assert m.state is S.SCHEDULED and m.version == 2
    at = m.scheduled_at
    assert at is not None
    m.take(St.START, who=Who.MEDIATOR, now=at - timedelta(minutes=5))
    assert m.state is S.IN_SESSION and m.started_at == at - timedelta(minutes=5)
    m.take(St.CONCLUDE, who=Who.MEDIATOR, now=at + timedelta(hours=1), outcome="agreement",
           agreement_text="甲方于月底前修好漏水的管道。")  # fmt: skip
    assert m.state is S.CONCLUDED and m.outcome == "agreement" and m.version == 4


@pytest.mark.parametrize(
    ("state", "who", "expected"),
    [
        (S.PROPOSED, Who.DESK, [St.SCHEDULE, St.CANCEL]),
        (S.PROPOSED, Who.PARTY, []),
        (S.SCHEDULED, Who.MEDIATOR, [St.RESCHEDULE, St.START, St.NO_SHOW, St.CANCEL]),
        (S.SCHEDULED, Who.SYSTEM, [St.NO_SHOW]),
        (S.IN_SESSION, Who.MEDIATOR, [St.CONCLUDE, St.NO_SHOW]),
        (S.IN_SESSION, Who.DESK, []),
        (S.CONCLUDED, Who.MEDIATOR, []),
    ],
)
def test_who_may_take_which_step(state: MediationState, who: Who, expected: list) -> None:
    assert allowed_steps(state, who) == expected


def test_every_final_state_allows_no_step_at_all() -> None:
    for state in (S.CONCLUDED, S.NO_SHOW, S.CANCELLED):
        for who in Who:
            assert allowed_steps(state, who) == []
        for rule in PARTY_STEPS.values():
            assert state not in rule.states


def test_an_illegal_step_names_the_state_and_changes_nothing() -> None:
    m = proposed()
    before = m.snapshot()
    with pytest.raises(IllegalStep) as info:
        m.take(St.START, who=Who.MEDIATOR, now=NOW)
    assert info.value.params == {"state": "proposed", "step": "start"}
    with pytest.raises(Forbidden):
        m.take(St.SCHEDULE, who=Who.PARTY, now=NOW, parties=2, scheduled_at=NOW + timedelta(days=1))
    assert m.snapshot() == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"parties": 1, "scheduled_at": NOW + timedelta(days=1)}, "mediation_needs_two_parties"),
        ({"parties": 2, "scheduled_at": NOW - timedelta(minutes=1)}, "mediation_time_in_past"),
        ({"parties": 2, "scheduled_at": datetime(2026, 12, 1, 9, 0)}, "invalid_field"),
        (
            {"parties": 2, "scheduled_at": NOW + timedelta(days=1), "duration_minutes": 5},
            "mediation_duration_out_of_range",
        ),
        ({"parties": 2}, "missing_field"),
    ],
)
def test_scheduling_checks_its_input(params: dict, code: str) -> None:
    m = proposed()
    with pytest.raises(InvalidInput) as info:
        m.take(St.SCHEDULE, who=Who.DESK, now=NOW, **params)
    assert info.value.code == code
    assert m.state is S.PROPOSED and m.version == 1


def test_scheduling_needs_a_mediator() -> None:
    with pytest.raises(InvalidInput) as info:
        proposed(mediator_id=None).take(
            St.SCHEDULE, who=Who.DESK, now=NOW, parties=2, scheduled_at=NOW + timedelta(days=1)
        )
    assert info.value.params == {"field": "mediator_id"}


def test_rescheduling_needs_a_new_time_and_counts() -> None:
    m = scheduled()
    with pytest.raises(InvalidInput):
        m.take(St.RESCHEDULE, who=Who.MEDIATOR, now=NOW, scheduled_at=m.scheduled_at)
    m.take(St.RESCHEDULE, who=Who.MEDIATOR, now=NOW, scheduled_at=NOW + timedelta(days=3))
    assert m.reschedules == 1 and m.state is S.SCHEDULED


def test_a_session_cannot_start_long_before_its_time() -> None:
    m = scheduled(NOW + timedelta(hours=2))
    with pytest.raises(InvalidInput) as info:
        m.take(St.START, who=Who.MEDIATOR, now=NOW)
    assert info.value.code == "mediation_too_early"
    m.take(St.START, who=Who.MEDIATOR, now=NOW + timedelta(hours=2) - Window().early)
    assert m.state is S.IN_SESSION


def test_an_agreement_needs_its_text_and_no_agreement_does_not() -> None:
    m = scheduled()
    m.take(St.START, who=Who.MEDIATOR, now=m.scheduled_at)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info:
        m.take(St.CONCLUDE, who=Who.MEDIATOR, now=NOW + timedelta(days=2), outcome="partial")
    assert info.value.params == {"field": "agreement_text"}
    with pytest.raises(InvalidInput):
        m.take(St.CONCLUDE, who=Who.MEDIATOR, now=NOW + timedelta(days=2), outcome="maybe")
    m.take(St.CONCLUDE, who=Who.MEDIATOR, now=NOW + timedelta(days=2), outcome="none")
    assert m.outcome == "none" and m.agreement_text is None


def test_cancel_needs_a_reason_and_no_show_is_the_system_s_too() -> None:
    m = scheduled()
    with pytest.raises(InvalidInput):
        m.take(St.CANCEL, who=Who.DESK, now=NOW, reason="  ")
    m.take(St.NO_SHOW, who=Who.SYSTEM, now=NOW + timedelta(days=2, hours=1))
    assert m.state is S.NO_SHOW and m.ended_at is not None


def test_a_stale_version_is_a_conflict() -> None:
    m = scheduled()
    with pytest.raises(VersionConflict):
        m.check_version(1)
    m.check_version(2)


def test_party_steps_have_their_own_rules() -> None:
    check_party_step(S.SCHEDULED, PartyStep.DECLINE, Who.PARTY)
    check_party_step(S.IN_SESSION, PartyStep.ADMIT, Who.MEDIATOR)
    with pytest.raises(IllegalStep):
        check_party_step(S.IN_SESSION, PartyStep.DECLINE, Who.PARTY)
    with pytest.raises(Forbidden):
        check_party_step(S.IN_SESSION, PartyStep.ADMIT, Who.PARTY)
    with pytest.raises(Forbidden):
        check_party_step(S.IN_SESSION, PartyStep.REMOVE, Who.DESK)
    with pytest.raises(IllegalStep):
        check_party_step(S.SCHEDULED, PartyStep.MUTE, Who.MEDIATOR)


def test_recording_only_while_everyone_present_said_yes() -> None:
    assert recording_allowed([True, True, True])
    assert not recording_allowed([True, False])
    assert not recording_allowed([True, None])
    assert not recording_allowed([])


@pytest.mark.parametrize("text", ["拒绝", "不参加。", "Decline", "no", "decline: I am ill"])
def test_decline_replies_in_both_languages(text: str) -> None:
    assert is_decline(text)


@pytest.mark.parametrize("text", ["好的", "yes", "我会准时参加", "noise on the line"])
def test_other_replies_are_not_declines(text: str) -> None:
    assert not is_decline(text)


def test_the_table_names_every_step_once() -> None:
    assert set(WORKFLOW) == set(MediationStep)
    assert set(PARTY_STEPS) == set(PartyStep)


def test_the_figures_count_held_sessions_agreements_no_shows_and_waits() -> None:
    from callcenter.domain.mediation import CaseFigures, mediation_figures

    day = timedelta(days=1)
    cases = [
        CaseFigures("concluded", "agreement", NOW, NOW + 2 * day, NOW + 2 * day),
        CaseFigures("concluded", "partial", NOW, NOW + 4 * day, NOW + 4 * day),
        CaseFigures("concluded", "none", NOW, NOW + 3 * day, NOW + 3 * day),
        CaseFigures("no_show", None, NOW, NOW + day, None),
        CaseFigures("cancelled", None, NOW, None, None),
        CaseFigures("scheduled", None, NOW, NOW + day, None),
    ]
    figures = mediation_figures(cases)
    assert figures == {
        "requested": 6,
        "held": 3,
        "agreements": 1,
        "partial": 1,
        "no_show": 1,
        "cancelled": 1,
        "agreement_rate": round(1 / 3, 4),
        "no_show_rate": 0.25,
        "days_to_session": 3.0,
    }
    assert mediation_figures([])["agreement_rate"] is None
