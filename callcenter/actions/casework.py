"""Case work on a ticket that is no workflow step: staff's internal notes and the files
they add (photos, documents). Both are staff-only: no notice goes to the citizen, the
status page never shows them, and department staff reach only their department's
tickets (the same check as every step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from callcenter.actions import audit
from callcenter.actions.attachments import add_attachment, store_file
from callcenter.actions.tickets import load_ticket
from callcenter.bus import events
from callcenter.domain.errors import Forbidden, InvalidInput, TooLarge
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.store.queries import insert_row
from callcenter.store.records import NoteRecord, note_record
from callcenter.store.tables import ticket_notes

MAX_NOTE = 4000
MAX_FILE = 10 * 1024 * 1024
MAX_FILENAME = 200
# what staff may attach, as the bytes say (a name or a browser's word proves nothing):
# type -> the stored file's extension
ALLOWED = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
}
STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})


def _check_staff(actor: Actor) -> None:
    if actor.role not in STAFF:
        raise Forbidden("role_not_allowed", role=actor.role.value)


async def add_note(rt: Runtime, ref: int | str, body: Any, *, actor: Actor) -> NoteRecord:
    """An internal note (内部备注) on a ticket, seen by staff only."""
    _check_staff(actor)
    if not isinstance(body, str) or not body.replace("\x00", "").strip():
        raise InvalidInput("missing_field", field="note")
    text = body.replace("\x00", "").strip()
    if len(text) > MAX_NOTE:
        raise TooLarge("field_too_long", field="note", limit=MAX_NOTE, length=len(text))
    async with rt.transaction() as tx:
        ticket = await load_ticket(tx, ref, actor=actor)
        row = await insert_row(
            tx,
            ticket_notes,
            {
                "ticket_id": ticket.id,
                "author_id": actor.id,
                "author_name": actor.name,
                "author_role": actor.role.value,
                "department_id": actor.department_id,
                "body": text,
                "created_at": tx.state["now"],
            },
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="ticket_note",
            entity_id=row.id,
            action="ticket_note.add",
            after={"ticket_id": ticket.id, "body": text},
        )
        tx.publish(events.ticket_changed(ticket._asdict(), "note", tx.state["now"]))
        return note_record(row)


class AttachmentSummary(TypedDict):
    """A file just attached to a ticket, as the page and the API confirm it."""

    id: int
    kind: str  # photo | document
    content_type: str
    size: int


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


async def attach_file(
    rt: Runtime, ref: int | str, upload: Upload, *, actor: Actor
) -> AttachmentSummary:
    """A photo or document on a ticket: size and type checked by content, stored, linked."""
    _check_staff(actor)
    async with rt.db.read() as conn:  # no file is written for a ticket one may not see
        await load_ticket(conn, ref, actor=actor)
    stored = await store_file(rt, upload.data, allowed=ALLOWED, max_bytes=MAX_FILE)
    kind = "photo" if stored.content_type.startswith("image/") else "document"
    content_type = stored.content_type
    name = (upload.filename or "").replace("\x00", "").strip()[:MAX_FILENAME] or None
    async with rt.transaction() as tx:
        ticket = await load_ticket(tx, ref, actor=actor)
        attachment_id = await add_attachment(
            tx, stored, kind=kind, actor=actor, ticket_id=ticket.id, filename=name
        )
        tx.publish(events.ticket_changed(ticket._asdict(), "attachment", tx.state["now"]))
        return {
            "id": attachment_id,
            "kind": kind,
            "content_type": content_type,
            "size": stored.size,
        }
