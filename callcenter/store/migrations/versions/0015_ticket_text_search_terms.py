"""the pairs of characters of each ticket's text, for the text search

``ticket_terms`` holds, for each ticket, the pairs of neighbouring characters of its
title, description and address (see ``callcenter.domain.textsearch``); the search
confirms the tickets that hold all of a search's pairs with the ``LIKE`` it used
before. The tickets already there get theirs here, a batch at a time.

Revision ID: 0015_ticket_terms
Revises: 0014_live_calls
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.domain.textsearch import ticket_terms

revision: str = "0015_ticket_terms"
down_revision: str | None = "0014_live_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 5000


def upgrade() -> None:
    terms = op.create_table(
        "ticket_terms",
        sa.Column("term", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ticket_id", Id, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    assert terms is not None
    bind = op.get_bind()
    tickets = sa.table(
        "tickets",
        sa.column("id", Id),
        sa.column("title", sa.String()),
        sa.column("description", sa.Text()),
        sa.column("address", sa.Text()),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(tickets.c.id, tickets.c.title, tickets.c.description, tickets.c.address)
            .where(tickets.c.id > last)
            .order_by(tickets.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        values = [
            {"term": term, "ticket_id": row.id}
            for row in rows
            for term in ticket_terms((row.title, row.description, row.address))
        ]
        if values:
            bind.execute(terms.insert(), values)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_table("ticket_terms")
