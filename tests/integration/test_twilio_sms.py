"""The Twilio SMS channel, with the real ``twilio`` client against a local stand-in of
Twilio's Messages API (tests/fakes/twilio_api.py), and webhooks signed as Twilio signs them.

Jobs are run by hand (``rt.runner.run_due()``) and time is moved on a ManualClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.actions.audit import verify_chain
from callcenter.actions.inbox import inbox
from callcenter.actions.messages import send_reply
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.segments import count_segments
from callcenter.runtime import Runtime
from callcenter.store.tables import (
    audit_events,
    audit_head,
    conversations,
    delivery_attempts,
    jobs,
    messages,
    metadata,
    tickets,
)
from callcenter.store.tables import (
    inbox as inbox_table,
)
from channels.twilio.sms import INBOUND_PATH, STATUS_PATH, TwilioSms
from tests.conftest import load_test_city, make_settings
from tests.fakes.twilio_api import TwilioStandIn, new_sid
from tests.helpers import actor

PUBLIC = "https://hotline.example.gov.cn"
OUR = "+14155550100"  # the hotline's Twilio number
OTHER = "+14155550101"  # a second number of the same account
CITIZEN = "+8613800000000"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def sms_options(standin: TwilioStandIn, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "account_sid": standin.account_sid,
        "auth_token": standin.auth_token,
        "from_number": OUR,
        "from_numbers": [OTHER],
        "api_base_url": standin.base_url,
        "rate_segments_per_second": 1000,  # pacing has its own test
        "timeout_seconds": 5,
    }
    options.update(overrides)
    return options


@dataclass
class Hotline:
    client: TestClient
    rt: Runtime
    standin: TwilioStandIn
    clock: ManualClock

    @property
    def local(self) -> str:
        """Where the server really listens (the reverse proxy's upstream)."""
        return str(self.client.make_url("")).rstrip("/")

    @property
    def channel(self) -> TwilioSms:
        channel = self.rt.channels.get("sms")
        assert isinstance(channel, TwilioSms)
        return channel

    async def inbound(
        self,
        body: str,
        *,
        sender: str = CITIZEN,
        to: str = OUR,
        sid: str | None = None,
        handle: bool = True,
    ) -> tuple[int, str]:
        """Twilio's webhook; then, unless ``handle`` is false, the inbox takes what it stored."""
        answer = await self.standin.send_inbound(
            PUBLIC + INBOUND_PATH, sender, body, to, sid=sid, via=self.local
        )
        if handle:
            await inbox(self.rt).process()
        return answer

    async def post(
        self, params: dict[str, str], *, signed_for: str = PUBLIC + INBOUND_PATH, **kw: Any
    ) -> tuple[int, Any]:
        status, text = await self.standin.post_signed(signed_for, params, via=self.local, **kw)
        return status, (json.loads(text) if text.startswith("{") else text)

    async def run_jobs(self) -> int:
        assert self.rt.runner is not None
        return await self.rt.runner.run_due()

    async def settle(self) -> None:
        """Run every job that is due, moving the clock over the pacing's short waits."""
        assert self.rt.runner is not None
        while True:
            await self.rt.runner.drain()
            paced = await rows(
                self.rt,
                select(func.min(jobs.c.run_at)).where(
                    jobs.c.state == "pending", jobs.c.last_error.contains("send rate")
                ),
            )
            if paced[0][0] is None:
                return
            self.clock.set(max(paced[0][0], self.clock.now()))


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[TwilioStandIn]:
    async with TwilioStandIn(numbers=[OUR, OTHER]) as fake:
        yield fake


async def open_hotline(
    tmp_path: Path,
    database_url: str,
    clock: ManualClock,
    standin: TwilioStandIn,
    *,
    public_url: str = PUBLIC,
    **options: Any,
) -> tuple[TestClient, Runtime]:
    settings = make_settings(
        tmp_path,
        database_url,
        public_url=public_url,
        channels=["channels.twilio.sms:TwilioSms"],
        channel_options={"sms": sms_options(standin, **options)},
        intake={"acknowledge_queued": False},
    )
    runtime = build_runtime(settings, clock=clock, seed=5)
    client = TestClient(TestServer(create_app(settings, runtime=runtime, start_jobs=False)))
    await client.start_server()
    await load_test_city(runtime)
    return client, runtime


@pytest_asyncio.fixture
async def hotline(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> AsyncIterator[Hotline]:
    client, runtime = await open_hotline(tmp_path, database_url, clock, standin)
    try:
        yield Hotline(client, runtime, standin, clock)
    finally:
        await client.close()


async def snapshot(rt: Runtime) -> dict[str, int]:
    """Row counts of every table and the audit head: "nothing written" means this is unchanged."""
    counts: dict[str, int] = {}
    async with rt.db.read() as conn:
        for table in metadata.sorted_tables:
            counts[table.name] = int(
                await conn.scalar(select(func.count()).select_from(table)) or 0
            )
        counts["audit_seq"] = int(await conn.scalar(select(audit_head.c.seq)) or 0)
    return counts


async def rows(rt: Runtime, query: Any) -> list[Any]:
    async with rt.db.read() as conn:
        return list((await conn.execute(query)).all())


async def attempts(rt: Runtime, message_id: int) -> list[Any]:
    return await rows(
        rt,
        select(delivery_attempts)
        .where(delivery_attempts.c.message_id == message_id)
        .order_by(delivery_attempts.c.attempt),
    )


async def message(rt: Runtime, message_id: int) -> Any:
    return (await rows(rt, select(messages).where(messages.c.id == message_id)))[0]


async def deliver_job(rt: Runtime, message_id: int) -> Any:
    found = await rows(rt, select(jobs).where(jobs.c.key == f"deliver:{message_id}"))
    return found[0]


async def outbound(hl: Hotline, body: str, *, to: str = OUR, sender: str = CITIZEN) -> int:
    """An agent's reply on a conversation the citizen opened by texting ``to``."""
    status, _ = await hl.inbound("你好", sender=sender, to=to)
    assert status == 200
    conversation = (
        await rows(
            hl.rt,
            select(conversations.c.id)
            .where(conversations.c.address == sender, conversations.c.service_address == to)
            .order_by(conversations.c.id.desc()),
        )
    )[0]
    agent = await actor(hl.rt, "agent1")
    return await send_reply(hl.rt, conversation.id, body, actor=agent)


# --- inbound --------------------------------------------------------------------------------


async def test_an_inbound_sms_becomes_a_routed_ticket_and_the_receipt_leaves_through_twilio(
    hotline: Hotline,
) -> None:
    sid = new_sid()
    status, text = await hotline.inbound(
        "小区路灯坏了，晚上一片漆黑", sender="+8613800000000", sid=sid, handle=False
    )
    assert (status, text) == (200, EMPTY_TWIML)

    # persisted before the 200, in the inbox
    [stored] = await rows(hotline.rt, select(inbox_table).where(inbox_table.c.provider_id == sid))
    assert (stored.state, stored.payload["body"]) == ("pending", "小区路灯坏了，晚上一片漆黑")
    assert await inbox(hotline.rt).process() == 1

    # then handled: the message, its citizen and a dispatched ticket
    inbound = (await rows(hotline.rt, select(messages).where(messages.c.provider_id == sid)))[0]
    assert inbound.direction == "in" and inbound.meta["to"] == OUR
    ticket = (await rows(hotline.rt, select(tickets)))[0]
    assert ticket.state == "dispatched" and ticket.department_id is not None
    receipt = (
        await rows(
            hotline.rt,
            select(messages).where(messages.c.direction == "out", messages.c.status == "queued"),
        )
    )[0]
    assert ticket.number in receipt.body

    assert await hotline.run_jobs() == 1
    [sent] = hotline.standin.accepted
    assert (sent["to"], sent["from"], sent["body"]) == (CITIZEN, OUR, receipt.body)
    [request] = hotline.standin.creates()
    assert request.authorized
    assert request.path == f"/2010-04-01/Accounts/{hotline.standin.account_sid}/Messages.json"
    assert request.form["StatusCallback"] == PUBLIC + STATUS_PATH
    row = await message(hotline.rt, receipt.id)
    assert (row.status, row.provider_id) == ("sent", sent["sid"])
    [attempt] = await attempts(hotline.rt, receipt.id)
    assert (attempt.attempt, attempt.outcome, attempt.http_status, attempt.provider_id) == (
        1,
        "accepted",
        201,
        sent["sid"],
    )
    assert attempt.detail["segments"] == count_segments(receipt.body).segments
    assert attempt.detail["provider_status"] == "queued"
    trail = await rows(
        hotline.rt,
        select(audit_events.c.action)
        .where(audit_events.c.entity_type == "message", audit_events.c.entity_id == receipt.id)
        .order_by(audit_events.c.seq),
    )
    # the attempt is recorded as started before Twilio is called, then completed
    assert [a.action for a in trail] == [
        "message.queue",
        "message.attempt",
        "message.attempt",
        "message.delivery",
    ]


async def test_a_retried_webhook_changes_nothing(hotline: Hotline) -> None:
    sid = new_sid()
    assert (await hotline.inbound("小区路灯坏了", sid=sid))[0] == 200
    before = await snapshot(hotline.rt)
    for _ in range(2):
        assert await hotline.inbound("小区路灯坏了", sid=sid) == (200, EMPTY_TWIML)
    assert await snapshot(hotline.rt) == before


async def test_the_same_citizen_however_the_number_is_written(hotline: Hotline) -> None:
    for sender in ("+8613800000000", "008613800000000", "13800000000"):
        assert (await hotline.inbound("你好", sender=sender))[0] == 200
    found = await rows(hotline.rt, select(conversations.c.citizen_id).distinct())
    assert len(found) == 1


async def test_unsigned_or_wrongly_signed_webhooks_are_refused(hotline: Hotline) -> None:
    params = hotline.standin.inbound_params(CITIZEN, "小区路灯坏了", OUR)
    before = await snapshot(hotline.rt)
    impostor = TwilioStandIn(hotline.standin.account_sid, "not-the-token")
    cases = {
        "no signature": {"signature": ""},
        "another account's token": {"signature": impostor.sign(PUBLIC + INBOUND_PATH, params)},
        "signed for another URL": {"signed_for": hotline.local + INBOUND_PATH},
        "signed for other values": {
            "signature": hotline.standin.sign(PUBLIC + INBOUND_PATH, {**params, "Body": "x"})
        },
    }
    for name, how in cases.items():
        status, body = await hotline.post(params, **how)
        assert status == 403, name
        assert body["error"]["code"] == "invalid_signature", name
    for path in (INBOUND_PATH, STATUS_PATH):
        async with aiohttp.ClientSession() as session:
            response = await session.post(hotline.local + path, data=params)
            assert response.status == 403
    assert await snapshot(hotline.rt) == before


async def test_missing_fields_are_a_clear_400(hotline: Hotline) -> None:
    before = await snapshot(hotline.rt)
    full = hotline.standin.inbound_params(CITIZEN, "小区路灯坏了", OUR)
    for name in ("MessageSid", "From", "To", "Body"):
        params = dict(full)
        params.pop(name)
        if name == "MessageSid":
            params.pop("SmsMessageSid")
            params.pop("SmsSid")
        status, body = await hotline.post(params)
        assert status == 400, name
        assert body["error"]["code"] == "missing_field", name
        assert name in body["error"]["message"], name
    status, body = await hotline.post({**full, "Body": "   "})
    assert status == 400 and body["error"]["code"] == "missing_field"
    status, body = await hotline.post({**full, "MessageSid": "not-a-sid"})
    assert status == 400 and body["error"]["code"] == "invalid_field"
    assert await snapshot(hotline.rt) == before


async def test_a_100_kb_body_is_refused(hotline: Hotline) -> None:
    before = await snapshot(hotline.rt)
    params = hotline.standin.inbound_params(CITIZEN, "路" * 100_000, OUR)
    status, body = await hotline.post(params)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert "65536" in body["error"]["message"]
    assert await snapshot(hotline.rt) == before


async def test_invalid_utf8_is_refused(hotline: Hotline) -> None:
    before = await snapshot(hotline.rt)
    sid = new_sid()
    prefix = f"MessageSid={sid}&From=%2B8613800000000&To=%2B14155550100&Body="
    for raw in (prefix.encode() + b"\xff\xfe\xfd", (prefix + "%FF%FE%E8%B7").encode()):
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                hotline.local + INBOUND_PATH,
                data=raw,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": "anything",
                },
            )
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_encoding"
    assert await snapshot(hotline.rt) == before


async def test_a_number_that_cannot_be_parsed_is_refused(hotline: Hotline) -> None:
    before = await snapshot(hotline.rt)
    for sender in ("not-a-number", "+86 1", "whatsapp:+8613800000000"):
        params = hotline.standin.inbound_params(sender, "小区路灯坏了", OUR)
        status, body = await hotline.post(params, headers={"Accept-Language": "en"})
        assert status == 400 and body["error"]["code"] == "invalid_phone", sender
        assert "is not a phone number we can use" in body["error"]["message"]
    assert await snapshot(hotline.rt) == before


async def test_behind_a_reverse_proxy_the_public_url_is_what_counts(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    # Twilio calls https://hotline.example.gov.cn/hotline/...; the proxy ends TLS, strips the
    # prefix and forwards over plain HTTP with its own Host
    public = PUBLIC + "/hotline"
    client, rt = await open_hotline(tmp_path, database_url, clock, standin, public_url=public)
    try:
        local = str(client.make_url("")).rstrip("/")
        params = standin.inbound_params(CITIZEN, "小区路灯坏了", OUR)
        forwarded = {
            "Host": "10.0.0.7:8080",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hotline.example.gov.cn",
            "X-Forwarded-For": "54.172.60.1",
        }
        async with aiohttp.ClientSession() as session:
            as_twilio_signed_it = standin.sign(public + INBOUND_PATH, params)
            response = await session.post(
                local + INBOUND_PATH,
                data=params,
                headers={**forwarded, "X-Twilio-Signature": as_twilio_signed_it},
            )
            assert response.status == 200 and await response.text() == EMPTY_TWIML
            # signed for the URL this server sees is not what Twilio would have signed
            params = standin.inbound_params(CITIZEN, "小区路灯坏了", OUR)
            response = await session.post(
                local + INBOUND_PATH,
                data=params,
                headers={
                    **forwarded,
                    "X-Twilio-Signature": standin.sign(local + INBOUND_PATH, params),
                },
            )
            assert response.status == 403
        # the status callback URL handed to Twilio is the public one too
        assert await inbox(rt).process() == 1
        assert rt.runner is not None
        await rt.runner.run_due()
        assert standin.creates()[0].form["StatusCallback"] == public + STATUS_PATH
    finally:
        await client.close()


async def test_a_picture_message_without_text_reaches_an_agent(hotline: Hotline) -> None:
    params = hotline.standin.inbound_params(CITIZEN, "", OUR)
    params.update(
        NumMedia="1",
        MediaUrl0=f"https://api.twilio.com/2010-04-01/Accounts/{hotline.standin.account_sid}"
        "/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
    )
    status, _ = await hotline.post(params)
    assert status == 200
    assert await inbox(hotline.rt).process() == 1
    [row] = await rows(hotline.rt, select(messages).where(messages.c.direction == "in"))
    assert row.body == "[彩信：1 个附件，无文字]"
    assert row.meta["media"][0]["type"] == "image/jpeg"


async def test_counts_in_other_scripts_are_not_numbers(hotline: Hotline) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` fails: such counts are read as none."""
    for i, raw in enumerate(("²", "१", "99999999999999999999")):
        params = hotline.standin.inbound_params(CITIZEN, f"第 {i} 条", OUR)
        params.update(NumMedia=raw, NumSegments=raw, MediaUrl0="https://example.org/x.jpg")
        status, _ = await hotline.post(params)
        assert status == 200, raw
    assert await inbox(hotline.rt).process() == 3
    found = await rows(hotline.rt, select(messages).where(messages.c.direction == "in"))
    assert [r.body for r in found] == ["第 0 条", "第 1 条", "第 2 条"]
    assert all("media" not in r.meta and "num_segments" not in r.meta for r in found)


# --- outbound -------------------------------------------------------------------------------


async def test_two_500s_then_delivered_on_the_third_try_exactly_once(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "您的工单已受理。")
    hotline.standin.fail_next(500, times=2)
    for expected in ("pending", "pending", "done"):
        assert await hotline.run_jobs() == 1
        job = await deliver_job(hotline.rt, message_id)
        assert job.state == expected
        if expected == "pending":
            assert job.run_at > hotline.clock.now()  # backed off
            assert await hotline.run_jobs() == 0
            hotline.clock.set(job.run_at)
    hotline.clock.advance(days=2)
    assert await hotline.run_jobs() == 0

    assert [r.status for r in hotline.standin.creates()] == [500, 500, 201]
    [sent] = hotline.standin.accepted
    assert sent["body"] == "您的工单已受理。"
    recorded = await attempts(hotline.rt, message_id)
    assert [(a.attempt, a.outcome, a.http_status, a.error_code) for a in recorded] == [
        (1, "retry", 500, "20500"),
        (2, "retry", 500, "20500"),
        (3, "accepted", 201, None),
    ]
    row = await message(hotline.rt, message_id)
    assert (row.status, row.provider_id) == ("sent", sent["sid"])
    assert recorded[2].provider_id == sent["sid"]
    assert (await verify_chain(hotline.rt.db))[1] is None  # every attempt is in the audit chain


async def test_retry_after_is_honoured(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "提醒：您的工单即将到期。")
    hotline.standin.fail_next(429, retry_after=30)
    await hotline.run_jobs()
    job = await deliver_job(hotline.rt, message_id)
    assert job.state == "pending" and job.run_at == hotline.clock.now() + timedelta(seconds=30)
    [attempt] = await attempts(hotline.rt, message_id)
    assert (attempt.outcome, attempt.http_status, attempt.error_code) == ("retry", 429, "20429")
    assert attempt.detail["retry_after"] == 30
    hotline.clock.advance(seconds=29)
    assert await hotline.run_jobs() == 0
    hotline.clock.advance(seconds=1)
    assert await hotline.run_jobs() == 1
    assert (await deliver_job(hotline.rt, message_id)).state == "done"
    assert len(hotline.standin.accepted) == 1


async def test_an_invalid_number_is_not_retried(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "您好")
    hotline.standin.fail_next(400, code=21211)
    await hotline.run_jobs()
    job = await deliver_job(hotline.rt, message_id)
    assert job.state == "dead" and job.attempts == 1
    row = await message(hotline.rt, message_id)
    assert row.status == "failed" and row.error.startswith("21211")
    [attempt] = await attempts(hotline.rt, message_id)
    assert (attempt.outcome, attempt.http_status, attempt.error_code) == ("failed", 400, "21211")
    assert "not a valid phone number" in attempt.detail["message"]
    hotline.clock.advance(days=1)
    assert await hotline.run_jobs() == 0
    assert len(hotline.standin.creates()) == 1 and hotline.standin.accepted == []


async def test_an_unsubscribed_citizen_is_not_retried(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "回访：请对本次服务评分。")
    hotline.standin.fail_next(400, code=21610)
    await hotline.run_jobs()
    assert (await deliver_job(hotline.rt, message_id)).state == "dead"
    [attempt] = await attempts(hotline.rt, message_id)
    assert (attempt.outcome, attempt.error_code) == ("failed", "21610")


async def test_a_timeout_is_retried(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    client, rt = await open_hotline(tmp_path, database_url, clock, standin, timeout_seconds=0.3)
    hl = Hotline(client, rt, standin, clock)
    try:
        message_id = await outbound(hl, "您的工单已办结。")
        standin.hang_next(10)
        await hl.run_jobs()
        [attempt] = await attempts(rt, message_id)
        assert (attempt.outcome, attempt.http_status, attempt.error_code) == (
            "retry",
            None,
            "timeout",
        )
        job = await deliver_job(rt, message_id)
        assert job.state == "pending"
        clock.set(job.run_at)
        await hl.run_jobs()
        assert (await deliver_job(rt, message_id)).state == "done"
        assert len(standin.accepted) == 1
    finally:
        await client.close()


async def test_wrong_credentials_are_retried_not_dropped(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    client, rt = await open_hotline(
        tmp_path, database_url, clock, standin, auth_token="a-token-from-last-year"
    )
    hl = Hotline(client, rt, standin, clock)
    try:
        # inbound webhooks are signed with the real token, so post this one by hand
        message_id = await send_reply(
            rt, await _conversation(rt), "您好", actor=await actor(rt, "agent1")
        )
        await hl.run_jobs()
        [attempt] = await attempts(rt, message_id)
        assert (attempt.outcome, attempt.http_status, attempt.error_code) == (
            "retry",
            401,
            "20003",
        )
        assert (await deliver_job(rt, message_id)).state == "pending"
        assert standin.creates()[0].authorized is False
    finally:
        await client.close()


async def test_a_send_interrupted_after_twilio_took_it_is_found_not_repeated(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    """Two replies with the same text: the second's process "dies" (its job is cancelled)
    while Twilio holds the answer. Its next run asks Twilio's list, which holds both texts,
    and takes the one no other message of ours holds; while Twilio cannot be asked it
    sends nothing."""
    async with TwilioStandIn(numbers=[OUR, OTHER], clock=clock.now) as standin:
        client, rt = await open_hotline(tmp_path, database_url, clock, standin)
        hl = Hotline(client, rt, standin, clock)
        try:
            first = await outbound(hl, "好的，已记录。")
            await hl.settle()
            agent = await actor(rt, "agent1")
            conversation = (await message(rt, first)).conversation_id
            second = await send_reply(rt, conversation, "好的，已记录。", actor=agent)
            clock.advance(timedelta(seconds=1))  # past the sender's pacing
            standin.hang_next(30, store_first=True)
            assert rt.runner is not None
            before = len(standin.accepted)
            running = asyncio.create_task(rt.runner.run_due())
            for _ in range(1000):  # until Twilio has it (bounded: 10 s)
                if len(standin.accepted) > before:
                    break
                await asyncio.sleep(0.01)
            running.cancel()  # the process dies while Twilio's answer is on its way
            with contextlib.suppress(asyncio.CancelledError):
                await running
            [started] = await attempts(rt, second)
            assert started.outcome == "started"
            taken = standin.accepted[-1]["sid"]
            assert (await message(rt, first)).provider_id != taken

            standin.list_failures = 1  # Twilio cannot be asked: nothing is sent blind
            clock.advance(timedelta(seconds=rt.settings.jobs.lease_seconds + 1))
            await hl.run_jobs()
            creates = len(standin.creates())
            assert len(standin.lists()) == 1
            assert (await deliver_job(rt, second)).state == "pending"
            [still] = await attempts(rt, second)
            assert still.outcome == "started"

            clock.set((await deliver_job(rt, second)).run_at)
            await hl.run_jobs()
            assert len(standin.creates()) == creates, "not sent again"
            row = await message(rt, second)
            assert (row.status, row.provider_id) == ("sent", taken)
            [done] = await attempts(rt, second)
            assert (done.outcome, done.provider_id) == ("accepted", taken)
            assert done.detail["found_at_provider"] is True
            assert (await deliver_job(rt, second)).state == "done"
        finally:
            await client.close()


async def _conversation(rt: Runtime) -> int:
    from callcenter.actions.intake import Inbound, receive_message

    result = await receive_message(
        rt, Inbound("sms", "phone", CITIZEN, "你好", provider_id=new_sid(), service_address=OUR)
    )
    return result.conversation_id


async def test_a_long_text_is_shortened_to_the_segment_budget(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    client, rt = await open_hotline(tmp_path, database_url, clock, standin, max_segments=2)
    hl = Hotline(client, rt, standin, clock)
    try:
        answer = "经核查，" + "该路段路灯线路老化，已安排更换。" * 30
        message_id = await outbound(hl, answer)
        await hl.run_jobs()
        [sent] = standin.accepted
        assert sent["num_segments"] == "2" and sent["body"].endswith("…")
        assert answer.startswith(sent["body"][:-1])
        assert (await message(rt, message_id)).body == answer  # the record keeps it all
        [attempt] = await attempts(rt, message_id)
        assert attempt.detail["shortened_from"] == len(answer)
    finally:
        await client.close()


async def test_replies_leave_from_the_number_the_citizen_wrote_to(hotline: Hotline) -> None:
    first = await outbound(hotline, "A", to=OUR, sender="+8613800000001")
    second = await outbound(hotline, "B", to=OTHER, sender="+8613800000002")
    await hotline.run_jobs()
    senders = {m["body"]: m["from"] for m in hotline.standin.accepted}
    assert senders == {"A": OUR, "B": OTHER}
    assert {first, second}


# --- status callbacks -------------------------------------------------------------------------


async def test_status_callbacks_move_forward_only(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "您的工单已派至市政设施管理处。")
    await hotline.run_jobs()
    sid = (await message(hotline.rt, message_id)).provider_id
    standin = hotline.standin

    assert await standin.send_status(sid, "sent", via=hotline.local) == (200, EMPTY_TWIML)
    row = await message(hotline.rt, message_id)
    assert row.status == "sent"
    before = await snapshot(hotline.rt)
    assert (await standin.send_status(sid, "delivered", via=hotline.local))[0] == 200
    row = await message(hotline.rt, message_id)
    assert (row.status, row.meta["provider_status"]) == ("delivered", "delivered")
    assert (await snapshot(hotline.rt))["audit_seq"] == before["audit_seq"] + 1

    # late and out-of-order reports change nothing
    settled = await snapshot(hotline.rt)
    for late in ("sent", "queued", "undelivered", "failed"):
        assert (await standin.send_status(sid, late, via=hotline.local))[0] == 200
    assert (await message(hotline.rt, message_id)).status == "delivered"
    assert await snapshot(hotline.rt) == settled


async def test_a_failed_status_keeps_the_error_code(hotline: Hotline) -> None:
    message_id = await outbound(hotline, "回访：请回复1-5评分。")
    await hotline.run_jobs()
    sid = (await message(hotline.rt, message_id)).provider_id
    await hotline.standin.send_status(sid, "undelivered", error_code=30007, via=hotline.local)
    row = await message(hotline.rt, message_id)
    assert (row.status, row.error, row.meta["provider_error_code"]) == (
        "undelivered",
        "30007",
        "30007",
    )


async def test_unknown_and_unsigned_status_callbacks(hotline: Hotline) -> None:
    before = await snapshot(hotline.rt)
    params = {
        "MessageSid": new_sid(),
        "MessageStatus": "delivered",
        "AccountSid": hotline.standin.account_sid,
    }
    status, body = await hotline.post(params, signed_for=PUBLIC + STATUS_PATH)
    assert (status, body) == (200, EMPTY_TWIML)
    status, _ = await hotline.post(params, signed_for=PUBLIC + STATUS_PATH, signature="x")
    assert status == 403
    status, body = await hotline.post({"MessageSid": new_sid()}, signed_for=PUBLIC + STATUS_PATH)
    assert status == 400 and body["error"]["code"] == "missing_field"
    assert await snapshot(hotline.rt) == before


# --- pacing -----------------------------------------------------------------------------------


async def test_the_send_rate_defers_one_sender_without_holding_up_another(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    client, rt = await open_hotline(
        tmp_path, database_url, clock, standin, rate_segments_per_second=1
    )
    hl = Hotline(client, rt, standin, clock)
    try:
        texts = {"a1": "Your ticket was accepted.", "a2": "Reminder: reply 1-5.", "b": "Hi"}
        ids = {
            "a1": await outbound(hl, texts["a1"], to=OUR, sender="+8613800000001"),
            "a2": await outbound(hl, texts["a2"], to=OUR, sender="+8613800000002"),
            "b": await outbound(hl, texts["b"], to=OTHER, sender="+8613800000003"),
        }
        assert await hl.run_jobs() == 3  # one batch: nothing waited for anything
        # the batch runs concurrently, so either of OUR's two messages may win the slot
        sent = {k for k, text in texts.items() if text in {m["body"] for m in standin.accepted}}
        assert len(sent) == 2 and "b" in sent
        [late] = {"a1", "a2"} - sent
        deferred = await deliver_job(rt, ids[late])
        assert deferred.state == "pending" and deferred.attempts == 0  # no attempt spent
        assert deferred.run_at == clock.now() + timedelta(seconds=1)  # one segment at 1/s
        assert await attempts(rt, ids[late]) == []
        clock.advance(seconds=0.5)
        assert await hl.run_jobs() == 0
        clock.advance(seconds=0.5)
        assert await hl.run_jobs() == 1
        done = await deliver_job(rt, ids[late])
        assert (done.state, done.attempts) == ("done", 1)
        assert standin.accepted[-1]["body"] == texts[late]
        assert [a.outcome for a in await attempts(rt, ids[late])] == ["accepted"]
    finally:
        await client.close()


async def test_a_long_message_spends_its_segments(
    tmp_path: Path, database_url: str, clock: ManualClock, standin: TwilioStandIn
) -> None:
    client, rt = await open_hotline(
        tmp_path, database_url, clock, standin, rate_segments_per_second=1
    )
    hl = Hotline(client, rt, standin, clock)
    try:
        long = "您的工单已办结，" + "处理结果如下。" * 20  # several UCS-2 segments
        segments = count_segments(long).segments
        assert segments >= 3
        await outbound(hl, long, to=OUR, sender="+8613800000001")
        assert await hl.run_jobs() == 1
        clock.advance(seconds=1)
        after = await outbound(hl, "好的", to=OUR, sender="+8613800000002")
        await hl.run_jobs()
        job = await deliver_job(rt, after)
        assert job.run_at == clock.now() + timedelta(seconds=segments - 1)
        assert len(standin.accepted) == 1
    finally:
        await client.close()


def test_options_are_checked_at_start(tmp_path: Path, sqlite_url: str) -> None:
    base = {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": OUR}
    for bad in (
        {"account_sid": "nope"},
        {"from_number": "4155550100"},
        {"auth_token": ""},
        {"rate_segments_per_second": 0},
        {"max_segments": 0},
        {"api_base_url": "ftp://x"},
    ):
        settings = make_settings(
            tmp_path,
            sqlite_url,
            channels=["channels.twilio.sms:TwilioSms"],
            channel_options={"sms": {**base, **bad}},
        )
        with pytest.raises(ValueError):
            build_runtime(settings)


# --- the whole loop ---------------------------------------------------------------------------


async def test_the_whole_loop_through_twilio_with_a_low_score_reopening_the_ticket(
    hotline: Hotline,
) -> None:
    """Inbound SMS -> ticket -> dispatched -> replied -> closed -> survey -> "２" -> reopened,
    every SMS through the real client to the stand-in, in order and in the citizen's language."""
    from tests.integration.test_followups import close_cycle

    rt, clock, standin = hotline.rt, hotline.clock, hotline.standin
    assert (await hotline.inbound("小区路灯坏了"))[0] == 200
    [ticket] = await rows(rt, select(tickets))
    assert ticket.state == "dispatched"
    await hotline.settle()
    closed = await close_cycle(rt, clock, ticket.number, "mh-municipal")
    assert closed["state"] == "closed"
    await hotline.settle()
    clock.advance(hours=2)  # the survey waits two hours after closure
    await hotline.settle()
    assert (await hotline.inbound("２"))[0] == 200  # a full-width two
    await hotline.settle()

    [reopened] = await rows(rt, select(tickets))
    assert reopened.state == "dispatched" and reopened.reopen_count == 1
    to_citizen = [m for m in standin.accepted if m["to"] == CITIZEN]
    assert [m["from"] for m in to_citizen] == [OUR] * 4
    bodies = [m["body"] for m in to_citizen]
    assert f"工单号{ticket.number}" in bodies[0]  # the receipt
    assert "已办结" in bodies[1] and "已更换灯泡" in bodies[1]  # closed, with the answer
    assert "回访" in bodies[2] and "1-5" in bodies[2]  # the survey
    assert "重新交" in bodies[3]  # reopened
    to_department = [m for m in standin.accepted if m["to"] != CITIZEN]
    assert to_department and all("回访不满意" in m["body"] for m in to_department)
    assert all(int(m["num_segments"]) <= rt.settings.notify.max_segments for m in standin.accepted)

    # every message was sent once, with one accepted attempt, and Twilio's reports land
    out = await rows(rt, select(messages).where(messages.c.direction == "out"))
    assert len(out) == len(standin.accepted) and {m.status for m in out} == {"sent"}
    for m in out:
        assert [a.outcome for a in await attempts(rt, m.id)] == ["accepted"]
        assert (await standin.send_status(m.provider_id, "delivered", via=hotline.local))[0] == 200
    out = await rows(rt, select(messages.c.status).where(messages.c.direction == "out"))
    assert {m.status for m in out} == {"delivered"}
