"""Conversations change state only through their step table: every move is audited by
its step, and an illegal one is a 409 in the caller's language that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.conversations import load_conversation, set_conversation
from callcenter.actions.intake import Inbound, receive_message
from callcenter.domain.conversation import IllegalConversationStep
from callcenter.domain.workflow import SYSTEM
from callcenter.runtime import Runtime
from callcenter.store.tables import audit_events, conversations
from tests.helpers import assign_to


async def _assigned(rt: Runtime, phone: str) -> tuple[int, Any]:
    result = await receive_message(rt, Inbound("sms", "phone", phone, "你好，我想咨询一下"))
    return result.conversation_id, await assign_to(rt, result.conversation_id)


async def test_every_move_is_audited_by_its_step(rt: Runtime) -> None:
    conversation_id, a1 = await _assigned(rt, "+8613800000041")
    await acd.transfer_conversation(rt, conversation_id, to_queue="general", actor=a1)
    await acd.citizen_left(rt, conversation_id)
    async with rt.db.read() as conn:
        actions = (
            await conn.execute(
                select(audit_events.c.action)
                .where(
                    audit_events.c.entity_type == "conversation",
                    audit_events.c.entity_id == conversation_id,
                )
                .order_by(audit_events.c.seq)
            )
        ).scalars()
        actions_list = [a for a in actions if a != "conversation.update"]
    assert actions_list == [
        "conversation.open",
        "conversation.queue",
        "conversation.assign",
        "conversation.transfer_to_queue",
        "conversation.transfer",  # who from and to: the transfer's own record
        "conversation.citizen_left",
    ]


async def test_an_illegal_move_changes_nothing(rt: Runtime) -> None:
    conversation_id, a1 = await _assigned(rt, "+8613800000042")
    with pytest.raises(IllegalConversationStep) as raised:
        await acd.leave_message(rt, conversation_id, "路灯坏了")  # an agent has it
    assert raised.value.params == {
        "conversation_state": "assigned",
        "conversation_step": "leave_message",
    }
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        with pytest.raises(ValueError):  # no way around the table
            await set_conversation(tx, conversation, actor=SYSTEM, state="closed")
    async with rt.db.read() as conn:
        row = (
            await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
        ).one()
    assert (row.state, row.agent_id, row.ticket_id) == ("assigned", a1.id, None)


async def test_an_illegal_move_through_the_api_is_a_409_naming_state_and_step(api: Any) -> None:
    rt: Runtime = api.rt
    conversation_id, a1 = await _assigned(rt, "+8613800000043")
    await acd.end_conversation(rt, conversation_id, wrap_up_code="resolved", actor=a1)
    response = await api.post(
        f"/api/conversations/{conversation_id}/transfer",
        json={"to_queue": "general"},
        headers={"Authorization": "Bearer demo-agent1", "Accept-Language": "zh-CN"},
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "illegal_conversation_step"
    assert error["details"] == {
        "conversation_state": "closed",
        "conversation_step": "transfer_to_queue",
    }
    assert error["message"] == "会话当前为“已结束”，不能“转到队列”。"
