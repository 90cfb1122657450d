"""Inbound text from any channel: the one intake path.

An adapter calls :func:`receive_message`, or stores the text in the inbox
(:meth:`callcenter.actions.inbox.Inbox.accept`), which runs :func:`take_message`
right after; either way it answers its provider only once the text is stored
(DESIGN rule 3). The message extends the citizen's open conversation
on that channel, or opens one. A fresh conversation first meets auto-intake:
when the text reports a problem that routing recognises with enough
confidence, a ticket is opened and dispatched at once and the citizen is told
its number; otherwise the conversation waits in a queue for an agent.

A provider id seen before (a retried webhook) changes nothing and returns what
happened the first time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from callcenter.actions import audit, mediations, notify, optout, surveys
from callcenter.actions.attachments import StoredFile, add_attachment
from callcenter.actions.citizens import find_or_create_citizen, guess_locale
from callcenter.actions.conversations import (
    move_conversation,
    open_conversation,
    set_conversation,
)
from callcenter.actions.messages import clean_body, queue_outbound
from callcenter.actions.queues import enqueue
from callcenter.actions.tickets import TicketDraft, check_draft, open_ticket
from callcenter.bus import events
from callcenter.domain.conversation import ConversationStep
from callcenter.domain.routing import classify
from callcenter.domain.workflow import SYSTEM, Actor
from callcenter.ports import Inbound
from callcenter.runtime import Runtime
from callcenter.store.db import Reader, Tx
from callcenter.store.queries import insert_id, row_by_id
from callcenter.store.records import TicketRecord
from callcenter.store.tables import conversations, messages, tickets


@dataclass
class BotTurn:
    """What a channel's bot sees of one inbound message, inside the intake transaction.

    A bot (e.g. Telegram's /new dialog) answers through these methods only, so
    that its work commits with the message, or not at all.
    """

    tx: Tx
    rt: Runtime
    citizen: Any
    conversation: Any
    message_id: int
    inbound: Inbound
    body: str
    ticket: TicketRecord | None = None

    async def reply(self, text: str, *, meta: dict[str, Any] | None = None) -> int:
        return await queue_outbound(
            self.tx, self.rt, self.conversation, text, actor=SYSTEM, kind="auto_reply", meta=meta
        )

    async def set_state(self, state: dict[str, Any] | None, *, close: bool = False) -> None:
        """Keep the dialog's state on the conversation (None ends the dialog).

        A conversation no agent has yet stays with the bot while the dialog runs;
        ``close`` closes it when the dialog is over. One an agent already has keeps
        its state either way.
        """
        if self.conversation.state == "bot" and close:
            self.conversation = await move_conversation(
                self.tx, self.conversation, ConversationStep.FINISH, actor=SYSTEM, bot_state=state
            )
        else:
            self.conversation = await set_conversation(
                self.tx, self.conversation, actor=SYSTEM, bot_state=state
            )

    async def attach(self, stored: StoredFile, *, kind: str, source_id: str | None) -> int:
        """Keep a file the citizen sent, on the dialog's ticket if there is one yet."""
        return await add_attachment(
            self.tx,
            stored,
            kind=kind,
            actor=SYSTEM,
            source_id=source_id,
            ticket_id=self.ticket["id"] if self.ticket else None,
            conversation_id=self.conversation.id,
        )

    async def open_ticket(self, draft: TicketDraft) -> TicketRecord:
        """A ticket from the dialog, dispatched to the routed department; the dialog ends."""
        draft.citizen_id = self.citizen.id
        draft.conversation_id = self.conversation.id
        draft.origin_channel = self.inbound.channel
        draft.locale = self.conversation.locale
        check_draft(self.rt, draft)
        self.ticket = await open_ticket(
            self.tx, self.rt, draft, actor=SYSTEM, dispatch=True, tell_citizen=False
        )
        await self.set_state(None, close=True)
        await self.reply(ticket_receipt(self.rt, self.ticket, self.conversation.locale))
        return self.ticket


BotHook = Callable[[BotTurn], Awaitable[bool]]


@dataclass
class IntakeResult:
    duplicate: bool
    citizen_id: int
    conversation_id: int
    message_id: int
    conversation_state: str
    queue: str | None
    ticket: TicketRecord | None
    reply_message_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_WITH_CONVERSATION = select(messages.c.id.label("message_id"), conversations).join(
    conversations, conversations.c.id == messages.c.conversation_id
)
_SEEN = _WITH_CONVERSATION.where(
    messages.c.channel == bindparam("channel"),
    messages.c.direction == "in",
    messages.c.provider_id == bindparam("provider_id"),
)
_OF_MESSAGE = _WITH_CONVERSATION.where(messages.c.id == bindparam("message_id"))
_OPEN_CONVERSATION = (
    select(conversations)
    .where(
        conversations.c.citizen_id == bindparam("citizen_id"),
        conversations.c.channel == bindparam("channel"),
        conversations.c.address == bindparam("address"),
        conversations.c.state != "closed",
    )
    .order_by(conversations.c.id.desc())
    .limit(1)
)


async def _existing(tx: Tx, inbound: Inbound) -> IntakeResult | None:
    if inbound.provider_id is None:
        return None
    row = (
        await tx.execute(_SEEN, {"channel": inbound.channel, "provider_id": inbound.provider_id})
    ).first()
    return None if row is None else await _result(tx, row, duplicate=True)


async def intake_result(conn: Reader, message_id: int) -> IntakeResult | None:
    """What became of a stored inbound message (its conversation as it is now)."""
    row = (await conn.execute(_OF_MESSAGE, {"message_id": message_id})).first()
    return None if row is None else await _result(conn, row, duplicate=False)


async def _result(conn: Reader, row: Any, *, duplicate: bool) -> IntakeResult:
    ticket = None
    if row.ticket_id is not None:
        found = await row_by_id(conn, tickets, row.ticket_id)
        ticket = found._asdict() if found else None
    return IntakeResult(
        duplicate, row.citizen_id, row.id, row.message_id, row.state, row.queue, ticket
    )


async def _open_conversation(
    tx: Tx, rt: Runtime, citizen: Any, inbound: Inbound, *, actor: Actor
) -> Any:
    found = (
        await tx.execute(
            _OPEN_CONVERSATION,
            {"citizen_id": citizen.id, "channel": inbound.channel, "address": inbound.address},
        )
    ).first()
    if found is not None:
        return found
    now = tx.state["now"]
    values = {
        "citizen_id": citizen.id,
        "channel": inbound.channel,
        "address": inbound.address,
        "service_address": inbound.service_address,
        "state": "bot",
        "kind": "message",
        "locale": citizen.locale,
        "created_at": now,
        "updated_at": now,
    }
    return await open_conversation(tx, values, actor=actor)


_TOUCH_CONVERSATION = update(conversations).where(conversations.c.id == bindparam("b_id"))


async def receive_message(
    rt: Runtime, inbound: Inbound, *, actor: Actor = SYSTEM, bot: BotHook | None = None
) -> IntakeResult:
    """Persist an inbound text and decide where it goes, in one transaction.

    Idempotent on ``provider_id``. Adapters whose provider wants a quick answer
    store the text in the inbox instead (:meth:`callcenter.actions.inbox.Inbox.accept`),
    which hands it to :func:`take_message` right after.
    """
    async with rt.transaction() as tx:
        return await take_message(tx, rt, inbound, actor=actor, bot=bot)


async def take_message(
    tx: Tx,
    rt: Runtime,
    inbound: Inbound,
    *,
    actor: Actor = SYSTEM,
    bot: BotHook | None = None,
    unseen: bool = False,
) -> IntakeResult:
    """The intake of one inbound text inside the caller's transaction.

    After the message is stored: a stop/start word, then a survey answer, then
    the channel's ``bot`` may each take it; what none takes goes to auto-intake
    or to an agent. ``unseen``: the caller already knows the provider id is new
    (the inbox's unique key), so it is not looked up again.
    """
    body = clean_body(inbound.body)
    seen = None if unseen else await _existing(tx, inbound)
    if seen is not None:
        return seen
    now = tx.state["now"]
    citizen, new_citizen = await find_or_create_citizen(
        tx,
        rt,
        kind=inbound.identity_kind,
        value=inbound.address,
        actor=actor,
        name=inbound.name,
        locale=inbound.locale or guess_locale(body, rt.settings.default_locale),
    )
    conversation = await _open_conversation(tx, rt, citizen, inbound, actor=actor)
    message = {
        "conversation_id": conversation.id,
        "channel": inbound.channel,
        "direction": "in",
        "body": body,
        "provider_id": inbound.provider_id,
        "status": "received",
        "kind": "text",
        "essential": True,
        "meta": inbound.meta,
        "created_at": now,
    }
    message_id = await insert_id(tx, messages, message)
    await audit.record(
        tx,
        actor=actor,
        entity_type="message",
        entity_id=message_id,
        action="message.receive",
        after={
            "conversation_id": conversation.id,
            "body": body,
            "provider_id": inbound.provider_id,
        },
    )
    tx.publish(events.message_created({"id": message_id, **message}, conversation._asdict(), now))

    ticket: TicketRecord | None = None
    reply_id: int | None = None
    locale = conversation.locale
    turn = BotTurn(tx, rt, citizen, conversation, message_id, inbound, body)
    if bot is not None and await bot(turn):
        conversation, ticket = turn.conversation, turn.ticket
    elif (
        await optout.handle_keywords(tx, rt, inbound.channel, inbound.address, conversation, body)
        or (  # someone new to us has no survey to answer
            not new_citizen
            and await surveys.answer_from_text(
                tx, rt, citizen.id, inbound.channel, conversation, body
            )
        )
        or (  # "拒绝" / "decline" in answer to a mediation invitation
            not new_citizen
            and await mediations.decline_from_text(tx, rt, citizen.id, conversation, body)
        )
    ):
        # a keyword, a survey answer or a declined invitation: handled, no agent and no
        # new ticket needed
        if conversation.state == "bot":
            conversation = await move_conversation(
                tx, conversation, ConversationStep.FINISH, actor=actor, last_message_at=now
            )
    elif conversation.state == "bot":
        ticket = await _auto_ticket(tx, rt, conversation, citizen, inbound, body)
        if ticket is not None:
            conversation = await move_conversation(
                tx,
                conversation,
                ConversationStep.FINISH,
                actor=actor,
                ticket_id=ticket["id"],
                last_message_at=now,
            )
            reply_id = await queue_outbound(
                tx,
                rt,
                conversation,
                ticket_receipt(rt, ticket, locale),
                actor=SYSTEM,
                kind="auto_reply",
            )
        else:
            conversation = await enqueue(
                tx,
                rt,
                conversation,
                actor=actor,
                queue=rt.settings.intake.default_queue,
                last_message_at=now,
            )
            if rt.settings.intake.acknowledge_queued:
                reply_id = await queue_outbound(
                    tx,
                    rt,
                    conversation,
                    rt.text("intake.queued", locale, hotline=rt.settings.hotline_number),
                    actor=SYSTEM,
                    kind="auto_reply",
                )
    else:
        await tx.execute(
            _TOUCH_CONVERSATION,
            {"b_id": conversation.id, "last_message_at": now, "updated_at": now},
        )
    return IntakeResult(
        False,
        citizen.id,
        conversation.id,
        message_id,
        conversation.state,
        conversation.queue,
        ticket,
        reply_id,
    )


async def _auto_ticket(
    tx: Tx, rt: Runtime, conversation: Any, citizen: Any, inbound: Inbound, body: str
) -> TicketRecord | None:
    settings = rt.settings.intake
    wanted = settings.auto_ticket if inbound.auto_ticket is None else inbound.auto_ticket
    if not wanted:
        return None
    found = classify(body, rt.directory.categories)
    if found.category_code is None or found.confidence < settings.min_confidence:
        return None
    draft = check_draft(
        rt,
        TicketDraft(
            description=body,
            category=found.category_code,
            type=found.ticket_type,
            address=inbound.address_text,
            lat=inbound.lat,
            lon=inbound.lon,
            citizen_id=citizen.id,
            conversation_id=conversation.id,
            origin_channel=inbound.channel,
            locale=conversation.locale,
            classification=found,
        ),
    )
    # the caller closes the conversation on the ticket
    return await open_ticket(
        tx, rt, draft, actor=SYSTEM, dispatch=True, tell_citizen=False, link_conversation=False
    )


def ticket_receipt(rt: Runtime, ticket: TicketRecord, locale: str) -> str:
    """The text that tells a citizen their case was taken: number, department, due date."""
    key = "notify.ticket_dispatched_new" if ticket["department_id"] else "notify.ticket_created"
    return notify.render(rt, key, locale, notify.ticket_params(rt, ticket, locale))


async def reply_to_sender(rt: Runtime, inbound: Inbound, text: str) -> int:
    """Answer someone whose message could not be taken (too long, unreadable...).

    The answer goes through the outbox on their conversation like any other.
    """
    async with rt.transaction() as tx:
        citizen, _ = await find_or_create_citizen(
            tx,
            rt,
            kind=inbound.identity_kind,
            value=inbound.address,
            actor=SYSTEM,
            name=inbound.name,
            locale=inbound.locale,
        )
        conversation = await _open_conversation(tx, rt, citizen, inbound, actor=SYSTEM)
        return await queue_outbound(tx, rt, conversation, text, actor=SYSTEM, kind="auto_reply")
