"""What a conversation becomes: a ticket the agent opens from it, a direct answer
(直接答复) closed at the desk, or the message a waiting citizen leaves when no agent
came. One transaction each; the citizen is sent the ticket's number or the answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callcenter.actions.agents import require_desk
from callcenter.actions.conversations import load_conversation, move_conversation
from callcenter.actions.desk import held_conversation
from callcenter.actions.intake import ticket_receipt
from callcenter.actions.messages import clean_body, queue_outbound
from callcenter.actions.queues import leave_queue
from callcenter.actions.tickets import TicketDraft, apply_step, check_draft, open_ticket
from callcenter.domain.conversation import ConversationStep, check_step
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import SYSTEM, Actor, Step
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.records import TicketRecord
from callcenter.store.tables import messages


async def _citizen_text(tx: Tx, conversation_id: int) -> str:
    rows = (
        await tx.execute(
            select(messages.c.body)
            .where(messages.c.conversation_id == conversation_id, messages.c.direction == "in")
            .order_by(messages.c.id)
        )
    ).all()
    return "\n".join(r.body for r in rows)[:4000]


async def leave_message(
    rt: Runtime, conversation_id: int, text: str | None = None, *, actor: Actor = SYSTEM
) -> TicketRecord:
    """No agent came: what the citizen wrote becomes a ticket, and they get its number."""
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        step = ConversationStep.LEAVE_MESSAGE
        check_step(conversation.state, step, actor=actor, agent_id=conversation.agent_id)
        description = clean_body(text) if text else await _citizen_text(tx, conversation_id)
        if not description.strip():
            raise InvalidInput("missing_field", field="text")
        draft = check_draft(
            rt,
            TicketDraft(
                description=description,
                citizen_id=conversation.citizen_id,
                conversation_id=conversation.id,
                origin_channel=conversation.channel,
                locale=conversation.locale,
            ),
        )
        ticket = await open_ticket(tx, rt, draft, actor=actor, dispatch=True, tell_citizen=False)
        await leave_queue(tx, conversation_id, "left_message")
        conversation = await move_conversation(
            tx, conversation, step, actor=actor, ticket_id=ticket["id"]
        )
        await queue_outbound(
            tx,
            rt,
            conversation,
            ticket_receipt(rt, ticket, conversation.locale),
            actor=SYSTEM,
            kind="auto_reply",
        )
        return ticket


async def _drafting(tx: Tx, conversation_id: int, draft: TicketDraft, actor: Actor) -> Any:
    """The conversation the agent holds, and the draft filled from it (citizen, channel,
    language unless the draft names one); returns the conversation."""
    conversation, _ = await held_conversation(tx, conversation_id, ConversationStep.TICKET, actor)
    draft.citizen_id = conversation.citizen_id
    draft.conversation_id = conversation.id
    draft.origin_channel = conversation.channel
    draft.locale = draft.locale or conversation.locale
    return conversation


async def ticket_from_conversation(
    rt: Runtime, conversation_id: int, draft: TicketDraft, *, actor: Actor, dispatch: bool = True
) -> TicketRecord:
    """The agent opens a ticket for the conversation; the citizen is sent its number."""
    require_desk(actor)
    check_draft(rt, draft)
    async with rt.transaction() as tx:
        await _drafting(tx, conversation_id, draft, actor)
        # the citizen is sent the ticket's number and department (callcenter.actions.notify)
        return await open_ticket(tx, rt, draft, actor=actor, dispatch=dispatch)


async def answer_directly(
    rt: Runtime,
    conversation_id: int,
    *,
    description: str,
    answer: str,
    actor: Actor,
    category: str | None = None,
) -> TicketRecord:
    """直接答复: an inquiry answered by the agent, recorded as a ticket closed at the desk,
    and the answer sent to the citizen."""
    require_desk(actor)
    text = clean_body(answer)
    draft = check_draft(rt, TicketDraft(description=description, category=category, type="inquiry"))
    async with rt.transaction() as tx:
        conversation = await _drafting(tx, conversation_id, draft, actor)
        ticket = await open_ticket(tx, rt, draft, actor=actor, tell_citizen=False)
        # the answer goes into the conversation itself, not as a closing notice
        ticket = await apply_step(
            tx, rt, ticket["id"], Step.DIRECT_ANSWER, actor=actor, text=text, in_conversation=True
        )
        await queue_outbound(tx, rt, conversation, text, actor=actor, kind="text")
        return ticket
