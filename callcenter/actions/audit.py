"""Appending to the tamper-evident audit chain, and checking it.

Events are chained as they are recorded, but written together at the end of
the transaction (one multi-row insert), with the new head of the chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import bindparam, select, update

from callcenter.domain.audit import BrokenLink, ChainVerifier, chain_hash, jsonable
from callcenter.domain.workflow import Actor
from callcenter.store.db import Database, Tx
from callcenter.store.tables import audit_events, audit_head

_READ_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_WRITE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_INSERT = audit_events.insert()


class _Pending:
    """The audit events of one transaction, and the head they lead to."""

    def __init__(self, seq: int, hash: str) -> None:
        self.seq = seq
        self.hash = hash
        self.events: list[dict[str, Any]] = []

    async def flush(self, tx: Tx) -> None:
        if not self.events:
            return
        await tx.execute(_INSERT, self.events)
        await tx.execute(_WRITE_HEAD, {"new_seq": self.seq, "new_hash": self.hash})


async def record(
    tx: Tx,
    *,
    actor: Actor,
    entity_type: str,
    entity_id: int | None,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Add one audit event to ``tx``; returns its sequence number."""
    pending: _Pending | None = tx.state.get("audit")
    if pending is None:
        row = (await tx.execute(_READ_HEAD)).one()
        pending = tx.state["audit"] = _Pending(row.seq, row.hash)
        tx.before_commit(lambda: pending.flush(tx))
    event = {
        "seq": pending.seq + 1,
        "at": tx.state["now"],
        "actor_id": actor.id,
        "actor_role": actor.role.value,
        "actor_name": actor.name,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "before": jsonable(before) if before is not None else None,
        "after": jsonable(after) if after is not None else None,
        "details": jsonable(details) if details is not None else None,
        "prev_hash": pending.hash,
    }
    event["hash"] = chain_hash(pending.hash, event)
    pending.events.append(event)
    pending.seq, pending.hash = event["seq"], event["hash"]
    return int(event["seq"])


async def iterate_events(db: Database, batch: int = 2000) -> AsyncIterator[dict[str, Any]]:
    last = 0
    while True:
        async with db.read(long=True) as conn:
            rows = (
                await conn.execute(
                    select(audit_events)
                    .where(audit_events.c.seq > last)
                    .order_by(audit_events.c.seq)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return
        for row in rows:
            yield dict(row._mapping)
        last = rows[-1].seq


async def verify_chain(db: Database) -> tuple[int, BrokenLink | None]:
    """Check the whole chain; returns (events checked, first broken link or None)."""
    verifier = ChainVerifier()
    async for event in iterate_events(db):
        broken = verifier.feed(event)
        if broken is not None:
            return verifier.checked, broken
    async with db.read() as conn:
        head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
    if head.seq != verifier.expected_seq - 1 or head.hash != verifier.prev_hash:
        # the newest events were deleted: the head remembers more than the log holds
        return verifier.checked, BrokenLink(verifier.expected_seq, "truncated")
    return verifier.checked, None
