"""The conversation and its steps, as a table you can read (like the ticket's workflow).

States::

    bot ──queue──▶ queued ──assign──▶ assigned ──end──▶ closed
     │               │  ▲                 │  │
     │               │  └─transfer_to_queue┘  └─transfer_to_agent─▶ assigned
     │               ├──overflow──▶ queued (another queue)
     │               ├──leave_message──▶ closed (a ticket)
     │               └──finish──▶ closed (the IVR took it back: a callback task instead)
     │        assigned ──agent_lost──▶ queued (a call whose agent's leg dropped waits again)
     ├──finish──▶ closed (the bot or auto-intake answered: a ticket, STOP, a survey answer)
     └──citizen_left──▶ closed (from bot, queued or assigned: the chat closed, the caller hung up)

A conversation is made in ``bot`` (a message, a call) or straight in ``queued``
(a callback task keeps the place of the call it came from). Steps that keep the
state: ``write`` (an agent writes to the citizen) and ``ticket`` (an agent opens
a ticket or answers directly from the conversation). ``end`` also runs on a
conversation the citizen already left while an agent held it: the agent still
wraps it up (its stay in the queue is still open until then).

:data:`CONVERSATION_STEPS` says, for every step, the states it may start
from, the state it leads to, and the roles that may take it; :func:`check_step`
is the one place that reads it. No I/O here: the actions load the row, ask
:func:`check_step`, then write.

**Whose conversation**: an agent works only on a conversation they hold
(``conversations.agent_id``); another agent's gets 403 ``not_your_conversation``,
for every step marked ``own``. Writing is also open on a conversation nobody
holds yet (a citizen waiting in the queue may be answered from it).
Supervisors may work on any.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callcenter.domain.errors import Conflict, Forbidden
from callcenter.domain.workflow import Actor, Role


class ConversationState(StrEnum):
    BOT = "bot"  # with the bot, the IVR or auto-intake; no queue yet
    QUEUED = "queued"  # waiting for an agent
    ASSIGNED = "assigned"  # an agent has it
    CLOSED = "closed"


class ConversationStep(StrEnum):
    QUEUE = "queue"
    FINISH = "finish"
    OVERFLOW = "overflow"
    ASSIGN = "assign"
    TRANSFER_TO_QUEUE = "transfer_to_queue"
    TRANSFER_TO_AGENT = "transfer_to_agent"
    WRITE = "write"
    TICKET = "ticket"
    END = "end"
    LEAVE_MESSAGE = "leave_message"
    CITIZEN_LEFT = "citizen_left"
    TAKE_OVER = "take_over"  # a supervisor takes a conversation over from its agent
    AGENT_LOST = "agent_lost"  # a call's agent leg dropped: the caller waits again


@dataclass(frozen=True)
class ConversationRule:
    """One row of the table."""

    step: ConversationStep
    sources: frozenset[ConversationState]
    target: ConversationState | None  # None: the state stays
    roles: frozenset[Role]
    own: bool = False  # an agent only on a conversation they hold
    unheld: bool = False  # ... or on one nobody holds yet


C, R = ConversationState, Role
DESK = frozenset({R.AGENT, R.SUPERVISOR})
SYSTEM_ONLY = frozenset({R.SYSTEM})


def _rule(
    step: ConversationStep,
    sources: set[ConversationState],
    target: ConversationState | None,
    roles: frozenset[Role],
    *,
    own: bool = False,
    unheld: bool = False,
) -> ConversationRule:
    return ConversationRule(step, frozenset(sources), target, roles, own, unheld)


S = ConversationStep
CONVERSATION_STEPS: dict[ConversationStep, ConversationRule] = {
    rule.step: rule
    for rule in (
        _rule(S.QUEUE, {C.BOT}, C.QUEUED, SYSTEM_ONLY),
        _rule(S.FINISH, {C.BOT, C.QUEUED}, C.CLOSED, SYSTEM_ONLY),
        _rule(S.OVERFLOW, {C.QUEUED}, C.QUEUED, SYSTEM_ONLY),
        _rule(S.ASSIGN, {C.QUEUED}, C.ASSIGNED, DESK),
        _rule(S.TRANSFER_TO_QUEUE, {C.ASSIGNED}, C.QUEUED, DESK, own=True),
        _rule(S.TRANSFER_TO_AGENT, {C.ASSIGNED}, C.ASSIGNED, DESK, own=True),
        _rule(S.WRITE, {C.BOT, C.QUEUED, C.ASSIGNED}, None, DESK, own=True, unheld=True),
        _rule(S.TICKET, {C.ASSIGNED, C.CLOSED}, None, DESK, own=True),
        _rule(S.END, {C.ASSIGNED, C.CLOSED}, C.CLOSED, DESK, own=True),
        _rule(S.LEAVE_MESSAGE, {C.QUEUED}, C.CLOSED, SYSTEM_ONLY),
        _rule(S.CITIZEN_LEFT, {C.BOT, C.QUEUED, C.ASSIGNED}, C.CLOSED, SYSTEM_ONLY),
        _rule(S.TAKE_OVER, {C.ASSIGNED}, C.ASSIGNED, frozenset({R.SUPERVISOR})),
        _rule(S.AGENT_LOST, {C.ASSIGNED}, C.QUEUED, SYSTEM_ONLY),
    )
}
del C, R, S

OPEN_STATES = frozenset(ConversationState) - {ConversationState.CLOSED}


class IllegalConversationStep(Conflict):
    """A step the conversation's current state does not allow (409, naming both)."""

    default_code = "illegal_conversation_step"

    def __init__(self, *, state: str, step: str) -> None:
        super().__init__(
            "illegal_conversation_step", conversation_state=state, conversation_step=step
        )


def check_step(
    state: str, step: ConversationStep, *, actor: Actor, agent_id: int | None
) -> ConversationState:
    """The state ``step`` leads to from ``state``, or raise without changing anything.

    ``agent_id`` is the agent who holds the conversation (None: nobody).
    """
    rule = CONVERSATION_STEPS[step]
    if actor.role not in rule.roles:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    if (
        rule.own
        and actor.role is Role.AGENT
        and agent_id != actor.id
        and not (rule.unheld and agent_id is None)
    ):
        raise Forbidden("not_your_conversation")
    current = ConversationState(state)
    if current not in rule.sources:
        raise IllegalConversationStep(state=current.value, step=step.value)
    return rule.target or current


def allowed_conversation_steps(state: str, role: Role) -> list[ConversationStep]:
    """The steps a role may take from a state (ignoring whose conversation it is)."""
    current = ConversationState(state)
    return [r.step for r in CONVERSATION_STEPS.values() if current in r.sources and role in r.roles]
