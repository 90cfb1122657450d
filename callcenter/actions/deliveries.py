"""What providers answered about outbound messages: each attempt, and later status reports.

An SMS gateway calls :func:`record_attempt` once per attempt to hand a message
to its provider, whatever came of it (accepted, to be retried, refused for
good), and :func:`record_provider_status` when the provider reports on a
message later (Twilio's status callback). Each runs in its own transaction
with an audit event.

An attempt is recorded *before* the provider is called (:func:`start_attempt`,
outcome ``started``) and completed with the provider's answer
(:func:`record_attempt` with ``attempt=``). An accepted attempt marks the
message ``sent`` with the provider's id in the same transaction. A process
that dies between the provider's acceptance and that commit leaves a
``started`` attempt behind: the ``message.deliver`` job that runs again finds
it (:func:`unfinished_attempt`) and asks the provider whether the message went
out (:meth:`~callcenter.channel.Channel.find_sent`) before it sends again, so
the citizen does not get the text twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update

from callcenter.actions import audit
from callcenter.bus import events
from callcenter.domain import delivery
from callcenter.domain.errors import NotFound
from callcenter.domain.workflow import SYSTEM, Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import row_by_id
from callcenter.store.tables import conversations, delivery_attempts, messages

log = logging.getLogger(__name__)

STARTED = "started"  # the provider is being called; no answer recorded yet
ACCEPTED = "accepted"  # the provider took the message
RETRY = "retry"  # it did not, and another attempt may succeed (5xx, 429, timeout)
FAILED = "failed"  # it did not, and never will (invalid number, unsubscribed)
OUTCOMES = (STARTED, ACCEPTED, RETRY, FAILED)
UNFINISHED = "unfinished"  # error code of a started attempt the provider never had


async def start_attempt(
    rt: Runtime, message_id: int, *, detail: dict[str, Any] | None = None, actor: Actor = SYSTEM
) -> int:
    """Record that the provider is about to be called for ``message_id``; returns the
    attempt's number, for :func:`record_attempt` to complete."""
    return await record_attempt(rt, message_id, outcome=STARTED, detail=detail, actor=actor)


async def unfinished_attempt(rt: Runtime, message_id: int) -> Any | None:
    """The message's last attempt if it started and never got an answer recorded."""
    async with rt.db.read() as conn:
        last = (
            await conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.message_id == message_id)
                .order_by(delivery_attempts.c.attempt.desc())
                .limit(1)
            )
        ).first()
    return last if last is not None and last.outcome == STARTED else None


async def record_attempt(
    rt: Runtime,
    message_id: int,
    *,
    outcome: str,
    http_status: int | None = None,
    error_code: str | None = None,
    provider_id: str | None = None,
    detail: dict[str, Any] | None = None,
    attempt: int | None = None,
    actor: Actor = SYSTEM,
) -> int:
    """Store one attempt to send ``message_id`` and the provider's answer; returns its number.

    With ``attempt``, the answer completes that started attempt (its ``detail`` is
    kept and added to); without, a new attempt is stored.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown attempt outcome {outcome!r}")
    async with rt.transaction() as tx:
        row = await row_by_id(tx, messages, message_id)
        if row is None:
            raise NotFound("message_not_found", id=message_id)
        started = None
        if attempt is not None:
            started = (
                await tx.execute(
                    select(delivery_attempts).where(
                        delivery_attempts.c.message_id == message_id,
                        delivery_attempts.c.attempt == attempt,
                    )
                )
            ).first()
        if started is not None:
            number = attempt
        else:
            last = await tx.execute(
                select(func.max(delivery_attempts.c.attempt)).where(
                    delivery_attempts.c.message_id == message_id
                )
            )
            number = int(last.scalar() or 0) + 1
        values = {
            "message_id": message_id,
            "attempt": number,
            "at": started.at if started is not None else tx.state["now"],
            "outcome": outcome,
            "http_status": http_status,
            "error_code": error_code,
            "provider_id": provider_id,
            "detail": {**(started.detail if started is not None else {}), **(detail or {})},
        }
        if started is not None:
            await tx.execute(
                update(delivery_attempts)
                .where(delivery_attempts.c.id == started.id)
                .values(**{k: v for k, v in values.items() if k not in ("message_id", "at")})
            )
        else:
            await tx.execute(delivery_attempts.insert().values(**values))
        await audit.record(
            tx,
            actor=actor,
            entity_type="message",
            entity_id=message_id,
            action="message.attempt",
            after={k: v for k, v in values.items() if k not in ("message_id", "detail", "at")},
            details=detail,
        )
        if outcome == ACCEPTED:
            await _set_status(tx, row, delivery.SENT, provider_id, actor=actor)
        assert number is not None
        return number


async def record_provider_status(
    rt: Runtime,
    *,
    channel: str,
    provider_id: str,
    status: str,
    provider_status: str,
    error_code: str | None = None,
    error_message: str | None = None,
    actor: Actor = SYSTEM,
) -> str | None:
    """A provider's later report on an outbound message it took.

    ``status`` is ours (``sent``, ``delivered``, ``undelivered``, ``failed``),
    ``provider_status`` the provider's own word for it, kept in the message's
    ``meta``. A report that would move the status backwards changes nothing.
    Returns the message's status afterwards, or None when no outbound message
    has that provider id (the report is then ignored).
    """
    async with rt.transaction() as tx:
        row = (
            await tx.execute(
                select(messages).where(
                    messages.c.channel == channel,
                    messages.c.direction == "out",
                    messages.c.provider_id == provider_id,
                )
            )
        ).first()
        if row is None:
            log.info("status %s for unknown %s message %s ignored", status, channel, provider_id)
            return None
        if not delivery.advances(row.status, row.provider_id, status, provider_id):
            return str(row.status)
        meta = dict(row.meta or {})
        meta["provider_status"] = provider_status
        error = None
        if error_code:
            meta["provider_error_code"] = error_code
        if status in (delivery.UNDELIVERED, delivery.FAILED):
            error = ": ".join(p for p in (error_code, error_message) if p) or None
        await _set_status(tx, row, status, provider_id, actor=actor, error=error, meta=meta)
        return status


async def _set_status(
    tx: Tx,
    row: Any,
    status: str,
    provider_id: str | None,
    *,
    actor: Actor,
    error: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    if not delivery.advances(row.status, row.provider_id, status, provider_id):
        return
    now = tx.state["now"]
    values: dict[str, Any] = {"status": status, "error": error}
    if provider_id is not None:
        values["provider_id"] = provider_id
    if status == delivery.SENT and row.sent_at is None:
        values["sent_at"] = now
    if meta is not None:
        values["meta"] = meta
    await tx.execute(update(messages).where(messages.c.id == row.id).values(**values))
    await audit.record(
        tx,
        actor=actor,
        entity_type="message",
        entity_id=row.id,
        action="message.delivery",
        before={"status": row.status, "provider_id": row.provider_id},
        after={k: v for k, v in values.items() if k != "meta"},
        details={"provider_status": meta.get("provider_status")} if meta else None,
    )
    if row.conversation_id is not None:  # messages to staff belong to no conversation
        conversation = await row_by_id(tx, conversations, row.conversation_id)
        tx.publish(events.message_created({**row._asdict(), **values}, conversation._asdict(), now))
