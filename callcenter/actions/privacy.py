"""Personal data: who sees a citizen's number, what is kept how long, export and erasure.

- :func:`view_ticket_contact`: the citizen's name and full numbers on a ticket, for
  the desk and the department that handles it (others: 404 as for the ticket), each
  view an audit event (``ticket.contact_viewed``): lists and the ticket page itself
  only show masked numbers, the page shows the full ones through this.
- :func:`apply_retention`: what outlived ``privacy.retention`` is removed, one audit
  event per run with the counts: message texts (the row stays for the statistics,
  its text is emptied, and the inbox's handled copy of it is deleted), call
  recordings (the file is deleted) and transcripts, and the link from tickets
  closed long ago to their citizen (the case stays on record, who reported it
  does not). It runs every night at 03:00 local time as a job
  (:func:`retention_job`) that the server puts on the schedule at start whenever a
  retention period is set (:func:`schedule_retention`), and that schedules the next.
- :func:`export_citizen`: everything held about one citizen, as one document.
- :func:`erase_citizen`: the citizen's name, numbers and identities, their
  messages' texts (and the inbox's copies of them), the numbers their messages
  were sent to (also in the delivery attempts), call numbers, recordings and
  transcripts, and their photos are removed; their tickets stay as the
  government's record of the case, without the person. Refused while a ticket
  of theirs is open (the case still needs the contact); the opt-out list keeps
  their numbers so that they are never texted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import and_, delete, or_, select, update

from callcenter.actions import audit
from callcenter.domain.errors import Conflict, NotFound
from callcenter.domain.privacy import mask_phone
from callcenter.domain.workflow import OPEN_STATES, SYSTEM, Actor
from callcenter.jobs.outbox import Job, JobOutcome
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.tables import (
    attachments,
    calls,
    citizen_identities,
    citizens,
    conversations,
    delivery_attempts,
    inbox,
    messages,
    opt_outs,
    tickets,
)
from callcenter.views import ticket_by_ref, ticket_contact, visible_to

log = logging.getLogger(__name__)

RETENTION = "privacy.retention"
RETENTION_HOUR = 3  # local time: the quietest hour of a hotline's night
ERASED = "[erased]"
EXPIRED = "[expired]"


class TicketContact(TypedDict):
    """Who reported a ticket, with the full number (each look audited)."""

    ticket_id: int
    number: str
    citizen_id: int | None
    name: str | None
    phone: str | None  # the number the citizen gave
    phones: list[str]  # every number they reached the hotline from, and that one


async def view_ticket_contact(rt: Runtime, ref: int | str, *, actor: Actor) -> TicketContact:
    """Who reported a ticket, with the full number; audited."""
    async with rt.transaction() as tx:
        ticket = await ticket_by_ref(tx.conn, ref)
        if ticket is None or not visible_to(actor, ticket):
            raise NotFound("ticket_not_found", ticket=str(ref)[:40])
        citizen = None
        if ticket.citizen_id is not None:
            citizen = (
                await tx.execute(select(citizens).where(citizens.c.id == ticket.citizen_id))
            ).first()
        contact = await ticket_contact(tx.conn, ticket.citizen_id)
        await audit.record(
            tx,
            actor=actor,
            entity_type="ticket",
            entity_id=ticket.id,
            action="ticket.contact_viewed",
            details={"citizen_id": ticket.citizen_id},
        )
    return {
        "ticket_id": ticket.id,
        "number": ticket.number,
        "citizen_id": ticket.citizen_id,
        "name": citizen.name if citizen else None,
        "phone": citizen.phone if citizen else None,
        "phones": contact["phones"] if contact else [],
    }


def masked_row(row: Mapping[str, Any], *fields: str) -> dict[str, Any]:
    return {**row, **{name: mask_phone(row.get(name)) for name in fields}}


# --- retention --------------------------------------------------------------------------


async def apply_retention(rt: Runtime, *, actor: Actor = SYSTEM) -> dict[str, int]:
    """Remove what outlived its retention period; returns what was removed, by kind."""
    settings = rt.settings.privacy
    now = rt.clock.now()
    removed = {"messages": 0, "inbox": 0, "recordings": 0, "closed_ticket_contacts": 0}
    files: list[Path] = []
    async with rt.transaction() as tx:
        if settings.messages_days:
            cutoff = now - timedelta(days=settings.messages_days)
            result = await tx.execute(
                update(messages)
                .where(messages.c.created_at < cutoff, messages.c.body != EXPIRED)
                .values(body=EXPIRED)
            )
            removed["messages"] = int(result.rowcount or 0)
            # the inbox's copy of what came in (number and text), once it was handled
            result = await tx.execute(
                delete(inbox).where(inbox.c.state != "pending", inbox.c.received_at < cutoff)
            )
            removed["inbox"] = int(result.rowcount or 0)
        if settings.recordings_days:
            cutoff = now - timedelta(days=settings.recordings_days)
            old = (
                await tx.execute(
                    select(calls.c.id, calls.c.recording_path).where(
                        calls.c.started_at < cutoff,
                        or_(calls.c.recording_path.is_not(None), calls.c.transcript.is_not(None)),
                    )
                )
            ).all()
            files += [Path(r.recording_path) for r in old if r.recording_path]
            if old:
                await tx.execute(
                    update(calls)
                    .where(calls.c.id.in_([r.id for r in old]))
                    .values(recording_path=None, transcript=None)
                )
            removed["recordings"] = len(old)
        if settings.closed_ticket_contacts_days:
            cutoff = now - timedelta(days=settings.closed_ticket_contacts_days)
            result = await tx.execute(
                update(tickets)
                .where(
                    tickets.c.state.not_in([s.value for s in OPEN_STATES]),
                    tickets.c.closed_at < cutoff,
                    tickets.c.citizen_id.is_not(None),
                )
                .values(citizen_id=None)
            )
            removed["closed_ticket_contacts"] = int(result.rowcount or 0)
        await audit.record(
            tx,
            actor=actor,
            entity_type="privacy",
            entity_id=None,
            action="privacy.retention",
            after=removed,
            details={
                "messages_days": settings.messages_days,
                "recordings_days": settings.recordings_days,
                "closed_ticket_contacts_days": settings.closed_ticket_contacts_days,
            },
        )
    await _delete_files(rt, files)
    return removed


async def _delete_files(rt: Runtime, paths: list[Path]) -> None:
    """Files the committed transaction no longer names (recordings, photos)."""
    root = Path(rt.settings.data_dir)

    def unlink() -> None:
        for path in paths:
            target = path if path.is_absolute() else root / path
            try:
                target.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete %s: %s", target, exc)

    await asyncio.to_thread(unlink)


# --- one citizen ------------------------------------------------------------------------


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


async def export_citizen(rt: Runtime, citizen_id: int, *, actor: Actor) -> dict[str, Any]:
    """Everything held about one citizen (their data access request); audited."""
    async with rt.transaction() as tx:
        citizen = (await tx.execute(select(citizens).where(citizens.c.id == citizen_id))).first()
        if citizen is None:
            raise NotFound("citizen_not_found", id=citizen_id)
        convs = _rows(
            await tx.execute(select(conversations).where(conversations.c.citizen_id == citizen_id))
        )
        ids = [c["id"] for c in convs]
        own_tickets = _rows(
            await tx.execute(select(tickets).where(tickets.c.citizen_id == citizen_id))
        )
        document = {
            "citizen": dict(citizen._mapping),
            "identities": _rows(
                await tx.execute(
                    select(citizen_identities).where(citizen_identities.c.citizen_id == citizen_id)
                )
            ),
            "conversations": convs,
            "messages": _rows(
                await tx.execute(
                    select(messages)
                    .where(messages.c.conversation_id.in_(ids))
                    .order_by(messages.c.id)
                )
            ),
            "calls": _rows(await tx.execute(select(calls).where(calls.c.conversation_id.in_(ids)))),
            "tickets": own_tickets,
            "attachments": _rows(
                await tx.execute(
                    select(attachments).where(
                        or_(
                            attachments.c.conversation_id.in_(ids),
                            attachments.c.ticket_id.in_([t["id"] for t in own_tickets]),
                        )
                    )
                )
            ),
            "opt_outs": _rows(
                await tx.execute(
                    select(opt_outs).where(
                        opt_outs.c.address.in_([c["address"] for c in convs] or [""])
                    )
                )
            ),
        }
        await audit.record(
            tx,
            actor=actor,
            entity_type="citizen",
            entity_id=citizen_id,
            action="citizen.exported",
            details={k: len(v) for k, v in document.items() if isinstance(v, list)},
        )
    return document


async def erase_citizen(
    rt: Runtime, citizen_id: int, *, actor: Actor, reason: str
) -> dict[str, int]:
    """Remove a citizen's personal data, keeping their tickets as the record of the case."""
    files: list[Path] = []
    async with rt.transaction() as tx:
        citizen = (await tx.execute(select(citizens).where(citizens.c.id == citizen_id))).first()
        if citizen is None:
            raise NotFound("citizen_not_found", id=citizen_id)
        open_tickets = (
            (
                await tx.execute(
                    select(tickets.c.number).where(
                        tickets.c.citizen_id == citizen_id,
                        tickets.c.state.in_([s.value for s in OPEN_STATES]),
                    )
                )
            )
            .scalars()
            .all()
        )
        if open_tickets:
            raise Conflict("citizen_has_open_tickets", tickets=", ".join(open_tickets[:5]))
        conv_ids = list(
            (
                await tx.execute(
                    select(conversations.c.id).where(conversations.c.citizen_id == citizen_id)
                )
            ).scalars()
        )
        ticket_ids = list(
            (await tx.execute(select(tickets.c.id).where(tickets.c.citizen_id == citizen_id)))
            .scalars()
            .all()
        )
        photos = (
            await tx.execute(
                select(attachments.c.id, attachments.c.path).where(
                    or_(
                        attachments.c.conversation_id.in_(conv_ids),
                        attachments.c.ticket_id.in_(ticket_ids),
                    )
                )
            )
        ).all()
        recordings = (
            (
                await tx.execute(
                    select(calls.c.recording_path).where(
                        calls.c.conversation_id.in_(conv_ids), calls.c.recording_path.is_not(None)
                    )
                )
            )
            .scalars()
            .all()
        )
        files += [Path(p) for p in recordings] + [Path(p.path) for p in photos]
        own_messages = select(messages.c.id).where(messages.c.conversation_id.in_(conv_ids))
        counts = {
            "identities": await _rows_changed(
                tx, delete(citizen_identities).where(citizen_identities.c.citizen_id == citizen_id)
            ),
            "messages": await _rows_changed(
                tx,
                update(messages)
                .where(messages.c.conversation_id.in_(conv_ids))
                .values(body=ERASED, to_address=None),
            ),
            # what the intake kept of their texts, and the numbers sends were made to
            "inbox": await _rows_changed(
                tx, delete(inbox).where(inbox.c.message_id.in_(own_messages))
            ),
            "delivery_attempts": await _rows_changed(
                tx,
                update(delivery_attempts)
                .where(delivery_attempts.c.message_id.in_(own_messages))
                .values(detail={}),
            ),
            "conversations": len(conv_ids),
            "calls": await _rows_changed(
                tx,
                update(calls)
                .where(calls.c.conversation_id.in_(conv_ids))
                .values(from_number=None, recording_path=None, transcript=None, dtmf=""),
            ),
            "photos": len(photos),
            "tickets_kept": len(ticket_ids),
        }
        for conv_id in conv_ids:
            await tx.execute(
                update(conversations)
                .where(conversations.c.id == conv_id)
                .values(address=f"erased:{conv_id}")
            )
        if photos:
            await tx.execute(
                update(attachments)
                .where(attachments.c.id.in_([p.id for p in photos]))
                .values(path=ERASED, size=0, sha256="")
            )
        shared = set(
            (
                await tx.execute(
                    select(attachments.c.path).where(
                        attachments.c.path.in_([p.path for p in photos] or [""])
                    )
                )
            ).scalars()
        )  # the same photo sent by someone else is theirs too: its file stays
        files = [f for f in files if str(f) not in shared]
        await tx.execute(
            update(citizens).where(citizens.c.id == citizen_id).values(name=None, phone=None)
        )
        await tx.execute(
            update(tickets).where(and_(tickets.c.id.in_(ticket_ids))).values(citizen_id=None)
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="citizen",
            entity_id=citizen_id,
            action="citizen.erased",
            after=counts,
            details={"reason": reason[:500]},
        )
    await _delete_files(rt, files)
    return counts


def retention_configured(rt: Runtime) -> bool:
    """Whether any kind of data has a retention period (0 everywhere: kept until erased)."""
    settings = rt.settings.privacy
    return any(
        (settings.messages_days, settings.recordings_days, settings.closed_ticket_contacts_days)
    )


async def _rows_changed(tx: Tx, statement: Any) -> int:
    """How many rows ``statement`` deleted or updated."""
    return int((await tx.execute(statement)).rowcount or 0)


async def retention_job(rt: Runtime, job: Job) -> JobOutcome:
    """The nightly job: apply retention, then schedule the next night's run. A run left
    pending after retention was turned off does nothing and schedules none."""
    if not retention_configured(rt):
        return {"skipped": "retention_off"}
    removed = await apply_retention(rt)
    await schedule_retention(rt)
    return removed


def next_retention_run(rt: Runtime, now: datetime) -> datetime:
    """The first 03:00 local time after ``now`` (in UTC)."""
    local = rt.local(now)
    run = local.replace(hour=RETENTION_HOUR, minute=0, second=0, microsecond=0)
    if run <= local:
        run = (local + timedelta(days=1)).replace(
            hour=RETENTION_HOUR, minute=0, second=0, microsecond=0
        )
    return run.astimezone(UTC)


async def schedule_retention(rt: Runtime, *, actor: Actor = SYSTEM) -> datetime | None:
    """Enqueue the next nightly run, once whoever asks and however often (the job's key is
    its local date): the server asks at every start, each run asks for the next one.
    Nothing is scheduled while retention is off. A run newly put on the schedule is an
    audit event (``privacy.retention_scheduled``). Returns the run's time, if any."""
    if not retention_configured(rt):
        return None
    from callcenter.jobs.outbox import enqueue

    async with rt.transaction() as tx:
        run_at = next_retention_run(rt, tx.state["now"])
        day = rt.local(run_at).date().isoformat()
        added = await enqueue(
            tx, RETENTION, {}, key=f"{RETENTION}:{day}", now=tx.state["now"], run_at=run_at
        )
        if added:
            await audit.record(
                tx,
                actor=actor,
                entity_type="privacy",
                entity_id=None,
                action="privacy.retention_scheduled",
                details={"run_at": run_at.isoformat()},
            )
    return run_at
