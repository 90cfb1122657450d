"""Files citizens send with their reports (photos), stored under the data directory.

The bytes are written first, under a name made of their SHA-256, outside any
transaction (a file whose row was never committed is harmless and is reused
by the next identical upload); the row that links the file to its ticket or
conversation is written by :func:`add_attachment` inside the action's
transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from callcenter.actions import audit
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_row
from callcenter.store.tables import attachments

MAX_BYTES = 20 * 1024 * 1024  # Telegram bots may download files up to 20 MB
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


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


async def store_file(rt: Runtime, data: bytes, content_type: str) -> StoredFile:
    if not data:
        raise InvalidInput("empty_file")
    if len(data) > MAX_BYTES:
        raise InvalidInput("file_too_large", limit=MAX_BYTES)
    return await asyncio.to_thread(_write, Path(rt.settings.data_dir), data, content_type)


async def add_attachment(
    tx: Tx,
    stored: StoredFile,
    *,
    kind: str,
    actor: Actor,
    ticket_id: int | None = None,
    conversation_id: int | None = None,
    source_id: str | None = None,
    filename: str | None = None,
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
            "filename": filename,
            "author_id": actor.id,
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
