"""The ticket (工单) and its workflow, as a table you can read.

States::

    new ──dispatch──▶ dispatched ──sign_for──▶ accepted ──reply──▶ replied ──close──▶ closed
     │  ▲                 │                       │                   │                 │
     │  └──dispatch── returned ◀──return──────────┘                   └────reopen───────┘
     ├──direct_answer──▶ closed                                         (back to dispatched)
     ├──merge──▶ merged
     └──cancel──▶ cancelled

Side steps that keep the state: ``urge`` (催办), ``supervise`` (督办),
``request_extension`` / ``approve_extension`` / ``deny_extension`` (延期).

:data:`WORKFLOW` says, for every step, the states it may start from, the state
it leads to, and the roles that may take it. :meth:`Ticket.take` is the only
way a ticket changes; it checks that table, the step's parameters and its
guards, then moves the clocks. It does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from callcenter.domain.errors import Forbidden, IllegalStep, InvalidInput, VersionConflict
from callcenter.domain.sla import Light, SlaPolicy, worst


class TicketState(StrEnum):
    NEW = "new"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    CLOSED = "closed"
    RETURNED = "returned"
    MERGED = "merged"
    CANCELLED = "cancelled"


class Step(StrEnum):
    DISPATCH = "dispatch"
    SIGN_FOR = "sign_for"
    RETURN = "return"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    DENY_EXTENSION = "deny_extension"
    REPLY = "reply"
    CLOSE = "close"
    DIRECT_ANSWER = "direct_answer"
    URGE = "urge"
    SUPERVISE = "supervise"
    REOPEN = "reopen"
    MERGE = "merge"
    CANCEL = "cancel"


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    DEPARTMENT = "department"
    ADMIN = "admin"
    SYSTEM = "system"


class TicketType(StrEnum):
    INQUIRY = "inquiry"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议
    PRAISE = "praise"  # 表扬


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"  # 急事特办: deadlines in hours, first in every list


FINAL_STATES = frozenset({TicketState.CLOSED, TicketState.MERGED, TicketState.CANCELLED})
OPEN_STATES = frozenset(TicketState) - FINAL_STATES


@dataclass(frozen=True)
class Actor:
    """Who takes a step. ``department_id`` binds department staff to their department."""

    id: int | None
    role: Role
    name: str
    department_id: int | None = None
    locale: str = "zh-CN"


SYSTEM = Actor(id=None, role=Role.SYSTEM, name="system")


@dataclass(frozen=True)
class Rule:
    """One row of the workflow table."""

    step: Step
    sources: frozenset[TicketState]
    target: TicketState | None  # None: the state stays
    roles: frozenset[Role]
    own_department: bool = False  # department staff only on their own department's tickets
    requires: tuple[str, ...] = ()


def _rule(
    step: Step,
    sources: set[TicketState],
    target: TicketState | None,
    roles: set[Role],
    *,
    own_department: bool = False,
    requires: tuple[str, ...] = (),
) -> Rule:
    return Rule(step, frozenset(sources), target, frozenset(roles), own_department, requires)


S, R = TicketState, Role
DESK = {R.AGENT, R.SUPERVISOR}

WORKFLOW: dict[Step, Rule] = {
    rule.step: rule
    for rule in (
        _rule(
            Step.DISPATCH,
            {S.NEW, S.RETURNED},
            S.DISPATCHED,
            DESK | {R.SYSTEM},
            requires=("department_id",),
        ),
        _rule(Step.SIGN_FOR, {S.DISPATCHED}, S.ACCEPTED, {R.DEPARTMENT}, own_department=True),
        _rule(
            Step.RETURN,
            {S.DISPATCHED, S.ACCEPTED},
            S.RETURNED,
            {R.DEPARTMENT},
            own_department=True,
            requires=("reason",),
        ),
        _rule(
            Step.REQUEST_EXTENSION,
            {S.ACCEPTED},
            None,
            {R.DEPARTMENT},
            own_department=True,
            requires=("days", "reason"),
        ),
        _rule(Step.APPROVE_EXTENSION, {S.ACCEPTED}, None, {R.SUPERVISOR}),
        _rule(Step.DENY_EXTENSION, {S.ACCEPTED}, None, {R.SUPERVISOR}, requires=("reason",)),
        _rule(
            Step.REPLY,
            {S.ACCEPTED},
            S.REPLIED,
            {R.DEPARTMENT},
            own_department=True,
            requires=("text",),
        ),
        _rule(Step.CLOSE, {S.REPLIED}, S.CLOSED, DESK | {R.SYSTEM}),
        _rule(Step.DIRECT_ANSWER, {S.NEW}, S.CLOSED, DESK, requires=("text",)),
        _rule(Step.URGE, {S.DISPATCHED, S.ACCEPTED}, None, DESK | {R.SYSTEM}),
        _rule(Step.SUPERVISE, {S.DISPATCHED, S.ACCEPTED}, None, {R.SUPERVISOR}),
        _rule(
            Step.REOPEN,
            {S.REPLIED, S.CLOSED},
            S.DISPATCHED,
            DESK | {R.SYSTEM},
            requires=("reason",),
        ),
        _rule(
            Step.MERGE,
            {S.NEW, S.RETURNED, S.DISPATCHED},
            S.MERGED,
            DESK,
            requires=("into_ticket_id",),
        ),
        _rule(Step.CANCEL, {S.NEW, S.RETURNED}, S.CANCELLED, {R.SUPERVISOR}, requires=("reason",)),
    )
}
del S, R


def allowed_steps(state: TicketState, role: Role) -> list[Step]:
    """The steps a role may take from a state (ignoring department and guards)."""
    return [r.step for r in WORKFLOW.values() if state in r.sources and role in r.roles]


@dataclass
class Ticket:
    """The workflow-relevant part of a ticket row."""

    id: int | None
    number: str
    type: TicketType
    priority: Priority
    state: TicketState
    created_at: datetime
    department_id: int | None = None
    dispatched_at: datetime | None = None
    sign_due_at: datetime | None = None
    accepted_at: datetime | None = None
    handle_started_at: datetime | None = None
    due_at: datetime | None = None
    sign_warn_at: datetime | None = None  # when the sign-for light turns yellow
    warn_at: datetime | None = None  # when the handling light turns yellow
    replied_at: datetime | None = None
    closed_at: datetime | None = None
    reply: str | None = None
    closure: str | None = None
    extension_days: int = 0
    extension_request_days: int | None = None
    extension_request_reason: str | None = None
    return_count: int = 0
    reopen_count: int = 0
    urge_count: int = 0
    supervised: bool = False
    merged_into_id: int | None = None
    last_reason: str | None = None
    version: int = 1
    category_id: int | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_row(cls, row: Any) -> Ticket:
        values = {name: getattr(row, name) for name in cls.field_names()}
        values["type"] = TicketType(values["type"])
        values["priority"] = Priority(values["priority"])
        values["state"] = TicketState(values["state"])
        return cls(**values)

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise VersionConflict(expected=expected, actual=self.version)

    def take(
        self, step: Step, *, actor: Actor, now: datetime, sla: SlaPolicy, **params: Any
    ) -> None:
        """Take one workflow step, or raise without changing anything."""
        rule = WORKFLOW[step]
        if self.state not in rule.sources:
            raise IllegalStep(state=self.state.value, step=step.value)
        if actor.role not in rule.roles:
            raise Forbidden("step_not_permitted", role=actor.role.value, step=step.value)
        if (
            rule.own_department
            and actor.role is Role.DEPARTMENT
            and (actor.department_id is None or actor.department_id != self.department_id)
        ):
            raise Forbidden("not_your_department")
        for name in rule.requires:
            value = params.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InvalidInput("missing_field", field=name)
        if now < self.created_at:
            raise InvalidInput("time_before_creation")
        getattr(self, f"_{step.value}")(actor=actor, now=now, sla=sla, **params)
        if rule.target is not None:
            self.state = rule.target
        self.version += 1

    # Each step's guards and effects. They run only after the table allowed the step.

    def _start_clocks(self, now: datetime, sla: SlaPolicy) -> None:
        self.dispatched_at = now
        self.handle_started_at = now
        self.sign_due_at = sla.deadline(now, sla.sign_limit(self.priority))
        self.due_at = sla.deadline(
            now, sla.handle_limit(self.type, self.priority, self.category_id)
        )
        working = sla.is_working(self.priority)
        self.sign_warn_at = sla.yellow_from(now, self.sign_due_at, working=working)
        self.warn_at = sla.yellow_from(now, self.due_at, working=working)
        self.accepted_at = None
        self.extension_request_days = None
        self.extension_request_reason = None

    def _dispatch(self, *, now: datetime, sla: SlaPolicy, department_id: int, **_: Any) -> None:
        self.department_id = int(department_id)
        self._start_clocks(now, sla)

    def _sign_for(self, *, now: datetime, **_: Any) -> None:
        self.accepted_at = now

    def _return(self, *, reason: str, **_: Any) -> None:
        self.return_count += 1
        self.last_reason = reason.strip()
        self.department_id = None
        self.sign_due_at = None
        self.due_at = None
        self.sign_warn_at = None
        self.warn_at = None
        self.accepted_at = None
        self.extension_request_days = None
        self.extension_request_reason = None

    def _request_extension(self, *, sla: SlaPolicy, days: Any, reason: str, **_: Any) -> None:
        if self.extension_request_days is not None:
            raise IllegalStep(state="extension_requested", step=Step.REQUEST_EXTENSION.value)
        try:
            wanted = int(days)
        except (TypeError, ValueError):
            raise InvalidInput("invalid_field", field="days") from None
        left = sla.settings.max_extension_days - self.extension_days
        if wanted < 1 or wanted > left:
            raise InvalidInput("extension_days_out_of_range", days=wanted, max=max(left, 0))
        self.extension_request_days = wanted
        self.extension_request_reason = reason.strip()

    def _approve_extension(self, *, sla: SlaPolicy, **_: Any) -> None:
        if self.extension_request_days is None or self.due_at is None:
            raise IllegalStep(state=self.state.value, step=Step.APPROVE_EXTENSION.value)
        self.due_at = sla.extend(self.due_at, self.extension_request_days, self.priority)
        if self.handle_started_at is not None:
            working = sla.is_working(self.priority)
            self.warn_at = sla.yellow_from(self.handle_started_at, self.due_at, working=working)
        self.extension_days += self.extension_request_days
        self.extension_request_days = None

    def _deny_extension(self, *, reason: str, **_: Any) -> None:
        if self.extension_request_days is None:
            raise IllegalStep(state=self.state.value, step=Step.DENY_EXTENSION.value)
        self.extension_request_days = None
        self.last_reason = reason.strip()

    def _reply(self, *, now: datetime, text: str, **_: Any) -> None:
        self.reply = text.strip()
        self.replied_at = now
        self.extension_request_days = None
        self.extension_request_reason = None

    def _close(self, *, now: datetime, **_: Any) -> None:
        self.closed_at = now
        self.closure = "replied"

    def _direct_answer(self, *, now: datetime, text: str, **_: Any) -> None:
        self.reply = text.strip()
        self.replied_at = now
        self.closed_at = now
        self.closure = "direct_answer"

    def _urge(self, **_: Any) -> None:
        self.urge_count += 1

    def _supervise(self, **_: Any) -> None:
        self.supervised = True

    def _reopen(self, *, now: datetime, sla: SlaPolicy, reason: str, **_: Any) -> None:
        if self.department_id is None:
            # a direct answer was never dispatched: it goes back to the desk's list
            raise IllegalStep(state=self.state.value, step=Step.REOPEN.value)
        self.reopen_count += 1
        self.last_reason = reason.strip()
        self.replied_at = None
        self.closed_at = None
        self.closure = None
        self.reply = None
        self.extension_days = 0
        self._start_clocks(now, sla)

    def _merge(self, *, now: datetime, into_ticket_id: Any, **_: Any) -> None:
        try:
            target = int(into_ticket_id)
        except (TypeError, ValueError):
            raise InvalidInput("invalid_field", field="into_ticket_id") from None
        if target == self.id:
            raise InvalidInput("merge_into_itself")
        self.merged_into_id = target
        self.closed_at = now
        self.closure = "merged"

    def _cancel(self, *, now: datetime, reason: str, **_: Any) -> None:
        self.last_reason = reason.strip()
        self.closed_at = now
        self.closure = "cancelled"

    # Lights

    @staticmethod
    def _light_from(deadline: datetime, warn_at: datetime | None, now: datetime) -> Light | None:
        """The light from the stored yellow instant (no calendar to walk); None without one."""
        if now >= deadline:
            return Light.RED
        if warn_at is None:
            return None
        return Light.YELLOW if now >= warn_at else Light.GREEN

    def sign_light(self, now: datetime, sla: SlaPolicy) -> Light | None:
        if self.state is not TicketState.DISPATCHED or not self.sign_due_at:
            return None
        assert self.dispatched_at is not None
        return self._light_from(self.sign_due_at, self.sign_warn_at, now) or sla.light(
            self.dispatched_at, self.sign_due_at, now, working=sla.is_working(self.priority)
        )

    def handle_light(self, now: datetime, sla: SlaPolicy) -> Light | None:
        if self.state not in (TicketState.DISPATCHED, TicketState.ACCEPTED) or not self.due_at:
            return None
        assert self.handle_started_at is not None
        return self._light_from(self.due_at, self.warn_at, now) or sla.light(
            self.handle_started_at, self.due_at, now, working=sla.is_working(self.priority)
        )

    def light(self, now: datetime, sla: SlaPolicy) -> Light | None:
        """The worse of the running clocks; ``None`` when no clock runs."""
        return worst(self.sign_light(now, sla), self.handle_light(now, sla))


_FIELDS = Ticket.field_names()


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, as (before, after)."""
    changed = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}
