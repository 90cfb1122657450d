"""The KPIs the hotline is judged by, each defined once. Pure: no I/O.

``docs/kpi.md`` states every formula in words; the read side
(:mod:`callcenter.reports`) only gathers the facts these functions count.

Department KPIs are counted over **dispatch episodes**: each time a ticket is
sent to a department (派单, or 重办 back to the same department) an episode
starts, and it ends when the department returns it (退单), replies (答复) or
the ticket is sent elsewhere. Episodes are rebuilt from the audit trail
(:func:`episodes_from_events`), so a ticket returned by one department and
dispatched to another counts once for each, each with its own clocks.
Survey KPIs count answered surveys (回访) by the department they were about.
Contact-centre KPIs count contacts that waited in an agent queue (text
conversations, and calls once they reach the agents' queue).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TICKET_KPIS = (
    "response_rate",
    "on_time_rate",
    "resolution_rate",
    "satisfaction_rate",
    "return_rate",
    "reopen_rate",
)
LOWER_IS_BETTER = frozenset({"return_rate", "reopen_rate"})
CONTACT_KPIS = ("answer_rate", "service_level", "abandonment_rate")

# Survey answers are scored 1..5 in one place: callcenter.domain.survey.SCORE_WORDS
# (满意 5, 基本满意 4, 不满意 1...); the KPIs read the stored score, never the words.


@dataclass(frozen=True)
class Ratio:
    """A KPI as a count over a count; ``value`` is None when nothing was counted."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": round(value, 4) if value is not None else None,
        }


# --- dispatch episodes -----------------------------------------------------------------


@dataclass
class Episode:
    ticket_id: int
    department_id: int | None
    started_at: datetime
    started_by: str  # dispatch | reopen
    sign_due_at: datetime | None
    due_at: datetime | None
    signed_at: datetime | None = None
    returned_at: datetime | None = None
    replied_at: datetime | None = None
    reopened: bool = False  # the reply of this episode was reopened (重办) later

    @property
    def responded_at(self) -> datetime | None:
        """Signing for it or returning it both answer the dispatch."""
        times = [t for t in (self.signed_at, self.returned_at) if t is not None]
        return min(times) if times else None


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def episodes_from_events(ticket_events: Iterable[Mapping[str, Any]]) -> list[Episode]:
    """Replay tickets' audit events (``entity_type == "ticket"``) into dispatch episodes.

    Each event needs ``entity_id``, ``seq``, ``at``, ``action`` and ``after``.
    A ticket's events must all be given, from its creation, for its department
    to be known when it is reopened.
    """
    ordered = sorted(ticket_events, key=lambda e: (e["entity_id"], e["seq"]))
    department: dict[int, int | None] = {}
    current: dict[int, Episode | None] = {}
    last: dict[int, Episode] = {}
    result: list[Episode] = []
    for event in ordered:
        ticket = int(event["entity_id"])
        after = event.get("after") or {}
        at = _time(event["at"])
        assert at is not None
        action = event["action"]
        if "department_id" in after:
            department[ticket] = after["department_id"]
        episode = current.get(ticket)
        if action in ("ticket.dispatch", "ticket.reopen"):
            if action == "ticket.reopen" and ticket in last:
                last[ticket].reopened = True
            episode = Episode(
                ticket,
                department.get(ticket),
                at,
                "reopen" if action == "ticket.reopen" else "dispatch",
                _time(after.get("sign_due_at")),
                _time(after.get("due_at")),
            )
            result.append(episode)
            current[ticket] = last[ticket] = episode
        elif episode is None:
            continue
        elif action == "ticket.sign_for":
            episode.signed_at = episode.signed_at or at
        elif action == "ticket.return":
            episode.returned_at = at
            current[ticket] = None
        elif action == "ticket.approve_extension" and "due_at" in after:
            episode.due_at = _time(after["due_at"])
        elif action == "ticket.reply":
            episode.replied_at = at
            current[ticket] = None
        elif action in ("ticket.merge", "ticket.cancel"):
            current[ticket] = None
    return result


# --- the formulas -------------------------------------------------------------------


def response_rate(episodes: Sequence[Episode], now: datetime) -> Ratio:
    """响应率: episodes answered (signed for or returned) by the sign-for deadline, over
    episodes that were answered or whose sign-for deadline has passed."""
    due = [
        e
        for e in episodes
        if e.responded_at is not None or (e.sign_due_at is not None and e.sign_due_at <= now)
    ]
    on_time = [
        e
        for e in due
        if e.responded_at is not None and (e.sign_due_at is None or e.responded_at <= e.sign_due_at)
    ]
    return Ratio(len(on_time), len(due))


def on_time_rate(episodes: Sequence[Episode], now: datetime) -> Ratio:
    """按时办结率: episodes replied by their (extended) deadline, over episodes not returned
    that were replied or whose deadline has passed."""
    due = [
        e
        for e in episodes
        if e.returned_at is None
        and (e.replied_at is not None or (e.due_at is not None and e.due_at <= now))
    ]
    on_time = [
        e
        for e in due
        if e.replied_at is not None and (e.due_at is None or e.replied_at <= e.due_at)
    ]
    return Ratio(len(on_time), len(due))


def return_rate(episodes: Sequence[Episode]) -> Ratio:
    """退单率: episodes the department returned, over all episodes."""
    return Ratio(sum(1 for e in episodes if e.returned_at is not None), len(episodes))


def reopen_rate(episodes: Sequence[Episode]) -> Ratio:
    """重办率: replied episodes whose ticket was reopened afterwards, over replied episodes."""
    replied = [e for e in episodes if e.replied_at is not None]
    return Ratio(sum(1 for e in replied if e.reopened), len(replied))


@dataclass(frozen=True)
class SurveyAnswer:
    department_id: int | None
    score: int | None
    solved: bool | None


def resolution_rate(answers: Sequence[SurveyAnswer]) -> Ratio:
    """解决率: answered surveys that say the problem was solved, over answered surveys that
    say whether it was."""
    said = [a for a in answers if a.solved is not None]
    return Ratio(sum(1 for a in said if a.solved), len(said))


def satisfaction_rate(answers: Sequence[SurveyAnswer], satisfied_min: int = 4) -> Ratio:
    """满意率: answered surveys with a score of at least ``satisfied_min`` (4 of 5 by
    default), over answered surveys with a score."""
    scored = [a for a in answers if a.score is not None]
    return Ratio(sum(1 for a in scored if (a.score or 0) >= satisfied_min), len(scored))


def ticket_kpis(
    episodes: Sequence[Episode],
    answers: Sequence[SurveyAnswer],
    now: datetime,
    *,
    satisfied_min: int = 4,
) -> dict[str, Ratio]:
    return {
        "response_rate": response_rate(episodes, now),
        "on_time_rate": on_time_rate(episodes, now),
        "resolution_rate": resolution_rate(answers),
        "satisfaction_rate": satisfaction_rate(answers, satisfied_min),
        "return_rate": return_rate(episodes),
        "reopen_rate": reopen_rate(episodes),
    }


def score(kpis: Mapping[str, Ratio], weights: Mapping[str, float]) -> float | None:
    """The monthly score out of 100: the weighted mean of the KPIs (1 − rate for return and
    reopen rates). A KPI with nothing to count is left out and the other weights scale up;
    with nothing at all there is no score."""
    total = 0.0
    used = 0.0
    for name, weight in weights.items():
        ratio = kpis.get(name)
        if ratio is None or ratio.value is None or weight <= 0:
            continue
        value = 1 - ratio.value if name in LOWER_IS_BETTER else ratio.value
        total += weight * value
        used += weight
    if used == 0:
        return None
    return round(100 * total / used, 1)


def rank(rows: Sequence[dict[str, Any]], key: str = "score") -> list[dict[str, Any]]:
    """Best first; rows without a score last; equal scores share a rank."""
    scored = sorted(
        rows, key=lambda r: (r.get(key) is None, -(r.get(key) or 0), str(r.get("code", "")))
    )
    ranked: list[dict[str, Any]] = []
    previous: float | None = None
    position = 0
    for index, row in enumerate(scored, start=1):
        value = row.get(key)
        if value is None:
            ranked.append({**row, "rank": None})
            continue
        if value != previous:
            position = index
            previous = value
        ranked.append({**row, "rank": position})
    return ranked


# --- contact-centre KPIs --------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """A contact that waited for an agent: a text conversation or a call."""

    queued_at: datetime
    answered_at: datetime | None = None  # when an agent took it
    abandoned: bool = False  # the citizen left before an agent took it
    left_message: bool = False  # a web chat citizen left a message instead of waiting

    @property
    def finished_waiting(self) -> bool:
        return self.answered_at is not None or self.abandoned or self.left_message

    @property
    def wait_seconds(self) -> float | None:
        if self.answered_at is None:
            return None
        return max(0.0, (self.answered_at - self.queued_at).total_seconds())


@dataclass
class ContactKpis:
    answer_rate: Ratio
    service_level: Ratio
    abandonment_rate: Ratio
    average_wait_seconds: float | None
    waiting: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer_rate": self.answer_rate.as_dict(),
            "service_level": self.service_level.as_dict(),
            "abandonment_rate": self.abandonment_rate.as_dict(),
            "average_wait_seconds": (
                round(self.average_wait_seconds, 1)
                if self.average_wait_seconds is not None
                else None
            ),
            "waiting": self.waiting,
        }


def contact_kpis(contacts: Sequence[Contact], threshold_seconds: float) -> ContactKpis:
    """接通率 answer rate = answered / contacts that finished waiting; service level =
    answered within ``threshold_seconds`` / answered; abandonment = abandoned / contacts
    that finished waiting. Contacts still waiting count in none of them."""
    finished = [c for c in contacts if c.finished_waiting]
    answered = [c for c in finished if c.answered_at is not None]
    waits = [c.wait_seconds for c in answered if c.wait_seconds is not None]
    return ContactKpis(
        answer_rate=Ratio(len(answered), len(finished)),
        service_level=Ratio(sum(1 for w in waits if w <= threshold_seconds), len(answered)),
        abandonment_rate=Ratio(sum(1 for c in finished if c.abandoned), len(finished)),
        average_wait_seconds=sum(waits) / len(waits) if waits else None,
        waiting=len(contacts) - len(finished),
    )
