"""when each ticket's lights turn yellow, the indexes the lists and trends read, staff's
notes on tickets, and who added an attachment under which name

``sign_warn_at`` / ``warn_at`` are set by the workflow whenever a clock starts or
moves (dispatch, reopen, an approved extension), so that lists and counters find
yellow tickets in SQL. Tickets already running get them here from the wall-clock
share of their time (the workflow puts the working-time instant on their next step).

Revision ID: 0012_light_thresholds
Revises: 0011_mediation
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.store.types import UTCDateTime

revision: str = "0012_light_thresholds"
down_revision: str | None = "0011_mediation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

INDEXES = [
    ("ix_tickets_department_state", "tickets", ["department_id", "state"]),
    ("ix_tickets_priority_created", "tickets", ["priority", "created_at"]),
    ("ix_tickets_closed", "tickets", ["closed_at"]),
    ("ix_tickets_replied", "tickets", ["replied_at"]),
    ("ix_conversations_created", "conversations", ["created_at"]),
]


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("sign_warn_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("warn_at", UTCDateTime(timezone=True), nullable=True))
    running = "state IN ('dispatched', 'accepted') AND handle_started_at IS NOT NULL"
    if op.get_bind().dialect.name == "sqlite":
        # stored as SQLAlchemy writes it: naive UTC text with microseconds
        at = "julianday({start}) + 0.75 * (julianday({end}) - julianday({start}))"
        share = f"strftime('%Y-%m-%d %H:%M:%S', {at}) || '.000000'"
    else:
        share = "{start} + 0.75 * ({end} - {start})"
    op.execute(
        f"UPDATE tickets SET warn_at = {share.format(start='handle_started_at', end='due_at')}, "
        f"sign_warn_at = {share.format(start='dispatched_at', end='sign_due_at')} "
        f"WHERE {running} AND due_at IS NOT NULL AND sign_due_at IS NOT NULL"
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("filename", sa.String(200), nullable=True))
        batch.add_column(sa.Column("author_id", Id, sa.ForeignKey("users.id"), nullable=True))
    op.create_table(
        "ticket_notes",
        sa.Column("id", Id, primary_key=True),
        sa.Column("ticket_id", Id, sa.ForeignKey("tickets.id"), nullable=False, index=True),
        sa.Column("author_id", Id, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("author_role", sa.String(20), nullable=False),
        sa.Column("department_id", Id, sa.ForeignKey("departments.id"), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ticket_notes")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("author_id")
        batch.drop_column("filename")
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("warn_at")
        batch.drop_column("sign_warn_at")
