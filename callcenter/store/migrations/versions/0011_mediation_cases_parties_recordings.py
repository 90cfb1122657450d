"""mediations, their parties and recordings, and the staff who mediate

Revision ID: 0011_mediation
Revises: 0010_queued_stays
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.store.types import UTCDateTime

revision: str = "0011_mediation"
down_revision: str | None = "0010_queued_stays"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mediators",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_mediators_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mediators")),
    )
    op.create_table(
        "mediations",
        sa.Column("id", Id, nullable=False),
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("mediator_id", Id, nullable=True),
        sa.Column("scheduled_at", When, nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("started_at", When, nullable=True),
        sa.Column("ended_at", When, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("agreement_text", sa.Text(), nullable=True),
        sa.Column("agreement_path", sa.String(400), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reschedules", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("media_node", sa.String(32), nullable=True),
        sa.Column("room_id", sa.BigInteger(), nullable=True),
        sa.Column("room_secret", sa.String(64), nullable=True),
        sa.Column("room_pin", sa.String(16), nullable=True),
        sa.Column("mediator_token", sa.String(64), nullable=True),
        sa.Column("recording", sa.Boolean(), nullable=False),
        sa.Column("created_by", Id, nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_mediations_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["mediator_id"], ["users.id"], name=op.f("fk_mediations_mediator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_mediations_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediations")),
        sa.UniqueConstraint("room_id", name=op.f("uq_mediations_room_id")),
    )
    op.create_index("ix_mediations_ticket_id", "mediations", ["ticket_id"])
    op.create_index("ix_mediations_mediator_id", "mediations", ["mediator_id"])
    op.create_index("ix_mediations_state_time", "mediations", ["state", "scheduled_at"])
    op.create_table(
        "mediation_parties",
        sa.Column("id", Id, nullable=False),
        sa.Column("mediation_id", Id, nullable=False),
        sa.Column("citizen_id", Id, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("pin_hash", sa.String(200), nullable=False),
        sa.Column("pin_failures", sa.Integer(), nullable=False),
        sa.Column("pin_locked_until", When, nullable=True),
        sa.Column("declined_at", When, nullable=True),
        sa.Column("decline_text", sa.Text(), nullable=True),
        sa.Column("consent", sa.Boolean(), nullable=True),
        sa.Column("consent_at", When, nullable=True),
        sa.Column("seat_hash", sa.String(64), nullable=True),
        sa.Column("seen_at", When, nullable=True),
        sa.Column("presence", sa.String(20), nullable=False),
        sa.Column("admitted_at", When, nullable=True),
        sa.Column("joined_at", When, nullable=True),
        sa.Column("janus_token", sa.String(64), nullable=True),
        sa.Column("feed_id", sa.BigInteger(), nullable=True),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["mediation_id"],
            ["mediations.id"],
            name=op.f("fk_mediation_parties_mediation_id_mediations"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_mediation_parties_citizen_id_citizens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_parties")),
    )
    op.create_index("ix_mediation_parties_mediation_id", "mediation_parties", ["mediation_id"])
    op.create_table(
        "mediation_recordings",
        sa.Column("id", Id, nullable=False),
        sa.Column("mediation_id", Id, nullable=False),
        sa.Column("ticket_id", Id, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("path", sa.String(400), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("tracks", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("deleted_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["mediation_id"],
            ["mediations.id"],
            name=op.f("fk_mediation_recordings_mediation_id_mediations"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_mediation_recordings_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_recordings")),
    )
    op.create_index(
        "ix_mediation_recordings_mediation_id", "mediation_recordings", ["mediation_id"]
    )
    op.create_index("ix_mediation_recordings_ticket_id", "mediation_recordings", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("mediation_recordings")
    op.drop_table("mediation_parties")
    op.drop_table("mediations")
    op.drop_table("mediators")
