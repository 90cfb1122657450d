from datetime import UTC, datetime, timedelta

import pytest

from callcenter.config import SlaSettings
from callcenter.domain.calendar import WorkCalendar
from callcenter.domain.errors import Forbidden, IllegalStep, InvalidInput, VersionConflict
from callcenter.domain.sla import Light, SlaPolicy
from callcenter.domain.workflow import (
    SYSTEM,
    WORKFLOW,
    Actor,
    Priority,
    Role,
    Step,
    Ticket,
    TicketState,
    TicketType,
    allowed_steps,
    diff,
)

SLA = SlaPolicy(WorkCalendar(), SlaSettings())
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
AGENT = Actor(1, Role.AGENT, "agent")
SUPERVISOR = Actor(2, Role.SUPERVISOR, "supervisor")
DEPT = Actor(3, Role.DEPARTMENT, "water", department_id=10)
OTHER_DEPT = Actor(4, Role.DEPARTMENT, "power", department_id=11)

PARAMS = {
    Step.DISPATCH: {"department_id": 10},
    Step.RETURN: {"reason": "not ours"},
    Step.REQUEST_EXTENSION: {"days": 3, "reason": "needs parts"},
    Step.DENY_EXTENSION: {"reason": "no"},
    Step.REPLY: {"text": "fixed"},
    Step.DIRECT_ANSWER: {"text": "the answer"},
    Step.REOPEN: {"reason": "not solved"},
    Step.MERGE: {"into_ticket_id": 99},
    Step.CANCEL: {"reason": "duplicate call"},
}


def new_ticket(**kw: object) -> Ticket:
    values: dict[str, object] = {
        "id": 1,
        "number": "20261123-0001",
        "type": TicketType.HELP,
        "priority": Priority.NORMAL,
        "state": TicketState.NEW,
        "created_at": T0,
    }
    values.update(kw)
    return Ticket(**values)  # type: ignore[arg-type]


def take(
    ticket: Ticket, step: Step, actor: Actor, at: datetime | None = None, **kw: object
) -> None:
    params = {**PARAMS.get(step, {}), **kw}
    ticket.take(
        step, actor=actor, now=at or ticket.created_at + timedelta(hours=1), sla=SLA, **params
    )


def test_the_table_names_a_role_for_every_step_and_no_step_leaves_a_final_state() -> None:
    assert set(WORKFLOW) == set(Step)
    for rule in WORKFLOW.values():
        assert rule.roles
        assert not rule.sources & {TicketState.MERGED, TicketState.CANCELLED}


def test_the_main_path_moves_clocks_and_states() -> None:
    t = new_ticket()
    take(t, Step.DISPATCH, AGENT, T0 + timedelta(minutes=10))
    assert t.state is TicketState.DISPATCHED and t.department_id == 10
    assert t.sign_due_at == datetime(2026, 11, 24, 1, 10, tzinfo=UTC)  # next day 09:10 local
    assert t.due_at is not None and t.due_at > t.sign_due_at
    take(t, Step.SIGN_FOR, DEPT, T0 + timedelta(hours=2))
    assert t.state is TicketState.ACCEPTED and t.accepted_at == T0 + timedelta(hours=2)
    take(t, Step.REPLY, DEPT, T0 + timedelta(hours=5))
    assert t.state is TicketState.REPLIED and t.reply == "fixed"
    take(t, Step.CLOSE, AGENT, T0 + timedelta(hours=6))
    assert t.state is TicketState.CLOSED and t.closure == "replied"
    assert t.version == 5


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("state", list(TicketState))
def test_every_step_outside_its_sources_is_illegal(step: Step, state: TicketState) -> None:
    if state in WORKFLOW[step].sources:
        return
    t = new_ticket(state=state, department_id=10)
    role = next(iter(WORKFLOW[step].roles - {Role.SYSTEM}), Role.SYSTEM)
    who = {Role.DEPARTMENT: DEPT, Role.SUPERVISOR: SUPERVISOR}.get(role, AGENT)
    before = t.snapshot()
    with pytest.raises(IllegalStep) as caught:
        take(t, step, who)
    assert caught.value.params == {"state": state.value, "step": step.value}
    assert caught.value.status == 409
    assert t.snapshot() == before


def test_roles_and_departments_are_checked() -> None:
    t = new_ticket()
    with pytest.raises(Forbidden):
        take(t, Step.DISPATCH, DEPT)
    take(t, Step.DISPATCH, AGENT)
    with pytest.raises(Forbidden):
        take(t, Step.SIGN_FOR, AGENT)
    with pytest.raises(Forbidden) as caught:
        take(t, Step.SIGN_FOR, OTHER_DEPT)
    assert caught.value.code == "not_your_department"
    with pytest.raises(Forbidden):
        take(t, Step.SUPERVISE, AGENT)  # 督办 is for supervisors
    take(t, Step.SUPERVISE, SUPERVISOR)
    assert t.supervised


def test_missing_parameters_change_nothing() -> None:
    t = new_ticket()
    before = t.snapshot()
    with pytest.raises(InvalidInput) as caught:
        t.take(Step.DIRECT_ANSWER, actor=AGENT, now=T0, sla=SLA, text="   ")
    assert caught.value.params == {"field": "text"}
    assert t.snapshot() == before


def test_extension_request_approval_and_limits() -> None:
    t = new_ticket(
        state=TicketState.ACCEPTED,
        department_id=10,
        dispatched_at=T0,
        handle_started_at=T0,
        due_at=T0 + timedelta(days=14),
    )
    with pytest.raises(IllegalStep):
        take(t, Step.APPROVE_EXTENSION, SUPERVISOR)  # nothing requested yet
    take(t, Step.REQUEST_EXTENSION, DEPT, days=4)
    with pytest.raises(IllegalStep):
        take(t, Step.REQUEST_EXTENSION, DEPT, days=1)  # one request at a time
    due = t.due_at
    take(t, Step.APPROVE_EXTENSION, SUPERVISOR)
    assert t.extension_days == 4 and t.due_at == SLA.extend(due, 4, "normal")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        take(t, Step.REQUEST_EXTENSION, DEPT, days=7)  # only 6 of the 10 days remain
    assert caught.value.params == {"days": 7, "max": 6}
    take(t, Step.REQUEST_EXTENSION, DEPT, days=6)
    take(t, Step.DENY_EXTENSION, SUPERVISOR)
    assert t.extension_days == 4 and t.extension_request_days is None


def test_return_clears_the_department_and_redispatch_restarts_the_clocks() -> None:
    t = new_ticket()
    take(t, Step.DISPATCH, AGENT, T0)
    take(t, Step.RETURN, DEPT, T0 + timedelta(hours=1))
    assert t.state is TicketState.RETURNED and t.department_id is None and t.due_at is None
    assert t.return_count == 1 and t.last_reason == "not ours"
    later = T0 + timedelta(days=2)
    take(t, Step.DISPATCH, AGENT, later, department_id=11)
    assert t.department_id == 11 and t.dispatched_at == later


def test_reopen_sends_back_to_the_same_department_with_fresh_deadlines() -> None:
    t = new_ticket()
    take(t, Step.DISPATCH, AGENT, T0)
    take(t, Step.SIGN_FOR, DEPT)
    take(t, Step.REPLY, DEPT)
    take(t, Step.CLOSE, AGENT)
    reopened = T0 + timedelta(days=5)
    take(t, Step.REOPEN, SYSTEM, reopened)
    assert t.state is TicketState.DISPATCHED and t.department_id == 10
    assert t.reopen_count == 1 and t.closed_at is None and t.reply is None
    assert t.dispatched_at == reopened and t.due_at is not None and t.due_at > reopened


def test_a_direct_answer_cannot_be_reopened_to_a_department() -> None:
    t = new_ticket()
    take(t, Step.DIRECT_ANSWER, AGENT)
    assert t.state is TicketState.CLOSED and t.closure == "direct_answer"
    with pytest.raises(IllegalStep):
        take(t, Step.REOPEN, AGENT)


def test_merge_guards() -> None:
    t = new_ticket()
    with pytest.raises(InvalidInput):
        take(t, Step.MERGE, AGENT, into_ticket_id=1)
    take(t, Step.MERGE, AGENT, into_ticket_id=2)
    assert t.state is TicketState.MERGED and t.merged_into_id == 2


def test_steps_before_creation_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        take(new_ticket(), Step.DISPATCH, AGENT, T0 - timedelta(seconds=1))


def test_version_check() -> None:
    t = new_ticket(version=3)
    t.check_version(3)
    t.check_version(None)
    with pytest.raises(VersionConflict):
        t.check_version(2)


def test_lights_follow_the_running_clock() -> None:
    t = new_ticket()
    assert t.light(T0, SLA) is None
    take(t, Step.DISPATCH, AGENT, T0)
    assert t.light(T0 + timedelta(hours=1), SLA) is Light.GREEN
    assert t.sign_due_at is not None
    assert t.light(t.sign_due_at, SLA) is Light.RED  # not signed for in time
    take(t, Step.SIGN_FOR, DEPT, t.sign_due_at + timedelta(hours=1))
    assert t.sign_light(t.sign_due_at, SLA) is None
    assert t.light(t.sign_due_at + timedelta(hours=2), SLA) is Light.GREEN


def test_urgent_tickets_use_hours() -> None:
    t = new_ticket(priority=Priority.URGENT)
    take(t, Step.DISPATCH, AGENT, T0)
    assert t.sign_due_at == T0 + timedelta(minutes=30)
    assert t.due_at == T0 + timedelta(hours=24)


def test_allowed_steps_and_diff() -> None:
    assert allowed_steps(TicketState.DISPATCHED, Role.DEPARTMENT) == [Step.SIGN_FOR, Step.RETURN]
    assert Step.CANCEL in allowed_steps(TicketState.NEW, Role.SUPERVISOR)
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ({"b": 2}, {"b": 3})
