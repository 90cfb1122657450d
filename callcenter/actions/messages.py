"""Outbound messages: stored, queued in the outbox, delivered by the channel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from callcenter.actions import audit
from callcenter.actions.conversations import load_conversation
from callcenter.actions.deliveries import (
    ACCEPTED,
    RETRY,
    UNFINISHED,
    record_attempt,
    unfinished_attempt,
)
from callcenter.bus import events
from callcenter.domain import delivery
from callcenter.domain.conversation import ConversationStep, check_step
from callcenter.domain.errors import Conflict, InvalidInput, NotFound, TooLarge
from callcenter.domain.workflow import SYSTEM, Actor
from callcenter.jobs.executor import PermanentFailure, RetryLater
from callcenter.jobs.outbox import Job, JobOutcome, enqueue, finish_in
from callcenter.ports import ChannelPort, DeliveryError, OutboundMessage, SendResult
from callcenter.runtime import Runtime
from callcenter.store.db import Conn, Tx
from callcenter.store.queries import insert_id, insert_ignore, row_by_id
from callcenter.store.tables import conversations, jobs, messages, opt_outs

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
        raise TooLarge("message_too_long", limit=limit, length=len(text))
    return text


async def _queue(tx: Tx, rt: Runtime, values: dict[str, Any], *, actor: Actor, run_at: Any) -> int:
    now = tx.state["now"]
    values = {
        "direction": "out",
        "status": "queued",
        "author_id": actor.id,
        "essential": True,
        "urgent": False,
        "meta": {},
        "created_at": now,
        **values,
    }
    dedupe_key = values.get("dedupe_key")
    if dedupe_key is not None:
        if not await insert_ignore(tx, messages, values, conflict=("dedupe_key",)):
            return 0  # made before by an earlier run of the same job
        message_id = int(
            (
                await tx.execute(select(messages.c.id).where(messages.c.dedupe_key == dedupe_key))
            ).scalar_one()
        )
    else:
        message_id = await insert_id(tx, messages, values)
    await enqueue(
        tx,
        DELIVER,
        {"message_id": message_id},
        key=f"deliver:{message_id}",
        now=now,
        run_at=run_at,
        max_attempts=rt.settings.jobs.max_attempts,
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="message",
        entity_id=message_id,
        action="message.queue",
        after={
            k: values.get(k)
            for k in ("conversation_id", "to_address", "kind", "body", "ticket_id", "urgent")
            if values.get(k) is not None
        },
    )
    return message_id


async def queue_outbound(
    tx: Tx,
    rt: Runtime,
    conversation: Any,
    body: str,
    *,
    actor: Actor,
    kind: str = "text",
    essential: bool = True,
    urgent: bool = False,
    meta: dict[str, Any] | None = None,
    ticket_id: int | None = None,
    run_at: Any = None,
) -> int:
    """Store an outbound message on a conversation and put its delivery in the outbox."""
    values = {
        "conversation_id": conversation.id,
        "channel": conversation.channel,
        "body": body,
        "kind": kind,
        "essential": essential,
        "urgent": urgent,
        "meta": meta or {},
        "ticket_id": ticket_id,
    }
    message_id = await _queue(tx, rt, values, actor=actor, run_at=run_at)
    tx.publish(
        events.message_created(
            {
                "id": message_id,
                "direction": "out",
                "status": "queued",
                "created_at": tx.state["now"],  # the desk shows when it was written
                **values,
            },
            conversation._asdict(),
            tx.state["now"],
        )
    )
    return message_id


async def queue_staff_sms(
    tx: Tx,
    rt: Runtime,
    address: str,
    body: str,
    *,
    actor: Actor,
    kind: str,
    user_id: int | None = None,
    ticket_id: int | None = None,
    urgent: bool = False,
    dedupe_key: str | None = None,
) -> int:
    """An SMS to a member of staff (reminders, alerts): not part of any conversation.

    Returns 0 when a message with the same ``dedupe_key`` was already made.
    """
    values = {
        "conversation_id": None,
        "channel": "sms",
        "to_address": address,
        "recipient_user_id": user_id,
        "body": body,
        "kind": kind,
        "essential": False,
        "urgent": urgent,
        "ticket_id": ticket_id,
        "dedupe_key": dedupe_key,
    }
    return await _queue(tx, rt, values, actor=actor, run_at=None)


async def send_reply(rt: Runtime, conversation_id: int, body: Any, *, actor: Actor) -> int:
    """An agent writes to the citizen on the conversation's channel.

    Only into an open conversation that is theirs or nobody's yet (supervisors:
    any open one): :data:`callcenter.domain.conversation.CONVERSATION_STEPS`.
    """
    text = clean_body(body)
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        check_step(
            conversation.state, ConversationStep.WRITE, actor=actor, agent_id=conversation.agent_id
        )
        if rt.channels.get(conversation.channel) is None:
            raise Conflict("channel_unavailable", channel=conversation.channel)
        await tx.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(updated_at=tx.state["now"])
        )
        return await queue_outbound(tx, rt, conversation, text, actor=actor, kind="text")


_SET_DELIVERY = update(messages).where(messages.c.id == bindparam("b_id"))


async def record_delivery(
    rt: Runtime,
    message_id: int,
    *,
    status: str,
    provider_id: str | None = None,
    error: str | None = None,
    job: Job | None = None,
    outcome: dict[str, Any] | None = None,
) -> None:
    """Store what the provider said about a message (sent, delivered, failed...).

    A status never moves backwards for the same provider message (see
    :mod:`callcenter.domain.delivery`): a report that would is ignored. From a
    delivery ``job``, the job is recorded done with ``outcome`` in the same
    transaction.
    """
    async with rt.transaction() as tx:
        row = await row_by_id(tx, messages, message_id)
        if row is None:
            raise NotFound("message_not_found", id=message_id)
        if job is not None:
            await finish_in(tx, job, outcome)
        if not delivery.advances(row.status, row.provider_id, status, provider_id):
            return
        now = tx.state["now"]
        values: dict[str, Any] = {"status": status, "error": error}
        if provider_id is not None:
            values["provider_id"] = provider_id
        if status == "sent" and row.sent_at is None:
            values["sent_at"] = now
        await tx.execute(_SET_DELIVERY, {"b_id": message_id, **values})
        await audit.record(
            tx,
            actor=SYSTEM,
            entity_type="message",
            entity_id=message_id,
            action="message.delivery",
            before={"status": row.status},
            after=values,
        )
        if row.conversation_id is not None:
            conversation = await row_by_id(tx, conversations, row.conversation_id)
            tx.publish(
                events.message_created({**row._asdict(), **values}, conversation._asdict(), now)
            )


QUIET_KINDS = frozenset({"notice", "survey", "reminder"})  # conversation replies are not held


async def is_opted_out(conn: Conn, channel: str, address: str) -> bool:
    found = await conn.scalar(
        select(opt_outs.c.id).where(opt_outs.c.channel == channel, opt_outs.c.address == address)
    )
    return found is not None


ORDER_WINDOW = timedelta(seconds=60)


_EARLIER_QUEUED = select(messages.c.id).where(
    messages.c.conversation_id == bindparam("conversation_id"),
    messages.c.id < bindparam("message_id"),
    messages.c.direction == "out",
    messages.c.status == "queued",
)
_DELIVERIES_DUE = select(func.max(jobs.c.run_at)).where(
    jobs.c.key.in_(bindparam("keys", expanding=True)),
    or_(
        jobs.c.state == "running",
        and_(jobs.c.state == "pending", jobs.c.run_at <= bindparam("horizon")),
    ),
)


async def _earlier_due(conn: Conn, conversation_id: int, message_id: int, now: Any) -> Any:
    """When an earlier message of the conversation is about to go (within a minute), or None.

    Messages held longer (quiet hours, long backoffs after failures) do not hold
    up the ones behind them. Most messages have none queued before them: one
    indexed look at the conversation says so.
    """
    earlier = (
        await conn.execute(
            _EARLIER_QUEUED, {"conversation_id": conversation_id, "message_id": message_id}
        )
    ).scalars()
    keys = [f"deliver:{found}" for found in earlier]
    if not keys:
        return None
    return await conn.scalar(_DELIVERIES_DUE, {"keys": keys, "horizon": now + ORDER_WINDOW})


_TO_DELIVER = (
    select(
        messages, conversations.c.address, conversations.c.service_address, conversations.c.locale
    )
    .outerjoin(conversations, conversations.c.id == messages.c.conversation_id)
    .where(messages.c.id == bindparam("message_id"))
)


async def _sent_before(
    rt: Runtime, channel: ChannelPort, outbound: OutboundMessage
) -> SendResult | None:
    """If an earlier attempt started and never got its answer recorded (the process died
    while the provider was being called), whether the provider has the message already.

    Found: the attempt is completed as accepted with the provider's id. Not found:
    it is closed as ``unfinished``, and the caller sends.
    """
    started = await unfinished_attempt(rt, outbound.message_id)
    if started is None:
        return None
    found = await channel.find_sent(outbound, started.at)
    if found is not None:
        await record_attempt(
            rt,
            outbound.message_id,
            attempt=started.attempt,
            outcome=ACCEPTED,
            provider_id=found.provider_id,
            detail={"found_at_provider": True, **found.detail},
        )
        return found
    await record_attempt(
        rt,
        outbound.message_id,
        attempt=started.attempt,
        outcome=RETRY,
        error_code=UNFINISHED,
        detail={"found_at_provider": False},
    )
    return None


async def deliver_message(rt: Runtime, job: Job) -> JobOutcome | None:
    """Job handler: hand a stored message to its channel, once.

    A message already marked sent is not sent again, and the adapter gets an
    idempotency key tied to the message, so a job repeated after a crash has no
    second effect where the provider honours it. Non-essential messages (surveys,
    reminders) to a number that opted out are suppressed; notices, surveys and
    reminders wait out the quiet hours unless urgent.
    """
    message_id = int(job.payload["message_id"])
    async with rt.db.read() as conn:
        row = (await conn.execute(_TO_DELIVER, {"message_id": message_id})).first()
        if row is None:
            raise PermanentFailure(f"message {message_id} does not exist")
        if row.status in ("sent", "delivered", "undelivered", "suppressed") or (
            row.status == "failed" and row.provider_id is not None
        ):
            # the provider took it once already (a later report may say it failed)
            return {"skipped": row.status, "provider_id": row.provider_id}
        address = row.address or row.to_address
        opted_out = not row.essential and await is_opted_out(conn, row.channel, address)
        behind = (
            await _earlier_due(conn, row.conversation_id, message_id, rt.clock.now())
            if row.conversation_id is not None
            else None
        )
    if behind is not None:
        # one conversation's messages leave in the order they were written
        wait = max(0.2, (behind - rt.clock.now()).total_seconds() + 0.05)
        raise RetryLater(wait, "an earlier message of the conversation goes first", count=False)
    if opted_out:
        skipped = {"skipped": "opted out"}
        await record_delivery(
            rt, message_id, status="suppressed", error="opted out", job=job, outcome=skipped
        )
        return skipped
    quiet = rt.quiet_hours
    now = rt.clock.now()
    if quiet is not None and row.kind in QUIET_KINDS and not row.urgent and quiet.is_quiet(now):
        wait = (quiet.next_allowed(now) - now).total_seconds()
        raise RetryLater(wait, "quiet hours", count=False)
    channel = rt.channels.get(row.channel)
    if channel is None:
        raise RetryLater(300, f"no adapter for channel {row.channel!r} is running")
    outbound = OutboundMessage(
        message_id=message_id,
        channel=row.channel,
        to=address,
        sender=row.service_address or rt.settings.hotline_number,
        body=row.body,
        locale=row.locale or rt.settings.default_locale,
        kind=row.kind,
        essential=row.essential,
        idempotency_key=f"msg-{message_id}",
        meta=dict(row.meta or {}),
    )
    try:
        found = await _sent_before(rt, channel, outbound)
        if found is not None:
            sent = {"provider_id": found.provider_id, "status": found.status, "found": True}
            await record_delivery(
                rt,
                message_id,
                status=found.status,
                provider_id=found.provider_id,
                job=job,
                outcome=sent,
            )
            return sent
        result = await channel.send(outbound)
    except DeliveryError as exc:
        if exc.permanent or (job.attempts >= job.max_attempts and exc.count_attempt):
            await record_delivery(rt, message_id, status="failed", error=f"{exc.code}: {exc}")
            raise PermanentFailure(str(exc)) from exc
        if exc.retry_after is not None:
            raise RetryLater(exc.retry_after, str(exc), count=exc.count_attempt) from exc
        raise
    sent = {"provider_id": result.provider_id, "status": result.status}
    await record_delivery(
        rt, message_id, status=result.status, provider_id=result.provider_id, job=job, outcome=sent
    )
    return sent
