"""Appending to the tamper-evident audit chain, and checking it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select, update

from callcenter.domain.audit import BrokenLink, ChainVerifier, chain_hash, jsonable
from callcenter.domain.workflow import Actor
from callcenter.store.db import Database, Tx
from callcenter.store.tables import audit_events, audit_head


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
    """Append one audit event inside ``tx``; returns its sequence number."""
    head = tx.state.get("audit_head")
    if head is None:
        row = (
            await tx.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            )
        ).one()
        head = tx.state["audit_head"] = [row.seq, row.hash]

        async def store_head() -> None:
            await tx.execute(
                update(audit_head).where(audit_head.c.id == 1).values(seq=head[0], hash=head[1])
            )

        tx.before_commit(store_head)
    event = {
        "seq": head[0] + 1,
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
    }
    event["prev_hash"] = head[1]
    event["hash"] = chain_hash(head[1], event)
    await tx.execute(audit_events.insert().values(**event))
    head[0], head[1] = event["seq"], event["hash"]
    return int(event["seq"])


async def iterate_events(db: Database, batch: int = 2000) -> AsyncIterator[dict[str, Any]]:
    last = 0
    while True:
        async with db.read() as conn:
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
