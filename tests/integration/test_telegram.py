"""The Telegram channel: the real python-telegram-bot client against a local Bot API stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.tickets import take_step
from callcenter.bootstrap import build_runtime, close_runtime, create_app, start_runtime
from callcenter.clock import ManualClock
from callcenter.domain.workflow import Step
from callcenter.runtime import Runtime
from callcenter.store.tables import (
    attachments,
    citizens,
    conversations,
    jobs,
    messages,
    surveys,
    tickets,
)
from tests.conftest import load_test_city, make_settings
from tests.fakes import telegram_api as tg
from tests.helpers import actor, cell_point

USER = 5550001
TOKEN = "123456:TEST-token"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[tuple[tg.FakeTelegram, str]]:
    api = tg.FakeTelegram(TOKEN)
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    yield api, f"http://127.0.0.1:{server.port}"
    await server.close()


def telegram_settings(tmp_path: Path, database_url: str, base: str, **extra: Any) -> Any:
    options = {
        "token": TOKEN,
        "base_url": f"{base}/bot",
        "base_file_url": f"{base}/file/bot",
        "poll_timeout": 1,
        **extra,
    }
    return make_settings(
        tmp_path,
        database_url,
        channels=["channels.simulated:SimulatedSms", "channels.telegram:TelegramChannel"],
        channel_options={"telegram": options},
        public_url="https://hotline.example.gov.cn",
    )


@pytest_asyncio.fixture
async def bot(
    tmp_path: Path, database_url: str, clock: ManualClock, fake: tuple[tg.FakeTelegram, str]
) -> AsyncIterator[tuple[Runtime, tg.FakeTelegram]]:
    api, base = fake
    rt = build_runtime(telegram_settings(tmp_path, database_url, base), clock=clock, seed=3)
    await start_runtime(rt, start_jobs=False)
    await load_test_city(rt)
    await asyncio.wait_for(rt.channels.get("telegram").ready.wait(), 10)  # type: ignore[union-attr]
    yield rt, api
    await close_runtime(rt)


async def until(check: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def inbound_count(rt: Runtime) -> int:
    async with rt.db.read() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(messages)
                .where(messages.c.channel == "telegram", messages.c.direction == "in")
            )
            or 0
        )


async def push(rt: Runtime, api: tg.FakeTelegram, update: dict[str, Any]) -> None:
    """Feed an update and wait until the bot has taken it (or passed over it)."""
    api.push(update)
    await until(lambda: _taken(api))


async def _taken(api: tg.FakeTelegram) -> bool:
    return not api.pending


async def deliver(rt: Runtime, clock: ManualClock) -> None:
    """Run the outbox, letting the clock pass for Telegram's one-message-a-second per chat."""
    assert rt.runner is not None
    for _ in range(30):
        await rt.runner.drain()
        async with rt.db.read() as conn:
            upcoming = await conn.scalar(
                select(func.min(jobs.c.run_at)).where(
                    jobs.c.state == "pending", jobs.c.kind == "message.deliver"
                )
            )
        if upcoming is None or upcoming - clock.now() > timedelta(minutes=5):
            return
        clock.set(max(upcoming, clock.now()))


def texts(api: tg.FakeTelegram, chat: int = USER) -> list[str]:
    return [str(m["text"]) for m in api.sent(chat)]


async def test_start_speaks_the_users_language(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    await push(rt, api, tg.text(USER, "/start"))
    await push(rt, api, tg.text(USER + 1, "/start", language="en"))
    await deliver(rt, clock)
    assert texts(api)[0].startswith("您好，这里是12345市民服务热线")
    assert texts(api, USER + 1)[0].startswith("Hello, this is the 12345 citizen hotline")


async def test_new_with_category_text_location_and_photo_makes_a_routed_ticket(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    picture = b"\xff\xd8\xff\xe0" + b"JPEG" * 500
    api.files["P1"] = picture
    await push(rt, api, tg.text(USER, "/new"))
    await deliver(rt, clock)
    question = api.sent(USER)[-1]
    codes = [b["callback_data"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
    assert "new:cat:garbage" in codes and len(codes) == len(rt.directory.categories)
    await push(rt, api, tg.button(USER, "new:cat:garbage", question["reply_markup"]))
    await push(rt, api, tg.text(USER, "小区门口的垃圾三天没人清运"))
    lat, lon = cell_point(rt, "GRID-QS-SL-01")
    await push(rt, api, tg.location(USER, lat, lon))
    await push(rt, api, tg.photo(USER, "P1"))
    await deliver(rt, clock)
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
        files = (await conn.execute(select(attachments))).all()
    assert ticket.origin_channel == "telegram" and ticket.state == "dispatched"
    assert rt.directory.by_id[ticket.department_id].code == "QS-CG"
    assert (ticket.lat, ticket.lon) == (lat, lon) and ticket.routing["rule"] == "grid"
    assert len(files) == 1 and files[0].ticket_id == ticket.id
    stored = Path(rt.settings.data_dir) / files[0].path
    assert stored.read_bytes() == picture and files[0].sha256 == hashlib.sha256(picture).hexdigest()
    replies = texts(api)
    assert replies[1].startswith("请用文字描述") and "请发送位置" in replies[2]
    assert f"工单号{ticket.number}" in replies[-1] and "青山区城市管理局" in replies[-1]
    keyboard = api.sent(USER)[2]["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_location"] is True


async def test_closure_sends_the_survey_with_buttons_and_a_low_score_reopens(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    await push(rt, api, tg.text(USER, "/new"))
    await push(rt, api, tg.button(USER, "new:cat:street_light"))
    await push(rt, api, tg.text(USER, "小区路灯不亮"))
    await push(rt, api, tg.text(USER, "/skip"))
    await push(rt, api, tg.text(USER, "/skip"))
    await deliver(rt, clock)
    async with rt.db.read() as conn:
        number = (await conn.execute(select(tickets.c.number))).scalar_one()
    staff, agent = await actor(rt, "mh-municipal"), await actor(rt, "agent1")
    await take_step(rt, number, Step.SIGN_FOR, actor=staff)
    await take_step(rt, number, Step.REPLY, actor=staff, text="已修复")
    await take_step(rt, number, Step.CLOSE, actor=agent)
    clock.advance(hours=3)
    await deliver(rt, clock)
    survey_message = next(m for m in api.sent(USER) if "回访" in str(m["text"]))
    rows = survey_message["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["1", "2", "3", "4", "5"]
    assert [b["text"] for b in rows[1]] == ["已解决", "未解决"]
    await push(
        rt, api, tg.button(USER, rows[0][1]["callback_data"], survey_message["reply_markup"])
    )
    await deliver(rt, clock)
    async with rt.db.read() as conn:
        survey = (await conn.execute(select(surveys))).one()
        state = (await conn.execute(select(tickets.c.state))).scalar_one()
    assert (survey.state, survey.score) == ("answered", 2) and state == "dispatched"
    assert "重新交" in texts(api)[-1]
    assert any(c["method"] == "answerCallbackQuery" for c in api.calls)


async def test_free_text_goes_to_an_agent_and_status_shows_only_own_tickets(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    await push(rt, api, tg.text(USER, "路灯坏了，怎么办？"))
    async with rt.db.read() as conn:
        conversation = (
            await conn.execute(select(conversations).where(conversations.c.channel == "telegram"))
        ).one()
    assert conversation.state == "queued" and conversation.ticket_id is None  # no auto ticket
    other = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000009", "小区路灯坏了", provider_id="SM1")
    )
    number = other.ticket["number"]  # type: ignore[index]
    await push(rt, api, tg.text(USER, f"/status {number}"))
    await push(rt, api, tg.text(USER, "/status"))
    await push(rt, api, tg.text(USER, "/frobnicate"))
    await deliver(rt, clock)
    replies = texts(api)
    assert f"没有找到您名下的工单 {number}" in replies[-3]
    assert replies[-2].startswith("请这样查询") and replies[-1].startswith("不认识这个命令")


async def test_queue_tells_the_place_the_desk_and_the_ivr_see(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    await push(rt, api, tg.text(USER, "/queue"))  # nothing written yet: not waiting
    await receive_message(rt, Inbound("sms", "phone", "+8613800000009", "你好，我想咨询"))
    clock.advance(seconds=1)
    await push(rt, api, tg.text(USER, "你好，我想咨询一下"))
    await push(rt, api, tg.text(USER, "/queue"))
    await deliver(rt, clock)
    replies = texts(api)
    assert replies[0].startswith("您当前没有在排队")
    minutes = round(2 * rt.settings.voice.average_handling_seconds / 60)
    assert replies[-1] == f"您正在排队等待人工坐席，排第 2 位，预计约 {max(1, minutes)} 分钟。"


async def test_sharing_the_phone_joins_the_sms_citizen(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    sms = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000000", "小区路灯坏了", provider_id="SM1")
    )
    await push(rt, api, tg.text(USER, "/help"))
    await push(rt, api, tg.contact(USER, "8613800000000"))
    await push(rt, api, tg.contact(USER, "8613900000000", owner=USER + 7))
    await push(rt, api, tg.text(USER, f"/status {sms.ticket['number']}"))  # type: ignore[index]
    await deliver(rt, clock)
    async with rt.db.read() as conn:
        people = (await conn.execute(select(citizens))).all()
    assert [p.id for p in people] == [sms.citizen_id]  # one person now
    replies = texts(api)
    assert "已关联手机号 +8613800000000" in replies[1]
    assert replies[2] == "请分享您本人的手机号。"
    assert replies[3].startswith(f"工单{sms.ticket['number']}（路灯故障）：已派单")  # type: ignore[index]


async def test_bad_input_gets_a_clear_reply_and_the_bot_keeps_running(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    await push(rt, api, {"message": {"message_id": 1, "date": 1, "text": "no chat or sender"}})
    await push(rt, api, {"edited_message": tg.text(USER, "edited")["message"]})
    await push(rt, api, tg.text(USER, "长" * 10000))
    assert await inbound_count(rt) == 0  # nothing half-written
    await push(rt, api, tg.text(USER, "/new"))
    await push(rt, api, tg.button(USER, "new:cat:garbage"))
    await push(rt, api, tg.text(USER, "垃圾没人清运"))
    await push(rt, api, tg.text(USER, "/skip"))
    await push(rt, api, tg.photo(USER, "MISSING"))  # Telegram cannot give us this file
    await push(rt, api, tg.button(USER, "survey:99999:score:1"))
    await deliver(rt, clock)
    replies = texts(api)
    assert replies[0].startswith("消息太长")
    assert "照片没能下载" in replies[-2] and replies[-1].startswith("这个按钮已失效")
    async with rt.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(attachments)) == 0
        assert await conn.scalar(select(func.count()).select_from(tickets)) == 0
        state = (await conn.execute(select(conversations.c.bot_state))).scalar_one()
    assert state["step"] == "photo"  # the dialog waits for a photo that works, or /skip
    await push(rt, api, tg.text(USER, "/skip"))
    async with rt.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(tickets)) == 1


async def test_rate_limits_and_429(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    rt, api = bot
    for words in ("/help", "/start", "/help"):
        await push(rt, api, tg.text(USER, words))
    assert rt.runner is not None
    await rt.runner.drain()
    assert len(api.sent(USER)) == 1  # one a second per chat
    async with rt.db.read() as conn:
        waiting = (
            (
                await conn.execute(
                    select(jobs.c.attempts).where(
                        jobs.c.state == "pending", jobs.c.kind == "message.deliver"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert waiting == [0, 0]  # deferred without spending an attempt
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    clock.advance(seconds=1)
    await rt.runner.drain()
    async with rt.db.read() as conn:
        retry = await conn.scalar(
            select(func.max(jobs.c.run_at)).where(
                jobs.c.state == "pending", jobs.c.kind == "message.deliver"
            )
        )
    assert retry is not None and retry - clock.now() >= timedelta(seconds=7)
    clock.advance(seconds=1)
    await rt.runner.drain()
    assert len(api.sent(USER)) == 1  # the one behind it waits its turn
    await deliver(rt, clock)
    assert len(api.sent(USER)) == 3


@contextlib.asynccontextmanager
async def webhook_server(
    tmp_path: Path, database_url: str, clock: ManualClock, base: str
) -> AsyncIterator[tuple[TestClient, Runtime]]:
    """The hotline's server with the bot in webhook mode (secret token ``s3cret``)."""
    settings = telegram_settings(tmp_path, database_url, base, webhook=True, secret_token="s3cret")
    rt = build_runtime(settings, clock=clock, seed=1)
    app = create_app(settings, runtime=rt, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        await load_test_city(rt)
        await asyncio.wait_for(rt.channels.get("telegram").ready.wait(), 10)  # type: ignore[union-attr]
        yield client, rt


async def test_webhook_mode_checks_the_secret_and_ignores_repeats(
    tmp_path: Path, database_url: str, clock: ManualClock, fake: tuple[tg.FakeTelegram, str]
) -> None:
    api, base = fake
    async with webhook_server(tmp_path, database_url, clock, base) as (client, rt):
        assert api.webhook is not None
        assert api.webhook["url"] == "https://hotline.example.gov.cn/channels/telegram/webhook"
        update = {"update_id": 77, **tg.text(USER, "你好")}
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            response = await client.post("/channels/telegram/webhook", json=update, headers=headers)
            assert response.status == 403
        assert await inbound_count(rt) == 0
        good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        for _ in range(2):
            response = await client.post("/channels/telegram/webhook", json=update, headers=good)
            assert response.status == 200
        assert await inbound_count(rt) == 1
        response = await client.post("/channels/telegram/webhook", data=b"{", headers=good)
        assert response.status == 400
        response = await client.post("/channels/telegram/webhook", json={"x": 1}, headers=good)
        assert response.status == 400


async def test_a_webhook_update_of_the_wrong_shape_is_a_400(
    tmp_path: Path, database_url: str, clock: ManualClock, fake: tuple[tg.FakeTelegram, str]
) -> None:
    _, base = fake
    async with webhook_server(tmp_path, database_url, clock, base) as (client, rt):
        good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret", "Accept-Language": "en"}
        for update, field in (
            ({"update_id": 1, "message": "hi"}, "message"),
            ({"update_id": 2, "message": 5}, "message"),
            ({"update_id": 3, "callback_query": "x"}, "callback_query"),
            ({"update_id": 4, "message": {"chat": {"id": USER}}}, "update"),
            ({"update_id": 5, "message": {"message_id": 1, "date": 0, "from": "x"}}, "update"),
        ):
            response = await client.post("/channels/telegram/webhook", json=update, headers=good)
            assert response.status == 400, update
            error = (await response.json())["error"]
            assert (error["code"], error["details"]["field"]) == ("invalid_field", field)
            assert field in error["message"]
        # a survey button whose id is not an ASCII number is not a survey button
        response = await client.post(
            "/channels/telegram/webhook",
            json={"update_id": 6, **tg.button(USER, "survey:²:score:1")},
            headers=good,
        )
        assert response.status == 200
        assert await inbound_count(rt) == 1


pytestmark = pytest.mark.slow


async def test_a_mediation_party_known_on_telegram_is_invited_there_in_their_language(
    bot: tuple[Runtime, tg.FakeTelegram], clock: ManualClock
) -> None:
    """The respondent shared their phone with the bot: the invitation reaches them on
    Telegram too, in English, with the same link and PIN as the SMS; the applicant, not
    on Telegram, gets nothing there; answering "decline" in the chat declines."""
    from callcenter.actions import mediations as med
    from callcenter.store.tables import mediation_parties
    from tests.integration.test_mediations import RESPONDENT, case, link_and_pin, outbound

    rt, api = bot
    await push(rt, api, tg.text(USER, "/start", language="en"))
    await push(rt, api, tg.contact(USER, RESPONDENT.removeprefix("+")))
    await deliver(rt, clock)
    before = len(texts(api))

    _, dept, m = await case(rt)
    await med.schedule_mediation(rt, m["id"], clock.now() + timedelta(days=2), actor=dept)
    await deliver(rt, clock)

    new = texts(api)[before:]
    assert len(new) == 1, new
    assert "your dispute mediation is by video" in new[0] and "DECLINE" in new[0]
    sms = await outbound(rt, RESPONDENT)
    assert link_and_pin(new[0]) == link_and_pin(sms[0])
    assert {int(c["chat_id"]) for c in api.sent()} == {USER}  # the applicant is not there

    await push(rt, api, tg.text(USER, "decline", language="en"))
    await deliver(rt, clock)
    async with rt.db.read() as conn:
        party = (
            await conn.execute(
                select(mediation_parties).where(mediation_parties.c.phone == RESPONDENT)
            )
        ).one()
    assert party.declined_at is not None and party.decline_text == "decline"
    assert "will not attend" in texts(api)[-1]
