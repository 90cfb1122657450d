"""A real ``callcenter worker`` sending through the Twilio channel, killed with SIGKILL mid-run.

Twilio's Messages API has no idempotency key. So each attempt is recorded
before Twilio is called, and a job that finds an attempt started and never
finished asks Twilio's Messages list (by sender and recipient, back to the
attempt's time) whether the message went out before it sends again. What must
hold: no message is lost, and none is sent twice, wherever the kill lands.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.messages import send_reply
from callcenter.runtime import Runtime
from callcenter.store.tables import delivery_attempts, jobs, messages
from tests.fakes.twilio_api import TwilioStandIn, new_sid
from tests.helpers import actor, start_worker, until_all_jobs_done

OUR = "+14155550100"


def _worker(tmp_path: Path, database_url: str, standin: TwilioStandIn) -> subprocess.Popen[bytes]:
    options = {
        "sms": {
            "account_sid": standin.account_sid,
            "auth_token": standin.auth_token,
            "from_number": OUR,
            "api_base_url": standin.base_url,
            "rate_segments_per_second": 1000,
            "timeout_seconds": 10,
        }
    }
    return start_worker(
        tmp_path,
        database_url,
        PUBLIC_URL="https://hotline.example.gov.cn",
        CHANNELS='["channels.twilio.sms:TwilioSms"]',
        CHANNEL_OPTIONS=json.dumps(options),
    )


@pytest.mark.slow
async def test_sigkill_while_sending_loses_nothing_and_repeats_at_most_once(
    rt: Runtime, tmp_path: Path, database_url: str
) -> None:
    agent = await actor(rt, "agent1")
    result = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000001", "你好", provider_id=new_sid())
    )
    ids = [result.reply_message_id]
    for i in range(30):
        ids.append(await send_reply(rt, result.conversation_id, f"第 {i} 条回复", actor=agent))
    async with rt.db.read() as conn:
        found = await conn.execute(
            select(messages.c.id, messages.c.body).where(messages.c.id.in_(ids))
        )
        body_of = {row.id: row.body for row in found}
    assert len(set(body_of.values())) == len(ids), (
        "every body is unique, so the stand-in's log maps back"
    )

    # Twilio stores each message, then takes a quarter second to answer: the kill lands there
    standin = TwilioStandIn(numbers=[OUR], latency=0.25)
    await standin.start()
    try:
        worker = _worker(tmp_path, database_url, standin)
        try:
            deadline = time.monotonic() + 60
            while len(standin.accepted) < 8:
                assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the worker sent nothing"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        async with rt.db.read() as conn:
            done_before = {
                row.payload["message_id"]
                for row in (await conn.execute(select(jobs).where(jobs.c.state == "done"))).all()
            }
            running = (await conn.execute(select(jobs.c.id).where(jobs.c.state == "running"))).all()
        assert done_before and running, "the kill should land mid-run"
        sent_before = Counter(m["body"] for m in standin.accepted)

        await until_all_jobs_done(rt, _worker(tmp_path, database_url, standin), len(ids))
    finally:
        await standin.close()

    sent = Counter(m["body"] for m in standin.accepted)
    sids = {}
    for m in standin.accepted:
        sids.setdefault(m["body"], set()).add(m["sid"])
    assert set(sent) == set(body_of.values()), "every message reached Twilio"
    assert max(sent.values()) == 1, f"sent twice: {[b for b, n in sent.items() if n > 1]}"
    for message_id, body in ((i, body_of[i]) for i in ids):
        if message_id in done_before:
            assert sent[body] == sent_before[body] == 1, body
    async with rt.db.read() as conn:
        rows = (
            await conn.execute(
                select(messages.c.id, messages.c.status, messages.c.provider_id).where(
                    messages.c.id.in_(ids)
                )
            )
        ).all()
        accepted = Counter(
            (
                await conn.execute(
                    select(delivery_attempts.c.message_id).where(
                        delivery_attempts.c.outcome == "accepted"
                    )
                )
            ).scalars()
        )
        attempts = dict((await conn.execute(select(jobs.c.id, jobs.c.attempts))).all())
    for message_id, status, provider_id in rows:
        assert status == "sent", message_id
        assert provider_id in sids[body_of[message_id]], "the recorded sid is one Twilio gave"
        assert accepted[message_id] == 1, "one accepted attempt recorded per message"
    assert max(attempts.values()) == 2, "a job interrupted by the kill ran again"


async def _one_reply(rt: Runtime, text: str) -> int:
    agent = await actor(rt, "agent1")
    result = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000002", "你好", provider_id=new_sid())
    )
    assert rt.runner is not None
    async with TwilioStandIn(numbers=[OUR]) as standin:  # the auto reply goes out first
        worker = _worker(tmp_path_of(rt), rt.settings.effective_database_url, standin)
        await until_all_jobs_done(rt, worker, 1)
    return await send_reply(rt, result.conversation_id, text, actor=agent)


def tmp_path_of(rt: Runtime) -> Path:
    return Path(rt.settings.data_dir).parent


async def _kill_while_twilio_holds_it(rt: Runtime, standin: TwilioStandIn, message_id: int) -> None:
    """A worker sends; Twilio (stores it or not, as told, and) holds the answer; the worker
    is killed with SIGKILL while it waits."""
    worker = _worker(tmp_path_of(rt), rt.settings.effective_database_url, standin)
    try:
        deadline = time.monotonic() + 30
        while not standin.creates():
            assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the worker did not call Twilio"
            await asyncio.sleep(0.02)
        async with rt.db.read() as conn:
            outcomes = (
                (
                    await conn.execute(
                        select(delivery_attempts.c.outcome).where(
                            delivery_attempts.c.message_id == message_id
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert outcomes == ["started"], "the attempt is recorded before Twilio is called"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


async def _attempts(rt: Runtime, message_id: int) -> list[tuple[int, str, str | None, Any]]:
    async with rt.db.read() as conn:
        rows = await conn.execute(
            select(
                delivery_attempts.c.attempt,
                delivery_attempts.c.outcome,
                delivery_attempts.c.provider_id,
                delivery_attempts.c.detail,
            )
            .where(delivery_attempts.c.message_id == message_id)
            .order_by(delivery_attempts.c.attempt)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.mark.slow
async def test_a_worker_killed_after_twilio_took_the_sms_does_not_send_it_again(
    rt: Runtime,
) -> None:
    message_id = await _one_reply(rt, "已转交市政处理，工单号 20261127-0001")
    async with TwilioStandIn(numbers=[OUR]) as standin:
        standin.hang_next(30, store_first=True)  # Twilio has it; its answer never arrives
        await _kill_while_twilio_holds_it(rt, standin, message_id)
        [taken] = standin.accepted
        await until_all_jobs_done(
            rt, _worker(tmp_path_of(rt), rt.settings.effective_database_url, standin), 2
        )
        assert len(standin.creates()) == 1, "Twilio was asked to send it once"
        [listed] = standin.lists()
        assert listed.form["To"] == "+8613800000002" and listed.form["From"] == OUR
    assert len(standin.accepted) == 1
    async with rt.db.read() as conn:
        row = (await conn.execute(select(messages).where(messages.c.id == message_id))).one()
    assert row.status == "sent" and row.provider_id == taken["sid"]
    [(number, outcome, sid, detail)] = await _attempts(rt, message_id)
    assert (number, outcome, sid) == (1, "accepted", taken["sid"])
    assert detail["found_at_provider"] is True and detail["to"] == "+8613800000002"


@pytest.mark.slow
async def test_a_worker_killed_before_twilio_took_the_sms_sends_it_once_after_the_restart(
    rt: Runtime,
) -> None:
    message_id = await _one_reply(rt, "请提供具体地址，谢谢")
    async with TwilioStandIn(numbers=[OUR]) as standin:
        standin.hang_next(30)  # the request is held and never stored
        await _kill_while_twilio_holds_it(rt, standin, message_id)
        assert standin.accepted == []
        await until_all_jobs_done(
            rt, _worker(tmp_path_of(rt), rt.settings.effective_database_url, standin), 2
        )
        [taken] = standin.accepted
        assert len(standin.lists()) == 1
    attempts = await _attempts(rt, message_id)
    assert [(n, o, sid) for n, o, sid, _ in attempts] == [
        (1, "retry", None),
        (2, "accepted", taken["sid"]),
    ]
    assert attempts[0][3]["found_at_provider"] is False
