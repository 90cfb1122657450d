"""live calls: agent_states.voice (the voice skill); calls.held_at and calls.hold_s (hold)

Revision ID: 0014_live_calls
Revises: 0013_staff_accounts
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.store.types import UTCDateTime

revision: str = "0014_live_calls"
down_revision: str | None = "0013_staff_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_states") as batch:
        batch.add_column(sa.Column("voice", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("held_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("hold_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("hold_s")
        batch.drop_column("held_at")
    with op.batch_alter_table("agent_states") as batch:
        batch.drop_column("voice")
