"""Outbound messages: stored, queued in the outbox, delivered by the channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.bus import events
from callcenter.channel import DeliveryError, OutboundMessage
from callcenter.domain import delivery
from callcenter.domain.errors import Conflict, InvalidInput, NotFound
from callcenter.domain.workflow import SYSTEM, Actor
from callcenter.jobs.executor import PermanentFailure, RetryLater
from callcenter.jobs.outbox import Job, enqueue
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import conversations, messages

MAX_BODY = 4000
DELIVER = "message.deliver"


def clean_body(body: Any, *, limit: int = MAX_BODY) -> str:
    """Validate a message text: a non-empty string within ``limit`` characters."""
    if not isinstance(body, str):
        raise InvalidInput("invalid_field", field="body")
    text = body.replace("\x00", "").strip()
    if not text:
        raise InvalidInput("missing_field", field="body")
    if len(text) > limit:
        raise InvalidInput("message_too_long", limit=limit, length=len(text))
    return text


async def queue_outbound(
    tx: Tx,
    rt: Runtime,
    conversation: Any,
    body: str,
    *,
    actor: Actor,
    kind: str = "text",
    essential: bool = True,
    meta: dict[str, Any] | None = None,
    run_at: Any = None,
) -> int:
    """Store an outbound message on a conversation and put its delivery in the outbox."""
    now = tx.state["now"]
    values = {
        "conversation_id": conversation.id,
        "channel": conversation.channel,
        "direction": "out",
        "body": body,
        "status": "queued",
        "author_id": actor.id,
        "kind": kind,
        "essential": essential,
        "meta": meta or {},
        "created_at": now,
    }
    message_id = (await tx.execute(messages.insert().values(**values))).inserted_primary_key[0]
    await enqueue(
        tx,
        DELIVER,
        {"message_id": message_id},
        key=f"deliver:{message_id}",
        now=now,
        run_at=run_at,
        max_attempts=rt.settings.jobs.max_attempts,
    )
    await tx.execute(
        update(conversations).where(conversations.c.id == conversation.id).values(updated_at=now)
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="message",
        entity_id=message_id,
        action="message.queue",
        after={"conversation_id": conversation.id, "kind": kind, "body": body},
    )
    tx.publish(events.message_created({"id": message_id, **values}, conversation._asdict(), now))
    return int(message_id)


async def send_reply(rt: Runtime, conversation_id: int, body: Any, *, actor: Actor) -> int:
    """An agent writes to the citizen on the conversation's channel."""
    text = clean_body(body)
    async with rt.transaction() as tx:
        conversation = (
            await tx.execute(select(conversations).where(conversations.c.id == conversation_id))
        ).first()
        if conversation is None:
            raise NotFound("conversation_not_found", id=conversation_id)
        if rt.channels.get(conversation.channel) is None:
            raise Conflict("channel_unavailable", channel=conversation.channel)
        return await queue_outbound(tx, rt, conversation, text, actor=actor, kind="text")


async def record_delivery(
    rt: Runtime,
    message_id: int,
    *,
    status: str,
    provider_id: str | None = None,
    error: str | None = None,
) -> None:
    """Store what the provider said about a message (sent, delivered, failed...).

    A status never moves backwards for the same provider message (see
    :mod:`callcenter.domain.delivery`): a report that would is ignored.
    """
    async with rt.transaction() as tx:
        row = (await tx.execute(select(messages).where(messages.c.id == message_id))).first()
        if row is None:
            raise NotFound("message_not_found", id=message_id)
        if not delivery.advances(row.status, row.provider_id, status, provider_id):
            return
        now = tx.state["now"]
        values: dict[str, Any] = {"status": status, "error": error}
        if provider_id is not None:
            values["provider_id"] = provider_id
        if status == "sent" and row.sent_at is None:
            values["sent_at"] = now
        await tx.execute(update(messages).where(messages.c.id == message_id).values(**values))
        await audit.record(
            tx,
            actor=SYSTEM,
            entity_type="message",
            entity_id=message_id,
            action="message.delivery",
            before={"status": row.status},
            after=values,
        )
        conversation = (
            await tx.execute(select(conversations).where(conversations.c.id == row.conversation_id))
        ).one()
        tx.publish(events.message_created({**row._asdict(), **values}, conversation._asdict(), now))


async def deliver_message(rt: Runtime, job: Job) -> dict[str, Any] | None:
    """Job handler: hand a stored message to its channel, once.

    A message already marked sent is not sent again, and the adapter gets an
    idempotency key tied to the message, so a job repeated after a crash has no
    second effect where the provider honours it.
    """
    message_id = int(job.payload["message_id"])
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    messages,
                    conversations.c.address,
                    conversations.c.service_address,
                    conversations.c.locale,
                )
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(messages.c.id == message_id)
            )
        ).first()
    if row is None:
        raise PermanentFailure(f"message {message_id} does not exist")
    if row.status in ("sent", "delivered"):
        return {"skipped": "already sent", "provider_id": row.provider_id}
    channel = rt.channels.get(row.channel)
    if channel is None:
        raise RetryLater(300, f"no adapter for channel {row.channel!r} is running")
    outbound = OutboundMessage(
        message_id=message_id,
        channel=row.channel,
        to=row.address,
        sender=row.service_address,
        body=row.body,
        locale=row.locale,
        kind=row.kind,
        essential=row.essential,
        idempotency_key=f"msg-{message_id}",
        meta=dict(row.meta or {}),
    )
    try:
        result = await channel.send(outbound)
    except DeliveryError as exc:
        if exc.permanent or job.attempts >= job.max_attempts:
            await record_delivery(rt, message_id, status="failed", error=f"{exc.code}: {exc}")
            raise PermanentFailure(str(exc)) from exc
        if exc.retry_after is not None:
            raise RetryLater(exc.retry_after, str(exc)) from exc
        raise
    await record_delivery(rt, message_id, status=result.status, provider_id=result.provider_id)
    return {"provider_id": result.provider_id, "status": result.status}
