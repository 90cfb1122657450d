"""A channel declares itself: a throwaway channel defined here, named only in the settings,
works end to end (its options checked, its routes served, its citizens known by its own
kind of identity, replies delivered to it, its page on the front page, its errors
answered by the server's one error path), and no core file knows its name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import Field
from sqlalchemy import select

from callcenter.actions.intake import Inbound, receive_message
from callcenter.api.guard import LIMITED, PRIVATE, Limit
from callcenter.api.http import json_response
from callcenter.bootstrap import build_runtime, create_app
from callcenter.channel import Channel, ChannelOptions, OutboundMessage, Page, SendResult
from callcenter.clock import ManualClock
from callcenter.domain.errors import InvalidInput
from callcenter.store.tables import citizen_identities
from tests.conftest import load_test_city, make_settings

ROOT = Path(__file__).resolve().parents[2]
SPEC = f"{__name__}:PigeonPost"


class PigeonOptions(ChannelOptions):
    loft: str = Field(min_length=1)  # where the birds come home to
    birds: int = Field(default=3, ge=1)


class PigeonPost(Channel):
    """Letters by carrier pigeon: each citizen is known by the ring on their bird's leg."""

    name = "pigeon"
    identity_kind = "pigeon-ring"
    Options = PigeonOptions
    config: PigeonOptions
    pages = (Page("/pigeon/", "site.api"),)  # any text the catalog has, for the link
    delivered: list[OutboundMessage] = []  # noqa: RUF012  (one class per test run)

    def setup_web(self, app: web.Application) -> None:
        app.router.add_post("/pigeon/letters", self.letter)
        app.router.add_get("/pigeon/", self.loft_page)
        # its own private area (answered no-store) and a route limited per address
        app.router.add_get("/pigeon/keeper/log", self.loft_page)
        app[PRIVATE].append("/pigeon/keeper/")
        app.router.add_get("/pigeon/whistle", self.loft_page)
        app[LIMITED].append(
            Limit("GET", "/pigeon/whistle", "whistle", 2, timedelta(hours=1), "all")
        )

    async def letter(self, request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data, dict) or not data.get("ring"):
            raise InvalidInput("missing_field", field="ring")  # the server answers it
        result = await receive_message(
            self.rt,
            Inbound(self.name, self.identity_kind or "", data["ring"], data["text"], data["id"]),
        )
        return json_response({"conversation_id": result.conversation_id}, status=201)

    async def loft_page(self, request: web.Request) -> web.Response:
        return web.Response(text=f"loft {self.config.loft}: {self.config.birds} birds")

    async def send(self, message: OutboundMessage) -> SendResult:
        PigeonPost.delivered.append(message)
        return SendResult(provider_id=f"pigeon-{message.message_id}")


def settings(tmp_path: Path, database_url: str, **options: Any) -> Any:
    return make_settings(
        tmp_path,
        database_url,
        channels=["channels.simulated:SimulatedSms", SPEC],
        channel_options={"pigeon": options},
    )


@pytest_asyncio.fixture
async def server(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    PigeonPost.delivered = []
    config = settings(tmp_path, sqlite_url, loft="东湖", birds=12)
    rt = build_runtime(config, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(config, runtime=rt, start_jobs=False))) as client:
        await load_test_city(rt)
        client.rt = rt  # type: ignore[attr-defined]
        yield client


def test_its_options_are_checked_at_start(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ValueError) as raised:
        build_runtime(settings(tmp_path, sqlite_url, birds=0))
    message = str(raised.value)
    assert message.startswith("channel_options.pigeon: ")
    assert "loft" in message and "birds" in message


async def test_a_channel_the_core_has_never_heard_of(server: TestClient) -> None:
    rt = server.rt  # type: ignore[attr-defined]
    page = await server.get("/pigeon/")
    assert await page.text() == "loft 东湖: 12 birds"
    front = await (await server.get("/", headers={"Accept-Language": "en"})).text()
    assert 'href="/pigeon/"' in front

    response = await server.post("/pigeon/letters", json={"id": "L1", "text": "你好", "ring": ""})
    assert response.status == 400  # raised by the channel, answered by the server
    error = (await response.json())["error"]
    assert error["code"] == "missing_field" and error["details"] == {"field": "ring"}

    response = await server.post(
        "/pigeon/letters", json={"id": "L2", "text": "你好，我想咨询", "ring": "CN-2026-0042"}
    )
    assert response.status == 201
    conversation_id = (await response.json())["conversation_id"]
    async with rt.db.read() as conn:
        identity = (
            await conn.execute(
                select(citizen_identities).where(citizen_identities.c.value == "CN-2026-0042")
            )
        ).one()
    assert identity.kind == "pigeon-ring"

    reply = await server.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"body": "您好，请问有什么可以帮您？"},
        headers={"Authorization": "Bearer demo-agent1"},
    )
    assert reply.status == 201
    await rt.runner.drain()
    # the hotline's own "an agent will answer" and the agent's reply, both by pigeon
    delivered = [(m.channel, m.to, m.kind) for m in PigeonPost.delivered]
    assert delivered == [
        ("pigeon", "CN-2026-0042", "auto_reply"),
        ("pigeon", "CN-2026-0042", "text"),
    ]
    assert PigeonPost.delivered[-1].body == "您好，请问有什么可以帮您？"


async def test_its_private_pages_and_its_limits_are_declared_by_it(server: TestClient) -> None:
    private = await server.get("/pigeon/keeper/log")
    public = await server.get("/pigeon/")
    assert (private.status, private.headers.get("Cache-Control")) == (200, "no-store")
    assert (public.status, public.headers.get("Cache-Control")) == (200, None)
    answers = [(await server.get("/pigeon/whistle")).status for _ in range(3)]
    assert answers == [200, 200, 429]


def test_no_core_file_names_it() -> None:
    """Adding the channel touched no core file: none of them knows its name or its kind."""
    for path in (ROOT / "callcenter").rglob("*"):
        if path.is_file() and path.suffix in {".py", ".json", ".toml", ".html", ".js"}:
            text = path.read_text("utf-8", errors="replace")
            assert "pigeon" not in text.lower(), path
