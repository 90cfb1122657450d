"""staff accounts: last sign-in, two-factor secrets, one-time links and sign-in challenges;
the working calendar's local days

``users`` gains when each person last signed in, when their password was last set,
their TOTP secret (two-factor sign-in) and the last time step a code was accepted
for (a code is never taken twice); ``agent_states`` an agent's capacity per channel.
``staff_tokens`` keeps, by their SHA-256 only,
the one-time set-password links of invitations and resets and the short-lived
second step of a sign-in (the code, or enrolling an authenticator app).
``calendar_days`` holds the days an administrator made holidays or working days
locally, over the ``chinesecalendar`` package and the settings; ``text_overrides``
the canned replies and SMS texts an administrator rewrote, per language;
``queue_settings`` the ACD queues as an administrator set them, over the settings;
``sla_policy`` the deadlines an administrator set, over the ``[sla]`` settings;
``config_version`` one counter every configuration change moves, which each process
watches to reload what another one changed.

Revision ID: 0013_staff_accounts
Revises: 0012_light_thresholds
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.store.types import UTCDateTime

revision: str = "0013_staff_accounts"
down_revision: str | None = "0012_light_thresholds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_login_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("password_changed_at", UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("agent_states") as batch:
        batch.add_column(sa.Column("channel_capacity", sa.JSON(), nullable=True))
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("secret", sa.String(64), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
    )

    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "text_overrides",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("locale", sa.String(10), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "queue_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("overflow_to", sa.String(64), nullable=True),
        sa.Column("overflow_after_s", sa.Float(), nullable=False),
        sa.Column("offer_timeout_s", sa.Float(), nullable=False),
        sa.Column("wrap_up_s", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sla_policy",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    version = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("config_version")
    op.drop_table("queue_settings")
    op.drop_table("sla_policy")
    op.drop_table("text_overrides")
    op.drop_table("calendar_days")
    op.drop_table("staff_tokens")
    with op.batch_alter_table("agent_states") as batch:
        batch.drop_column("channel_capacity")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
        batch.drop_column("password_changed_at")
        batch.drop_column("last_login_at")
