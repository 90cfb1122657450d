"""Random walks through the workflow never break its invariants."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.config import SlaSettings
from callcenter.domain.audit import GENESIS_HASH, chain_hash, first_broken_link
from callcenter.domain.calendar import WorkCalendar
from callcenter.domain.errors import HotlineError
from callcenter.domain.sla import SlaPolicy
from callcenter.domain.workflow import (
    FINAL_STATES,
    SYSTEM,
    WORKFLOW,
    Actor,
    Priority,
    Role,
    Step,
    Ticket,
    TicketState,
    TicketType,
)

SLA = SlaPolicy(WorkCalendar(), SlaSettings())
T0 = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
ACTORS = [
    Actor(1, Role.AGENT, "agent"),
    Actor(2, Role.SUPERVISOR, "supervisor"),
    Actor(3, Role.DEPARTMENT, "dept 10", department_id=10),
    Actor(4, Role.DEPARTMENT, "dept 11", department_id=11),
    Actor(5, Role.ADMIN, "admin"),
    SYSTEM,
]
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "department_id": st.sampled_from([10, 11]),
        "reason": st.text(max_size=5),
        "text": st.text(max_size=5),
        "days": st.integers(-2, 14),
        "into_ticket_id": st.sampled_from([1, 2]),
    },
)
MOVES = st.lists(
    st.tuples(
        st.sampled_from(list(Step)),
        st.sampled_from(ACTORS),
        st.floats(0, 200),  # hours later
        PARAMS,
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    moves=MOVES,
    ticket_type=st.sampled_from(list(TicketType)),
    priority=st.sampled_from(list(Priority)),
)
def test_random_walks_keep_the_ticket_legal(moves, ticket_type, priority) -> None:  # type: ignore[no-untyped-def]
    ticket = Ticket(1, "20260928-0001", ticket_type, priority, TicketState.NEW, T0)
    now = T0
    log: list[dict[str, object]] = []
    prev = GENESIS_HASH
    for step, actor, hours, params in moves:
        now = now + timedelta(hours=hours)
        before = ticket.snapshot()
        state_before = ticket.state
        try:
            ticket.take(step, actor=actor, now=now, sla=SLA, **params)
        except HotlineError:
            assert ticket.snapshot() == before  # a refused step changes nothing
            continue
        rule = WORKFLOW[step]
        assert state_before in rule.sources
        assert actor.role in rule.roles
        assert ticket.state == (rule.target or state_before)
        assert ticket.version == before["version"] + 1
        event = {
            "seq": len(log) + 1,
            "at": now,
            "actor_id": actor.id,
            "actor_role": actor.role,
            "actor_name": actor.name,
            "entity_type": "ticket",
            "entity_id": 1,
            "action": step.value,
            "before": before,
            "after": ticket.snapshot(),
            "details": params,
        }
        event["prev_hash"] = prev
        event["hash"] = prev = chain_hash(prev, event)
        log.append(event)

        # invariants
        assert ticket.state in TicketState
        for name in ("sign_due_at", "due_at", "dispatched_at", "accepted_at", "closed_at"):
            value = getattr(ticket, name)
            assert value is None or value >= ticket.created_at, name
        if ticket.state in (TicketState.DISPATCHED, TicketState.ACCEPTED):
            assert ticket.department_id is not None
            assert ticket.due_at is not None and ticket.sign_due_at is not None
            assert ticket.due_at >= ticket.dispatched_at  # type: ignore[operator]
        if ticket.state in FINAL_STATES:
            assert ticket.closed_at is not None and ticket.closure is not None
        if ticket.state is TicketState.MERGED:
            assert ticket.merged_into_id not in (None, ticket.id)
        assert 0 <= ticket.extension_days <= SLA.settings.max_extension_days
    assert first_broken_link(log) is None
