"""staff messages, urgent messages and opt-outs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opt_outs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("created_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_outs")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_opt_outs_channel_address")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("to_address", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "recipient_user_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_messages_dedupe_key"), ["dedupe_key"])
        batch_op.alter_column("conversation_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f("ix_messages_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_recipient_user_id_users"),
            "users",
            ["recipient_user_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_messages_dedupe_key"), type_="unique")
        batch_op.drop_column("dedupe_key")
        batch_op.drop_constraint(
            batch_op.f("fk_messages_recipient_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_messages_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_messages_ticket_id"))
        batch_op.alter_column("conversation_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("ticket_id")
        batch_op.drop_column("recipient_user_id")
        batch_op.drop_column("to_address")
        batch_op.drop_column("urgent")

    op.drop_table("opt_outs")
