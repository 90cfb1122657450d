"""The mediation (调解) on a dispute ticket, and its workflow as a table you can read.

States::

    proposed ──schedule──▶ scheduled ──start──▶ in_session ──conclude──▶ concluded
       │                    │  ▲   │                 │          (agreement | partial | none)
       │                    │  └reschedule           └──no_show──▶ no_show
       │                    └──no_show──▶ no_show
       └──cancel──▶ cancelled ◀──cancel── scheduled

:data:`WORKFLOW` says for every step the states it may start from, the state it
leads to, who may take it, and what it needs. Steps about one party (decline,
consent, admit, remove, mute) keep the mediation's state; :data:`PARTY_STEPS`
says when they are allowed and by whom. :meth:`Mediation.take` is the only way a
mediation changes; it does no I/O.

Who: ``desk`` is an agent or supervisor of the call center; ``department`` is
staff of the ticket's department; ``mediator`` is the staff member named as
this mediation's mediator (anyone with the mediator flag may be named);
``party`` is one of the invited parties, acting on their own place only;
``system`` is the hotline's jobs (reminders, no-show).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from callcenter.domain.errors import Forbidden, IllegalStep, InvalidInput, VersionConflict


class MediationState(StrEnum):
    PROPOSED = "proposed"
    SCHEDULED = "scheduled"
    IN_SESSION = "in_session"
    CONCLUDED = "concluded"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class MediationStep(StrEnum):
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    START = "start"
    CONCLUDE = "conclude"
    NO_SHOW = "no_show"
    CANCEL = "cancel"


class PartyStep(StrEnum):
    DECLINE = "decline"  # by replying to the invitation, or on the page
    CONSENT = "consent"  # to recording (yes or no), asked before entering
    ENTER = "enter"  # into the waiting room, after link and PIN
    ADMIT = "admit"  # from the waiting room into the room
    REMOVE = "remove"  # out of the room, for the rest of the session
    MUTE = "mute"  # the mediator silences a microphone
    LEAVE = "leave"  # the page closed or the connection dropped


class Who(StrEnum):
    DESK = "desk"
    DEPARTMENT = "department"
    MEDIATOR = "mediator"
    PARTY = "party"
    SYSTEM = "system"


class PartyRole(StrEnum):
    APPLICANT = "applicant"  # 申请人
    RESPONDENT = "respondent"  # 被申请人
    WITNESS = "witness"  # 证人
    INTERPRETER = "interpreter"  # 翻译


class Outcome(StrEnum):
    AGREEMENT = "agreement"  # 达成调解协议
    PARTIAL = "partial"  # 部分达成
    NONE = "none"  # 未达成


FINAL_STATES = frozenset(
    {MediationState.CONCLUDED, MediationState.NO_SHOW, MediationState.CANCELLED}
)
OPEN_STATES = frozenset(MediationState) - FINAL_STATES
# a party is invited by SMS (and Telegram), so these roles need a phone
MAX_PARTIES = 8


@dataclass(frozen=True)
class Rule:
    step: MediationStep
    sources: frozenset[MediationState]
    target: MediationState
    who: frozenset[Who]
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartyRule:
    step: PartyStep
    states: frozenset[MediationState]
    who: frozenset[Who]


M, W = MediationState, Who

WORKFLOW: dict[MediationStep, Rule] = {
    r.step: r
    for r in (
        Rule(
            MediationStep.SCHEDULE,
            frozenset({M.PROPOSED}),
            M.SCHEDULED,
            frozenset({W.MEDIATOR, W.DESK}),
            ("scheduled_at",),
        ),
        Rule(
            MediationStep.RESCHEDULE,
            frozenset({M.SCHEDULED}),
            M.SCHEDULED,
            frozenset({W.MEDIATOR, W.DESK}),
            ("scheduled_at",),
        ),
        Rule(MediationStep.START, frozenset({M.SCHEDULED}), M.IN_SESSION, frozenset({W.MEDIATOR})),
        Rule(
            MediationStep.CONCLUDE,
            frozenset({M.IN_SESSION}),
            M.CONCLUDED,
            frozenset({W.MEDIATOR}),
            ("outcome",),
        ),
        Rule(
            MediationStep.NO_SHOW,
            frozenset({M.SCHEDULED, M.IN_SESSION}),
            M.NO_SHOW,
            frozenset({W.MEDIATOR, W.SYSTEM}),
        ),
        Rule(
            MediationStep.CANCEL,
            frozenset({M.PROPOSED, M.SCHEDULED}),
            M.CANCELLED,
            frozenset({W.MEDIATOR, W.DESK}),
            ("reason",),
        ),
    )
}

PARTY_STEPS: dict[PartyStep, PartyRule] = {
    r.step: r
    for r in (
        PartyRule(PartyStep.DECLINE, frozenset({M.PROPOSED, M.SCHEDULED}), frozenset({W.PARTY})),
        PartyRule(PartyStep.CONSENT, frozenset({M.SCHEDULED, M.IN_SESSION}), frozenset({W.PARTY})),
        PartyRule(PartyStep.ENTER, frozenset({M.SCHEDULED, M.IN_SESSION}), frozenset({W.PARTY})),
        PartyRule(PartyStep.ADMIT, frozenset({M.IN_SESSION}), frozenset({W.MEDIATOR})),
        PartyRule(PartyStep.REMOVE, frozenset({M.IN_SESSION}), frozenset({W.MEDIATOR})),
        PartyRule(PartyStep.MUTE, frozenset({M.IN_SESSION}), frozenset({W.MEDIATOR})),
        PartyRule(
            PartyStep.LEAVE,
            frozenset({M.SCHEDULED, M.IN_SESSION}),
            frozenset({W.PARTY, W.MEDIATOR, W.SYSTEM}),
        ),
    )
}
del M, W


def allowed_steps(state: MediationState, who: Who) -> list[MediationStep]:
    return [r.step for r in WORKFLOW.values() if state in r.sources and who in r.who]


def check_party_step(state: MediationState, step: PartyStep, who: Who) -> None:
    """Raise unless ``who`` may take a party step while the mediation is in ``state``."""
    rule = PARTY_STEPS[step]
    if state not in rule.states:
        raise IllegalStep(state=state.value, step=step.value)
    if who not in rule.who:
        raise Forbidden("step_not_permitted", role=who.value, step=step.value)


@dataclass(frozen=True)
class Window:
    """When a party's link lets them in: from ``early`` before the time, until the
    session's planned end plus ``grace``; the link expires then too."""

    early: timedelta = timedelta(minutes=15)
    grace: timedelta = timedelta(hours=1)

    def opens(self, scheduled_at: datetime) -> datetime:
        return scheduled_at - self.early

    def closes(self, scheduled_at: datetime, duration_minutes: int) -> datetime:
        return scheduled_at + timedelta(minutes=duration_minutes) + self.grace


@dataclass
class Mediation:
    """The workflow-relevant part of a mediation row."""

    id: int | None
    ticket_id: int
    state: MediationState
    created_at: datetime
    mediator_id: int | None = None
    scheduled_at: datetime | None = None
    duration_minutes: int = 60
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    agreement_text: str | None = None
    reason: str | None = None
    reschedules: int = 0
    version: int = 1

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_row(cls, row: Any) -> Mediation:
        values = {name: getattr(row, name) for name in cls.field_names()}
        values["state"] = MediationState(values["state"])
        return cls(**values)

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise VersionConflict(expected=expected, actual=self.version)

    def take(
        self,
        step: MediationStep,
        *,
        who: Who,
        now: datetime,
        parties: int = 0,
        **params: Any,
    ) -> None:
        """Take one step, or raise without changing anything. ``parties``: how many
        parties are invited and have not declined (scheduling needs two)."""
        rule = WORKFLOW[step]
        if self.state not in rule.sources:
            raise IllegalStep(state=self.state.value, step=step.value)
        if who not in rule.who:
            raise Forbidden("step_not_permitted", role=who.value, step=step.value)
        for name in rule.requires:
            value = params.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InvalidInput("missing_field", field=name)
        getattr(self, f"_{step.value}")(now=now, parties=parties, **params)
        self.state = rule.target
        self.version += 1

    def _check_time(self, now: datetime, scheduled_at: Any, duration_minutes: Any) -> None:
        if not isinstance(scheduled_at, datetime) or scheduled_at.tzinfo is None:
            raise InvalidInput("invalid_field", field="scheduled_at")
        if scheduled_at <= now:
            raise InvalidInput("mediation_time_in_past")
        if duration_minutes is not None:
            try:
                minutes = int(duration_minutes)
            except (TypeError, ValueError):
                raise InvalidInput("invalid_field", field="duration_minutes") from None
            if not 15 <= minutes <= 480:
                raise InvalidInput("mediation_duration_out_of_range", min=15, max=480)
            self.duration_minutes = minutes
        self.scheduled_at = scheduled_at

    def _schedule(
        self,
        *,
        now: datetime,
        parties: int,
        scheduled_at: Any,
        duration_minutes: Any = None,
        **_: Any,
    ) -> None:
        if self.mediator_id is None:
            raise InvalidInput("missing_field", field="mediator_id")
        if parties < 2:
            raise InvalidInput("mediation_needs_two_parties")
        self._check_time(now, scheduled_at, duration_minutes)

    def _reschedule(
        self, *, now: datetime, scheduled_at: Any, duration_minutes: Any = None, **_: Any
    ) -> None:
        if scheduled_at == self.scheduled_at:
            raise InvalidInput("mediation_same_time")
        self._check_time(now, scheduled_at, duration_minutes)
        self.reschedules += 1

    def _start(self, *, now: datetime, window: Window | None = None, **_: Any) -> None:
        assert self.scheduled_at is not None
        if now < (window or Window()).opens(self.scheduled_at):
            raise InvalidInput("mediation_too_early")
        self.started_at = now

    def _conclude(
        self, *, now: datetime, outcome: Any, agreement_text: Any = None, **_: Any
    ) -> None:
        if outcome not in Outcome.__members__.values():
            raise InvalidInput("invalid_choice", field="outcome", choices=", ".join(Outcome))
        text = agreement_text.strip() if isinstance(agreement_text, str) else ""
        if outcome != Outcome.NONE and not text:
            raise InvalidInput("missing_field", field="agreement_text")
        if len(text) > 8000:
            raise InvalidInput("field_too_long", field="agreement_text", limit=8000)
        self.outcome = str(outcome)
        self.agreement_text = text or None
        self.ended_at = now

    def _no_show(self, *, now: datetime, **_: Any) -> None:
        self.ended_at = now

    def _cancel(self, *, now: datetime, reason: str, **_: Any) -> None:
        self.reason = reason.strip()
        self.ended_at = now


_FIELDS = Mediation.field_names()


def recording_allowed(present: list[bool | None]) -> bool:
    """Record only while someone is there and every one present said yes.

    ``present``: the consent of each party in the room now (None: not asked yet).
    """
    return bool(present) and all(c is True for c in present)


DECLINE_WORDS = frozenset(
    {"decline", "no", "n", "cannot", "can't", "reject", "拒绝", "不参加", "不去", "不能参加", "否"}
)


def is_decline(text: str) -> bool:
    """An answer to an invitation that says the party will not come (both languages)."""
    cleaned = text.strip().strip("。.!！ ").lower()
    return cleaned in DECLINE_WORDS or cleaned.startswith(("decline", "拒绝", "不参加"))


@dataclass(frozen=True)
class CaseFigures:
    """What the statistics need of one mediation."""

    state: str
    outcome: str | None
    requested_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None


def mediation_figures(cases: list[CaseFigures]) -> dict[str, Any]:
    """The 矛盾纠纷调解 figures of a set of mediations (pure).

    ``held``: sessions that took place (concluded); ``agreement_rate``: full agreements
    among them (partial ones counted apart); ``no_show_rate``: no-shows among the
    sessions that were due (held + no-show); ``days_to_session``: mean days from the
    request (the mediation's creation) to the session's start.
    """
    held = [c for c in cases if c.state == MediationState.CONCLUDED]
    no_show = sum(1 for c in cases if c.state == MediationState.NO_SHOW)
    agreements = sum(1 for c in held if c.outcome == Outcome.AGREEMENT)
    partial = sum(1 for c in held if c.outcome == Outcome.PARTIAL)
    waits = [
        (c.started_at - c.requested_at).total_seconds() / 86400
        for c in held
        if c.started_at is not None
    ]
    due = len(held) + no_show
    return {
        "requested": len(cases),
        "held": len(held),
        "agreements": agreements,
        "partial": partial,
        "no_show": no_show,
        "cancelled": sum(1 for c in cases if c.state == MediationState.CANCELLED),
        "agreement_rate": round(agreements / len(held), 4) if held else None,
        "no_show_rate": round(no_show / due, 4) if due else None,
        "days_to_session": round(sum(waits) / len(waits), 2) if waits else None,
    }
