"""Request bodies that arrive in pieces, over a real socket (callcenter/api/bodies.py).

Every handler that reads a body reads it whole: a webhook or an API request
cut into two TCP segments 50 ms apart is read as one; a body over the limit is
413 however it arrives; a body that stops arriving is 408.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.actions.inbox import inbox
from callcenter.api.bodies import read_body
from callcenter.api.keys import RUNTIME
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.errors import HotlineError
from callcenter.runtime import Runtime
from callcenter.store.tables import inbox as inbox_table
from callcenter.store.tables import messages, tickets
from channels.twilio.sms import INBOUND_PATH
from tests.conftest import load_test_city, make_settings
from tests.fakes import telegram_api as tg
from tests.fakes.twilio_api import TwilioStandIn
from tests.integration.test_telegram import USER, telegram_settings
from tests.integration.test_twilio_sms import CITIZEN, OUR, PUBLIC, open_hotline
from tests.pieces import send_in_pieces


async def count(rt: Runtime, table: object) -> int:
    async with rt.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def padded(template: str, size: int, encode: object) -> str:
    """The longest text of Chinese characters (and ASCII to finish) whose encoded body is
    exactly ``size`` bytes."""
    text = ""
    while len(encode(text + "路")) <= size:  # type: ignore[operator]
        text += "路"
    while len(encode(text + "a")) <= size:  # type: ignore[operator]
        text += "a"
    assert len(encode(text)) == size  # type: ignore[operator]
    return text


@pytest_asyncio.fixture
async def web_api(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, sqlite_url)
    runtime = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(settings, runtime=runtime, start_jobs=False))) as c:
        await load_test_city(runtime)
        yield c


def url(client: TestClient, path: str) -> str:
    return str(client.make_url(path))


async def test_a_signed_twilio_webhook_in_two_pieces_is_stored(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    async with TwilioStandIn(numbers=[OUR]) as standin:
        client, rt = await open_hotline(tmp_path, sqlite_url, clock, standin)
        try:

            def form(text: str) -> bytes:
                params = standin.inbound_params(CITIZEN, text, OUR, sid="SM" + "7" * 32)
                return urllib.parse.urlencode(params).encode()

            text = padded("", 1185, form)
            params = standin.inbound_params(CITIZEN, text, OUR, sid="SM" + "7" * 32)
            body = urllib.parse.urlencode(params).encode()
            assert len(body) == 1185
            answer = await send_in_pieces(
                url(client, INBOUND_PATH),
                body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": standin.sign(PUBLIC + INBOUND_PATH, params),
                },
                gap=0.05,
            )
            assert answer.status == 200, answer.body
            await inbox(rt).process()
            async with rt.db.read() as conn:
                stored = (await conn.execute(select(messages.c.body))).scalars().all()
            assert stored == [text]
        finally:
            await client.close()


async def test_a_698_byte_api_request_in_two_pieces_is_accepted(web_api: TestClient) -> None:
    rt = web_api.server.app[RUNTIME]

    def encode(text: str) -> bytes:
        return orjson.dumps({"description": text, "address": "港湾路 8 号", "type": "complaint"})

    description = padded("", 698, encode)
    body = encode(description)
    assert len(body) == 698
    answer = await send_in_pieces(
        url(web_api, "/api/tickets"),
        body,
        headers={"Authorization": "Bearer demo-agent1", "Content-Type": "application/json"},
    )
    assert answer.status == 201, answer.body
    assert answer.json()["description"] == description
    async with rt.db.read() as conn:
        assert (
            await conn.scalar(
                select(tickets.c.description).where(tickets.c.id == answer.json()["id"])
            )
            == description
        )


async def test_an_api_body_over_the_limit_is_413_however_it_arrives(web_api: TestClient) -> None:
    rt = web_api.server.app[RUNTIME]
    before = await count(rt, tickets)
    body = orjson.dumps({"description": "路" * 30_000})  # 90 kB, over the API's 64 kB
    for chunked in (False, True):
        answer = await send_in_pieces(
            url(web_api, "/api/tickets"),
            body,
            headers={"Authorization": "Bearer demo-agent1", "Accept-Language": "en"},
            pieces=6,
            gap=0.02,
            chunked=chunked,
        )
        assert answer.status == 413, (chunked, answer.body)
        error = answer.json()["error"]
        assert error["code"] == "body_too_large" and "65536" in error["message"]
    assert await count(rt, tickets) == before


async def test_the_simulated_provider_reads_a_body_in_pieces(web_api: TestClient) -> None:
    rt = web_api.server.app[RUNTIME]
    text = "小区路灯坏了，" * 40
    body = orjson.dumps({"from": "+8613800000001", "text": text, "id": "SIM-PIECES-1"})
    answer = await send_in_pieces(
        url(web_api, "/channels/simulated/sms"), body, pieces=3, chunked=True
    )
    assert answer.status == 202, answer.body
    async with rt.db.read() as conn:
        payload = await conn.scalar(select(inbox_table.c.payload))
    assert payload["body"] == text


@pytest.mark.slow
async def test_telegram_reads_an_update_in_pieces_and_refuses_2_mb_with_413(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    api = tg.FakeTelegram("123456:TEST-token")
    fake = TestServer(api.app(), host="127.0.0.1")
    await fake.start_server()
    settings = telegram_settings(
        tmp_path, sqlite_url, f"http://127.0.0.1:{fake.port}", webhook=True, secret_token="s3cret"
    )
    rt = build_runtime(settings, clock=clock, seed=1)
    try:
        async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
            await load_test_city(rt)
            await asyncio.wait_for(rt.channels.get("telegram").ready.wait(), 10)  # type: ignore[union-attr]
            headers = {
                "X-Telegram-Bot-Api-Secret-Token": "s3cret",
                "Content-Type": "application/json",
            }
            before = await count(rt, messages)
            huge = orjson.dumps({"update_id": 78, **tg.text(USER, "路" * 700_000)})
            assert len(huge) > 2_000_000
            for chunked in (False, True):
                answer = await send_in_pieces(
                    url(c, "/channels/telegram/webhook"),
                    huge,
                    headers=headers,
                    pieces=4,
                    gap=0.02,
                    chunked=chunked,
                )
                assert answer.status == 413, (chunked, answer.body[:200])
                assert answer.json()["error"]["code"] == "body_too_large"
            assert await count(rt, messages) == before

            text = "你好，港湾路的垃圾已经三天没人清运了。" * 20
            update = orjson.dumps({"update_id": 79, **tg.text(USER, text)})
            answer = await send_in_pieces(
                url(c, "/channels/telegram/webhook"), update, headers=headers
            )
            assert answer.status == 200, answer.body
            async with rt.db.read() as conn:
                bodies = (await conn.execute(select(messages.c.body))).scalars().all()
            assert text in bodies
    finally:
        await fake.close()


async def test_a_body_that_stops_arriving_is_408() -> None:
    async def handler(request: web.Request) -> web.Response:
        try:
            raw = await read_body(request, limit=1000, within=0.3)
        except HotlineError as error:
            return web.json_response({"code": error.code}, status=error.status)
        return web.json_response({"size": len(raw)})

    app = web.Application()
    app.router.add_post("/", handler)
    async with TestServer(app) as server:
        answer = await send_in_pieces(str(server.make_url("/")), b"x" * 800, pieces=2, stop_after=1)
        assert answer.status == 408 and answer.json() == {"code": "body_timeout"}
        answer = await send_in_pieces(str(server.make_url("/")), b"x" * 800, pieces=4)
        assert answer.json() == {"size": 800}
