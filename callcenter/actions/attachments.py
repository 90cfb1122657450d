"""Files citizens send with their reports (photos), stored under the data directory.

The type of a file is read from its bytes, not from its name or the type it
was sent with (:func:`sniff`): only photos are taken, and an HTML page or a
program named ``photo.jpg`` is refused. The bytes are written first, under a
name made of their SHA-256, outside any transaction (a file whose row was
never committed is harmless and is reused by the next identical upload); the
row that links the file to its ticket or conversation is written by
:func:`add_attachment` inside the action's transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import puremagic

from callcenter.actions import audit
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_row
from callcenter.store.tables import attachments

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024  # Telegram bots may download files up to 20 MB
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
ALLOWED = ", ".join(sorted(EXTENSIONS))
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the data directory
    sha256: str
    size: int
    content_type: str


def _write(root: Path, data: bytes, content_type: str) -> StoredFile:
    digest = hashlib.sha256(data).hexdigest()
    relative = Path("attachments") / digest[:2] / (digest + EXTENSIONS.get(content_type, ".bin"))
    target = root / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    return StoredFile(str(relative), digest, len(data), content_type)


def sniff(data: bytes) -> str | None:
    """The file's type read from its bytes (magic numbers), whatever name or type it came
    with; None when it is none that we know."""
    try:
        found = puremagic.from_string(data[:SNIFF_BYTES], mime=True)
    except puremagic.PureError:
        return None
    return str(found).lower() or None


async def store_file(rt: Runtime, data: bytes, content_type: str | None = None) -> StoredFile:
    """Store an upload whose *content* is one of the allowed types (:data:`EXTENSIONS`).

    ``content_type`` is what the sender claimed; it is logged when it differs, never
    trusted: the stored type (and the file's extension) is the one read from the bytes.
    """
    if not data:
        raise InvalidInput("empty_file")
    if len(data) > MAX_BYTES:
        raise InvalidInput("file_too_large", limit=MAX_BYTES)
    found = sniff(data)
    if found not in EXTENSIONS:
        raise InvalidInput("file_type_not_allowed", found=found or "?", allowed=ALLOWED)
    if content_type and content_type.lower() != found:
        log.info("upload claimed %s but its content is %s", content_type, found)
    return await asyncio.to_thread(_write, Path(rt.settings.data_dir), data, found)


async def add_attachment(
    tx: Tx,
    stored: StoredFile,
    *,
    kind: str,
    actor: Actor,
    ticket_id: int | None = None,
    conversation_id: int | None = None,
    source_id: str | None = None,
) -> int:
    row = await insert_row(
        tx,
        attachments,
        {
            "ticket_id": ticket_id,
            "conversation_id": conversation_id,
            "kind": kind,
            "path": stored.path,
            "content_type": stored.content_type,
            "size": stored.size,
            "sha256": stored.sha256,
            "source_id": source_id,
            "created_at": tx.state["now"],
        },
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="attachment",
        entity_id=row.id,
        action="attachment.add",
        after={"ticket_id": ticket_id, "conversation_id": conversation_id, "sha256": stored.sha256},
    )
    return int(row.id)
