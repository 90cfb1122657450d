"""Alembic environment: runs on a connection handed in by ``callcenter.store.migrate``,
or, for the ``alembic`` command line, on ``CALLCENTER_DATABASE_URL``."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from callcenter.store.db import null_pool_engine
from callcenter.store.tables import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = os.environ.get("CALLCENTER_DATABASE_URL", "sqlite+aiosqlite:///data/callcenter.db")
    engine = null_pool_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(run_on)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_online())
