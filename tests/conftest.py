"""Shared fixtures: a migrated database on SQLite and on the real PostgreSQL, a runtime
on a manual clock, and the demo city loaded through the real actions.

PostgreSQL is required: the test command starts it. Set
``CALLCENTER_TEST_SKIP_POSTGRES=1`` to skip those tests knowingly on a machine
without it; they are reported as skipped, never silently passed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from callcenter.bootstrap import build_runtime, close_runtime, start_runtime
from callcenter.clock import ManualClock
from callcenter.config import Settings
from callcenter.runtime import Runtime
from callcenter.store.db import null_pool_engine
from callcenter.store.migrate import upgrade
from callcenter.store.tables import metadata

PG_ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
SKIP_PG = os.environ.get("CALLCENTER_TEST_SKIP_POSTGRES") == "1"
REDIS_ADMIN_URL = os.environ.get("CALLCENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379")
SKIP_REDIS = os.environ.get("CALLCENTER_TEST_SKIP_REDIS") == "1"

# Friday 27 November 2026, 10:00 in Shanghai: a working day, within working hours
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the real server, migrated once, dropped at the end."""
    if SKIP_PG:
        pytest.skip("CALLCENTER_TEST_SKIP_POSTGRES=1")
    name = f"callcenter_test_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        engine = null_pool_engine(PG_ADMIN_URL)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    _run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _run(upgrade(url))
    yield url
    _run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis (the test command starts it), its database 9.

    Each test names its own Celery queue and stream keys (:func:`redis_names`), so that
    tests running at once on one server do not meet."""
    if SKIP_REDIS:
        pytest.skip("CALLCENTER_TEST_SKIP_REDIS=1")
    import redis

    url = REDIS_ADMIN_URL.rstrip("/") + "/9"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is needed at {url} (scripts/test.sh starts it): {error}")
    client.close()
    yield url


def redis_names() -> str:
    """A prefix for the keys and the queue of one test."""
    return f"test-{uuid.uuid4().hex[:10]}"


async def reset_postgres(url: str) -> None:
    engine = null_pool_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await conn.execute(
            text(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')")
        )
        # the one row the migration puts there, as in a freshly migrated database
        await conn.execute(text("INSERT INTO config_version (id, version) VALUES (1, 0)"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each test that uses it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "callcenter.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _run(reset_postgres(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """For tests about one process's behaviour that need not run twice."""
    path = tmp_path / "callcenter.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "channels": ["channels.simulated:SimulatedSms"],
        "jobs": {"driver": "none"},
        "media": {"janus": "off"},  # the media tests start their own (tests/media)
        # the demo city's staff sign in with a password alone, except in the tests of
        # two-factor sign-in (tests/integration/test_two_factor.py), which ask for it
        "staff": {"two_factor_roles": []},
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest_asyncio.fixture
async def rt(tmp_path: Path, database_url: str, clock: ManualClock) -> AsyncIterator[Runtime]:
    """A started runtime on a manual clock, with the demo city's directory loaded."""
    runtime = build_runtime(make_settings(tmp_path, database_url), clock=clock, seed=7)
    await start_runtime(runtime, start_jobs=False)
    await load_test_city(runtime)
    yield runtime
    await close_runtime(runtime)


@pytest_asyncio.fixture
async def api(tmp_path: Path, database_url: str, clock: ManualClock) -> AsyncIterator[Any]:
    """The whole server over real HTTP (no background jobs), with the demo city's
    directory and users; the runtime is ``api.rt``."""
    from aiohttp.test_utils import TestClient, TestServer

    from callcenter.bootstrap import create_app

    settings = make_settings(tmp_path, database_url)
    runtime = build_runtime(settings, clock=clock, seed=1)
    app = create_app(settings, runtime=runtime, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        await load_test_city(runtime)
        client.rt = runtime  # type: ignore[attr-defined]
        yield client


async def load_test_city(runtime: Runtime) -> dict[str, str]:
    from callcenter.actions.directory import load_city
    from callcenter.demo import city
    from callcenter.domain.workflow import SYSTEM

    return await load_city(runtime, city(), actor=SYSTEM)


@pytest.fixture(scope="session")
def whisper_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whisper base (Systran's CTranslate2 conversion), joined from the PyPI parts the test
    command installs and checked against its digests (ivr/models.py)."""
    from ivr.models import join_packaged_whisper_base

    return join_packaged_whisper_base(tmp_path_factory.mktemp("models") / "whisper-base")
