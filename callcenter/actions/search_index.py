"""Keeping the ticket text search's pairs (``ticket_terms``) in step with the text.

Called, inside the same transaction, by every action that writes a ticket's title,
description or address; today only opening a ticket does. The pairs are computed here,
in Python, rather than by database triggers: SQLite's triggers cannot split a text
into its characters (no recursive queries inside a trigger), and one function serves
both databases, the migration's backfill and the benchmark's bulk load alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, delete

from callcenter.domain.textsearch import ticket_terms
from callcenter.store.db import Tx
from callcenter.store.tables import ticket_terms as ticket_terms_table

SEARCHED_FIELDS = ("title", "description", "address")


def searched_texts(ticket: Mapping[str, Any]) -> list[str | None]:
    """The texts a ticket is found by (its number is matched on its own index)."""
    return [ticket.get(name) for name in SEARCHED_FIELDS]


async def index_ticket_text(
    tx: Tx,
    ticket_id: int,
    texts: Iterable[str | None],
    *,
    before: Iterable[str | None] = (),
) -> None:
    """Make the ticket's pairs those of ``texts``, given the texts it had ``before``
    (nothing, for a new ticket): only the pairs that differ are written."""
    new, old = ticket_terms(texts), ticket_terms(before)
    gone, added = old - new, new - old
    if gone:
        await tx.execute(
            delete(ticket_terms_table).where(
                and_(
                    ticket_terms_table.c.ticket_id == ticket_id,
                    ticket_terms_table.c.term.in_(sorted(gone)),
                )
            )
        )
    if added:
        await tx.execute(
            ticket_terms_table.insert(),
            [{"term": term, "ticket_id": ticket_id} for term in sorted(added)],
        )
