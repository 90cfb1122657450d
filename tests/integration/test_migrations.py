"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from callcenter.store.db import null_pool_engine
from callcenter.store.migrate import current_revision, head_revision
from callcenter.store.tables import audit_head, metadata


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    assert await current_revision(database_url) == head_revision()
    engine = null_pool_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
            head = (await conn.execute(select(audit_head))).one()
    finally:
        await engine.dispose()
    assert diff == []
    assert (head.id, head.seq, head.hash) == (1, 0, "0" * 64)
