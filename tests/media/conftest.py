"""Fixtures for the media tests: a private network namespace entered by the test's
thread, and the hotline with its embedded Janus inside it (see harness.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from callcenter.bootstrap import build_runtime, create_app
from callcenter.runtime import Runtime
from tests.conftest import make_settings
from tests.e2e.test_cli import free_port
from tests.media import harness, netns

PAGES = Path(__file__).with_name("pages")


@pytest.fixture
def media_ns() -> Iterator[str]:
    why = netns.available() or harness.missing_tools()
    if why:
        pytest.skip(why)
    with netns.namespace() as name, netns.entered(name):
        yield name


@dataclass
class Hotline:
    rt: Runtime
    url: str
    app: web.Application

    def ws(self, node: str = "local") -> str:
        return self.url.replace("http://", "ws://") + f"/media/janus/{node}"


@pytest_asyncio.fixture
async def hotline(
    media_ns: str, tmp_path: Path, sqlite_url: str, **overrides: Any
) -> AsyncIterator[Hotline]:
    """The hotline's server with its embedded Janus, in the namespace, on a free port;
    the test pages under /test-media/."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        media={"janus": "embedded", "health_seconds": 0.5, "restart_seconds": 0.3},
        channels=["channels.simulated:SimulatedSms"],
    )
    rt = build_runtime(settings, seed=secrets.randbits(32))
    app = create_app(settings, runtime=rt)
    app.router.add_static("/test-media/", PAGES)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Hotline(rt, f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()
