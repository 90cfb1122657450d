"""the browser: staff sessions, throttles, agent states, queue entries and offers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "throttles",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column(
            "window_start", callcenter.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", callcenter.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttles")),
    )
    op.create_table(
        "agent_states",
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("presence", sa.String(length=20), nullable=False),
        sa.Column(
            "presence_since", callcenter.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "wrap_up_until", callcenter.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column(
            "last_contact_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_states_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_states")),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "queue_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("queued_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entered_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("assigned_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("wrap_up_code", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_queue_entries_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_queue_entries_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_entries")),
    )
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_entries_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_queue_entries_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index("ix_queue_entries_entered", ["entered_at"], unique=False)
        batch_op.create_index("ix_queue_entries_open", ["ended_at", "queue"], unique=False)

    op.create_table(
        "offers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", callcenter.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_offers_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_offers_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["queue_entries.id"], name=op.f("fk_offers_entry_id_queue_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_offers_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index("ix_offers_state", ["state", "expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index("ix_offers_state")
        batch_op.drop_index(batch_op.f("ix_offers_entry_id"))
        batch_op.drop_index(batch_op.f("ix_offers_agent_id"))

    op.drop_table("offers")
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_entries_open")
        batch_op.drop_index("ix_queue_entries_entered")
        batch_op.drop_index(batch_op.f("ix_queue_entries_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_queue_entries_agent_id"))

    op.drop_table("queue_entries")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))

    op.drop_table("staff_sessions")
    op.drop_table("agent_states")
    op.drop_table("throttles")
