"""The conversation's step table, without I/O: states, steps, who may take them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.domain.conversation import (
    CONVERSATION_STEPS,
    ConversationState,
    ConversationStep,
    IllegalConversationStep,
    allowed_conversation_steps,
    check_step,
)
from callcenter.domain.errors import Forbidden
from callcenter.domain.workflow import SYSTEM, Actor, Role
from callcenter.i18n import Catalog

C, S = ConversationState, ConversationStep
AGENT = Actor(7, Role.AGENT, "坐席一")
OTHER = Actor(8, Role.AGENT, "坐席二")
SUPERVISOR = Actor(9, Role.SUPERVISOR, "班长")
ADMIN = Actor(10, Role.ADMIN, "管理员")
ACTORS = [SYSTEM, AGENT, OTHER, SUPERVISOR, ADMIN]


def test_a_message_conversation_from_the_bot_to_its_end() -> None:
    state = check_step("bot", S.QUEUE, actor=SYSTEM, agent_id=None)
    assert state is C.QUEUED
    state = check_step(state, S.OVERFLOW, actor=SYSTEM, agent_id=None)
    assert state is C.QUEUED
    state = check_step(state, S.ASSIGN, actor=AGENT, agent_id=None)
    assert state is C.ASSIGNED
    assert check_step(state, S.WRITE, actor=AGENT, agent_id=AGENT.id) is C.ASSIGNED
    assert check_step(state, S.TICKET, actor=AGENT, agent_id=AGENT.id) is C.ASSIGNED
    state = check_step(state, S.TRANSFER_TO_QUEUE, actor=AGENT, agent_id=AGENT.id)
    assert state is C.QUEUED
    state = check_step(state, S.ASSIGN, actor=OTHER, agent_id=None)
    assert check_step(state, S.END, actor=OTHER, agent_id=OTHER.id) is C.CLOSED


def test_illegal_steps_name_the_state_and_the_step() -> None:
    with pytest.raises(IllegalConversationStep) as raised:
        check_step("bot", S.ASSIGN, actor=AGENT, agent_id=None)
    assert raised.value.status == 409
    assert raised.value.params == {"conversation_state": "bot", "conversation_step": "assign"}
    for state, step in (
        ("closed", S.WRITE),
        ("closed", S.TRANSFER_TO_QUEUE),
        ("queued", S.END),
        ("assigned", S.LEAVE_MESSAGE),
        ("closed", S.QUEUE),
        ("closed", S.CITIZEN_LEFT),
    ):
        actor = SYSTEM if Role.SYSTEM in CONVERSATION_STEPS[step].roles else SUPERVISOR
        with pytest.raises(IllegalConversationStep):
            check_step(state, step, actor=actor, agent_id=AGENT.id)


def test_an_agent_works_only_on_a_conversation_they_hold() -> None:
    for step in (S.WRITE, S.TICKET, S.END, S.TRANSFER_TO_QUEUE, S.TRANSFER_TO_AGENT):
        with pytest.raises(Forbidden) as raised:
            check_step("assigned", step, actor=OTHER, agent_id=AGENT.id)
        assert raised.value.code == "not_your_conversation"
        check_step("assigned", step, actor=SUPERVISOR, agent_id=AGENT.id)
    # a waiting citizen may be answered from the queue; ending it needs it taken first
    assert check_step("queued", S.WRITE, actor=OTHER, agent_id=None) is C.QUEUED
    with pytest.raises(Forbidden):
        check_step("queued", S.END, actor=OTHER, agent_id=None)
    # another agent's closed conversation: not theirs, whatever its state
    with pytest.raises(Forbidden):
        check_step("closed", S.WRITE, actor=OTHER, agent_id=AGENT.id)


def test_who_may_take_each_step() -> None:
    for step in (S.QUEUE, S.FINISH, S.OVERFLOW, S.LEAVE_MESSAGE, S.CITIZEN_LEFT):
        for actor in (AGENT, SUPERVISOR, ADMIN):
            with pytest.raises(Forbidden) as raised:
                check_step("queued", step, actor=actor, agent_id=None)
            assert raised.value.code == "role_not_allowed"
    for step in (S.ASSIGN, S.WRITE, S.END):
        with pytest.raises(Forbidden):
            check_step("queued", step, actor=SYSTEM, agent_id=None)
        with pytest.raises(Forbidden):
            check_step("queued", step, actor=ADMIN, agent_id=None)
    assert allowed_conversation_steps("queued", Role.AGENT) == [S.ASSIGN, S.WRITE]
    assert allowed_conversation_steps("closed", Role.SYSTEM) == []


def test_every_state_and_step_has_a_label_in_both_languages() -> None:
    catalog = Catalog.core()
    for locale in ("zh-CN", "en"):
        for state in C:
            assert f"conversation_state.{state.value}" in catalog.texts[locale]
        for step in S:
            assert f"conversation_step.{step.value}" in catalog.texts[locale]
    message = catalog.text(
        "errors.illegal_conversation_step",
        "en",
        conversation_state_label=catalog.label("conversation_state", "closed", "en"),
        conversation_step_label=catalog.label("conversation_step", "write", "en"),
    )
    assert message == "“Write to the citizen” is not possible while the conversation is “Ended”."


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.sampled_from(range(len(ACTORS))))))
def test_any_sequence_of_steps_stays_in_the_table(moves: list[tuple[S, int]]) -> None:
    """Whatever is tried, the state only moves along the table, and an ended
    conversation never opens again."""
    state, holder = C.BOT, None
    for step, who in moves:
        actor = ACTORS[who]
        before = state
        try:
            state = check_step(state, step, actor=actor, agent_id=holder)
        except (IllegalConversationStep, Forbidden):
            assert state is before
            continue
        rule = CONVERSATION_STEPS[step]
        assert before in rule.sources and actor.role in rule.roles
        assert state is (rule.target or before)
        if before is C.CLOSED:
            assert state is C.CLOSED
        if step in (S.ASSIGN, S.TRANSFER_TO_AGENT):
            holder = actor.id
        elif step is S.TRANSFER_TO_QUEUE:
            holder = None
