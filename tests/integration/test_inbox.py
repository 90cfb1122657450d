"""The inbox: inbound text stored before the provider's answer, handled right after.

On SQLite and PostgreSQL: a burst is stored in few transactions, a repeated
provider id adds nothing, handling is the same intake as ``receive_message``,
a failing text fails alone and is kept, and a real worker killed with SIGKILL
while handling leaves every text handled exactly once after its restart.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.actions import intake
from callcenter.actions.audit import verify_chain
from callcenter.actions.inbox import InboxFailed, inbox
from callcenter.actions.intake import Inbound
from callcenter.actions.operations import operator, requeue_failed_texts
from callcenter.domain.errors import InvalidInput
from callcenter.foreground import Foreground
from callcenter.runtime import Runtime
from callcenter.store.tables import conversations, messages, tickets
from callcenter.store.tables import inbox as inbox_table
from tests.helpers import counted_commits, start_worker


def sms(i: int, text: str = "小区路灯坏了，晚上很黑", *, sid: str | None = None) -> Inbound:
    return Inbound(
        "sms",
        "phone",
        f"+86139{i:08d}",
        text,
        provider_id=sid or f"SM-INBOX-{i}",
        service_address="12345",
        meta={"to": "12345"},
    )


async def count(rt: Runtime, table: Any, *where: Any) -> int:
    async with rt.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def states(rt: Runtime) -> Counter[str]:
    async with rt.db.read() as conn:
        return Counter((await conn.execute(select(inbox_table.c.state))).scalars())


async def test_a_burst_is_stored_in_a_few_transactions_and_answered_once_committed(
    rt: Runtime,
) -> None:
    with counted_commits(rt) as commits:
        accepted = await asyncio.gather(*(inbox(rt).accept(sms(i)) for i in range(50)))
    assert [a.duplicate for a in accepted] == [False] * 50
    assert len({a.inbox_id for a in accepted}) == 50
    # every answer came after its row was committed, and the rows went in together
    assert await states(rt) == Counter({"pending": 50})
    assert commits[0] <= 3
    # stored is not handled: no message, conversation or ticket yet
    assert await count(rt, messages) == 0


async def test_a_repeated_provider_id_adds_nothing(rt: Runtime) -> None:
    box = inbox(rt)
    first = await box.accept(sms(1))
    # the same webhook twice at once, and again later
    again = await asyncio.gather(box.accept(sms(1)), box.accept(sms(1)))
    assert [(a.inbox_id, a.duplicate) for a in again] == [(first.inbox_id, True)] * 2
    assert await box.process() == 1
    assert (await box.accept(sms(1))) == type(first)(first.inbox_id, True)
    assert await box.process() == 0
    assert await count(rt, messages, messages.c.direction == "in") == 1
    assert await count(rt, tickets) == 1


async def test_bad_input_is_refused_before_anything_is_stored(rt: Runtime) -> None:
    for body, code in (("   ", "missing_field"), ("x" * 5000, "message_too_long")):
        with pytest.raises(InvalidInput) as raised:
            await inbox(rt).accept(sms(2, body))
        assert raised.value.code == code
    assert await count(rt, inbox_table) == 0


async def test_handling_is_the_intake_in_order_with_what_it_became_recorded(
    rt: Runtime,
) -> None:
    box = inbox(rt)
    texts = ["小区路灯坏了", "你好，我想咨询一下", "港湾路垃圾三天没人清运"]
    accepted = [await box.accept(sms(7, text, sid=f"SM-ORDER-{n}")) for n, text in enumerate(texts)]
    assert await box.process() == 3
    results = [await box.result(a.inbox_id) for a in accepted]
    # one citizen; a ticket, then a conversation queued for an agent, which the third
    # text extends
    assert len({r.citizen_id for r in results}) == 1
    assert [r.ticket is not None for r in results] == [True, False, False]
    assert [r.conversation_state for r in results] == ["closed", "queued", "queued"]
    assert results[1].conversation_id == results[2].conversation_id
    async with rt.db.read() as conn:
        rows = (await conn.execute(select(inbox_table).order_by(inbox_table.c.id))).all()
        bodies = (
            await conn.execute(
                select(messages.c.body).where(messages.c.direction == "in").order_by(messages.c.id)
            )
        ).scalars()
        assert list(bodies) == texts
    assert [(r.state, r.attempts, r.error) for r in rows] == [("done", 1, None)] * 3
    assert [r.message_id for r in rows] == [r.message_id for r in results]
    assert all(r.processed_at >= r.received_at for r in rows)
    assert (await verify_chain(rt.db))[1] is None


async def test_a_text_that_fails_fails_alone_and_is_kept(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = inbox(rt)
    for i in range(5):
        await box.accept(sms(i, "有毒的消息" if i == 2 else "小区路灯坏了"))
    real = intake.classify

    def classify(body: str, categories: Any) -> Any:
        if body == "有毒的消息":
            raise RuntimeError("a defect met by one text")
        return real(body, categories)

    monkeypatch.setattr(intake, "classify", classify)
    assert await box.process() == 4
    assert await states(rt) == Counter({"done": 4, "failed": 1})
    async with rt.db.read() as conn:
        failed = (
            await conn.execute(select(inbox_table).where(inbox_table.c.state == "failed"))
        ).one()
    assert failed.error == "RuntimeError: a defect met by one text"
    assert failed.payload["body"] == "有毒的消息"
    with pytest.raises(InboxFailed):
        await box.result(failed.id, wait_seconds=1)
    # nothing of it was written, and everything else was, once
    assert await count(rt, messages, messages.c.direction == "in") == 4
    assert await count(rt, tickets) == 4
    assert (await verify_chain(rt.db))[1] is None

    # the defect fixed, the text is put back in line and handled
    monkeypatch.setattr(intake, "classify", real)
    assert await requeue_failed_texts(rt.db, actor=operator(), now=rt.clock.now()) == 1
    assert await box.process() == 1
    assert await states(rt) == Counter({"done": 5})
    assert await count(rt, messages, messages.c.direction == "in") == 5


async def test_a_batch_stops_at_its_time_budget_and_the_rest_follows(rt: Runtime) -> None:
    rt.settings.intake.inbox_batch_ms = 0.001  # one text per transaction
    rt.settings.intake.inbox_busy_batch_ms = 0.001
    box = inbox(rt)
    for i in range(5):
        await box.accept(sms(i))
    with counted_commits(rt) as commits:
        assert await box.process() == 5
    assert commits[0] == 5
    assert await states(rt) == Counter({"done": 5})


@pytest.mark.parametrize("busy", [True, False])
async def test_while_webhooks_come_the_batches_are_small(rt: Runtime, busy: bool) -> None:
    rt.settings.intake.inbox_batch_ms = 60_000
    rt.settings.intake.inbox_busy_batch_ms = 0.001
    # "busy": a webhook seen within the last minute; otherwise none counts as recent
    rt.foreground = Foreground(quiet=0, max_wait=30, recent=60 if busy else 0)
    box = inbox(rt)
    for i in range(5):
        await box.accept(sms(i))
    with counted_commits(rt) as commits:
        assert await box.process() == 5
    assert commits[0] == (5 if busy else 1)


async def test_the_handling_waits_while_a_webhook_is_in_hand(rt: Runtime) -> None:
    rt.foreground = Foreground(quiet=0.001, max_wait=30)
    box = inbox(rt)
    await box.accept(sms(1))
    with rt.foreground.request():  # another webhook, not yet answered
        handling = asyncio.create_task(box.process())
        await asyncio.sleep(0.05)
        assert not handling.done() and await states(rt) == Counter({"pending": 1})
    assert await asyncio.wait_for(handling, 10) == 1
    assert await states(rt) == Counter({"done": 1})


async def test_the_driver_handles_what_is_stored_without_being_asked(rt: Runtime) -> None:
    box = inbox(rt)
    await box.start()
    try:
        accepted = await box.accept(sms(3))
        result = await box.result(accepted.inbox_id, wait_seconds=10)
    finally:
        await box.stop()
    assert result.ticket is not None and result.ticket["state"] == "dispatched"


async def test_a_worker_killed_while_handling_leaves_every_text_handled_once(
    rt: Runtime, tmp_path: Path, database_url: str
) -> None:
    total = 300
    box = inbox(rt)
    for start in range(0, total, 50):
        await asyncio.gather(*(box.accept(sms(i)) for i in range(start, start + 50)))
    env = {"INTAKE__INBOX_BATCH_MS": "5", "INTAKE__INBOX_POLL_SECONDS": "0.1"}
    worker = start_worker(tmp_path, database_url, **env)
    try:
        deadline = time.monotonic() + 60
        while (await states(rt))["done"] < 40:  # killed part-way through
            assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, await states(rt)
            await asyncio.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert (await states(rt))["pending"] > 0, "the worker finished before it was killed"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)

    worker = start_worker(tmp_path, database_url, **env)
    try:
        deadline = time.monotonic() + 90
        while (await states(rt)) != Counter({"done": total}):
            assert worker.poll() is None, worker.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, await states(rt)
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
    assert await count(rt, messages, messages.c.direction == "in") == total
    assert await count(rt, conversations) == total
    assert await count(rt, tickets) == total
    async with rt.db.read() as conn:
        linked = await conn.scalar(
            select(func.count(func.distinct(inbox_table.c.message_id))).where(
                inbox_table.c.state == "done"
            )
        )
    assert linked == total
    assert (await verify_chain(rt.db))[1] is None
