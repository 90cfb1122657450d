"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from callcenter.actions.search_index import searched_texts
from callcenter.actions.tickets import TicketDraft, create_ticket
from callcenter.domain.textsearch import ticket_terms as domain_terms
from callcenter.runtime import Runtime
from callcenter.store.db import null_pool_engine
from callcenter.store.migrate import alembic_config, current_revision, head_revision
from callcenter.store.tables import audit_head, metadata, ticket_terms
from callcenter.views import TicketFilter, list_tickets
from tests.helpers import actor


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


async def test_the_search_pairs_migration_fills_them_for_the_tickets_there(
    rt: Runtime, database_url: str
) -> None:
    """Down to the revision before the pairs and up again: every ticket's pairs are
    those of its text (the backfill), and the search finds what ``LIKE`` finds."""
    agent = await actor(rt, "agent1")
    texts = [
        ("井盖丢了", None),
        ("荷花路学校门口路灯不亮", "荷花路12号"),
        ("Pothole, Main St.", None),
    ]
    opened = [
        await create_ticket(rt, TicketDraft(description=d, address=a), actor=agent)
        for d, a in texts
    ]

    def down_and_up(sync: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync
        command.downgrade(config, "0014_live_calls")
        assert "ticket_terms" not in inspect(sync).get_table_names()
        command.upgrade(config, "head")

    engine = null_pool_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(down_and_up)
    finally:
        await engine.dispose()
    async with rt.db.read() as conn:
        rows = (await conn.execute(select(ticket_terms.c.ticket_id, ticket_terms.c.term))).all()
        found, total = await list_tickets(conn, rt, TicketFilter(q="学校门口"), actor=None)
    for ticket in opened:
        held = {term for ticket_id, term in rows if ticket_id == ticket["id"]}
        assert held == domain_terms(searched_texts(ticket))
    assert len(rows) == sum(len(domain_terms(searched_texts(t))) for t in opened)
    assert ([r.id for r in found], total) == ([opened[1]["id"]], 1)
