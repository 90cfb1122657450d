"""every queued conversation has its open stay in a queue

Who waits is one record (``queue_entries``): the stay is now opened in the
transaction that queues the conversation. Conversations queued by an earlier
version, whose stay the ACD had not opened yet, get theirs here, so that none
is forgotten.

Revision ID: 0010_queued_stays
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_queued_stays"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        INSERT INTO queue_entries
            (conversation_id, queue, channel, language, category, queued_at, entered_at)
        SELECT c.id, COALESCE(c.queue, 'general'), c.channel, c.locale, NULL,
               COALESCE(c.queued_at, c.updated_at), COALESCE(c.queued_at, c.updated_at)
        FROM conversations c
        WHERE c.state = 'queued'
          AND NOT EXISTS (
              SELECT 1 FROM queue_entries e
              WHERE e.conversation_id = c.id AND e.ended_at IS NULL
          )
        """
    )


def downgrade() -> None:
    """Nothing to undo: the stays are what the older version's ACD would have opened."""
