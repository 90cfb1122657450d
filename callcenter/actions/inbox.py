"""The inbox: inbound text stored first, handled right after.

A provider's webhook wants its answer quickly, and a burst of webhooks must not
wait for the work each text causes (citizen, conversation, ticket, routing,
replies, reminders). So an SMS webhook only stores what came in and answers
(DESIGN rule 3: it is in the database before the provider gets its 200):

- :meth:`Inbox.accept` writes the text to the ``inbox`` table. Webhooks that
  arrive while a write is under way are written together in the next one
  (group commit), so a burst costs a few transactions, not one each. The
  provider id is a unique key: a retried webhook finds its row and adds none.
- :meth:`Inbox.process` takes pending rows in the order they came, a batch per
  transaction, and hands each to :func:`~callcenter.actions.intake.take_message`,
  the very intake :func:`~callcenter.actions.intake.receive_message` runs. The
  row is marked done in the transaction that did its work: a crash leaves it
  pending, and the next run does it once. A batch stops taking rows after
  ``intake.inbox_batch_ms``, so webhooks waiting to be stored are not held up.
- If a batch fails, it is rolled back and its rows are taken again one per
  transaction: a row that fails alone is marked ``failed`` with its error and
  kept (``callcenter inbox retry``,
  :func:`callcenter.actions.operations.requeue_failed_texts`, puts it back);
  nothing a citizen sent is dropped.

The driver (:meth:`Inbox.start`) runs in every process that runs jobs: woken
in-process by :meth:`accept`, and every ``intake.inbox_poll_seconds`` for rows
stored by other processes. On PostgreSQL rows are claimed with ``SKIP
LOCKED``, so several nodes can share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from callcenter.actions.intake import Inbound, IntakeResult, intake_result, take_message
from callcenter.actions.messages import clean_body
from callcenter.background import Loop
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_ignoring
from callcenter.store.tables import inbox as inbox_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A stored inbound text: its inbox row, and whether it was there already."""

    inbox_id: int
    duplicate: bool


class InboxFailed(Exception):
    """A stored text could not be handled; it is kept with its error."""


_PENDING = (
    select(inbox_table.c.id, inbox_table.c.payload)
    .where(inbox_table.c.state == "pending", inbox_table.c.id > bindparam("after"))
    .order_by(inbox_table.c.id)
    .limit(bindparam("limit"))
)
# taken in a batch: several nodes share the work (SQLite has one writer and ignores this)
_CLAIM = _PENDING.with_for_update(skip_locked=True)
_CHUNK = 16
_TURNS = 4  # turns of the event loop a request needs from its bytes to accept()
_ANY_PENDING = select(inbox_table.c.id).where(inbox_table.c.state == "pending").limit(1)
_BY_KEY = select(inbox_table.c.id).where(
    inbox_table.c.channel == bindparam("channel"),
    inbox_table.c.provider_id == bindparam("provider_id"),
)
_STATE = select(inbox_table.c.state, inbox_table.c.message_id, inbox_table.c.error).where(
    inbox_table.c.id == bindparam("inbox_id")
)
_DONE = (
    update(inbox_table)
    .where(inbox_table.c.id == bindparam("row_id"))
    .values(
        state="done",
        message_id=bindparam("message_id"),
        processed_at=bindparam("at"),
        attempts=inbox_table.c.attempts + 1,
    )
)
_FAILED = (
    update(inbox_table)
    .where(inbox_table.c.id == bindparam("row_id"))
    .values(state="failed", error=bindparam("error"), attempts=inbox_table.c.attempts + 1)
)


_FIELDS = dataclasses.fields(Inbound)


class Inbox:
    """One runtime's inbox: the group-commit writer, the batch processor and its driver."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[Accepted]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._processed = asyncio.Event()  # set after each batch, then replaced
        self.loop = InboxLoop(self)
        self._insert = insert_ignoring(
            rt.db,
            inbox_table,
            conflict=("channel", "provider_id"),
            returning=(inbox_table.c.id, inbox_table.c.channel, inbox_table.c.provider_id),
        )

    # --- storing -----------------------------------------------------------------------

    async def accept(self, inbound: Inbound) -> Accepted:
        """Store an inbound text; returns once committed. Bad input raises and stores nothing."""
        # the provider id is the row's key; a text that came without one gets its own
        inbound = dataclasses.replace(
            inbound,
            body=clean_body(inbound.body),
            provider_id=inbound.provider_id or f"inbox-{uuid.uuid4().hex}",
        )
        payload = {f.name: getattr(inbound, f.name) for f in _FIELDS}
        row = {"channel": inbound.channel, "provider_id": inbound.provider_id, "payload": payload}
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="inbox-write")
        with self.rt.foreground.request():  # the handling waits for a gap in these
            # the write goes on if the caller gives up: the provider will retry, and find it
            return await asyncio.shield(future)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                accepted = await self._store([row for row, _ in batch])
            except Exception as error:  # every caller hears of it, and answers 500
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, accepted, strict=True):
                if not future.done():
                    future.set_result(result)
            self.loop.wake()

    async def _store(self, rows: list[dict[str, Any]]) -> list[Accepted]:
        now = self.rt.clock.now()
        values = [{**row, "state": "pending", "attempts": 0, "received_at": now} for row in rows]
        # no audit event here: the intake writes it when the text is handled
        # urgent: the providers wait for this write, the background work can wait for them
        async with self.rt.db.transaction(serialize=False, urgent=True) as tx:
            # one statement for the lot; a key already there (or twice in the lot) is skipped
            inserted = {
                (r.channel, r.provider_id): r.id
                for r in (await tx.execute(self._insert.values(values))).all()
            }
            accepted = []
            for row in rows:
                key = (row["channel"], row["provider_id"])
                new_id = inserted.pop(key, None)
                if new_id is not None:
                    accepted.append(Accepted(int(new_id), False))
                else:
                    found = (await tx.execute(_BY_KEY, row)).scalar_one()
                    accepted.append(Accepted(int(found), True))
        return accepted

    # --- handling ----------------------------------------------------------------------

    async def process(self) -> int:
        """Handle pending rows until none is left; how many were handled."""
        total = 0
        await self.rt.foreground.gap()
        while True:
            handled, more = await self._batch()
            total += handled
            if not more:
                return total
            await self._give_way()

    async def _give_way(self) -> None:
        """Between batches, webhooks go first.

        A batch keeps the event loop busy: requests that arrived meanwhile need a
        few turns of the loop to reach :meth:`accept` (read, parse, check), then
        their write must not queue behind the next batch, and while they keep
        coming the next batch waits for a gap (:class:`~callcenter.foreground.Foreground`).
        """
        for _ in range(_TURNS):
            await asyncio.sleep(0)
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])
        await self.rt.foreground.gap()

    async def _batch(self) -> tuple[int, bool]:
        async with self.rt.db.read() as conn:  # no write transaction for nothing
            if (await conn.execute(_ANY_PENDING)).first() is None:
                return 0, False
        settings = self.rt.settings.intake
        limit = settings.inbox_batch
        # smaller batches while webhooks keep coming: each one waits for a batch at most
        budget = (
            settings.inbox_busy_batch_ms if self.rt.foreground.busy() else settings.inbox_batch_ms
        )
        try:
            handled, more = await self._take(limit, budget / 1000)
        except Exception:
            log.warning("an inbox batch failed; its rows are taken one by one", exc_info=True)
            handled, more = await self._take_one_by_one(limit)
        self._processed.set()
        self._processed = asyncio.Event()
        return handled, more

    async def _take(self, limit: int, budget: float) -> tuple[int, bool]:
        """One transaction's worth of rows: (how many were handled, whether more may wait)."""
        started = time.perf_counter()
        done: list[dict[str, Any]] = []
        drained = False
        async with self.rt.transaction() as tx:
            # a few rows at a time: the time budget usually ends the batch first
            while len(done) < limit and (not done or time.perf_counter() - started <= budget):
                chunk = min(_CHUNK, limit - len(done))
                after = done[-1]["row_id"] if done else 0
                rows = (await tx.execute(_CLAIM, {"limit": chunk, "after": after})).all()
                for row in rows:
                    done.append(await self._handle(tx, row))
                    if time.perf_counter() - started > budget:
                        break
                if len(rows) < chunk:
                    drained = not rows or rows[-1].id == done[-1]["row_id"]
                    break
            if done:
                await tx.execute(_DONE, done)
        return len(done), bool(done) and not drained

    async def _handle(self, tx: Tx, row: Any) -> dict[str, Any]:
        tx.state["now"] = now = self.rt.clock.now()
        # the inbox's unique key already turned a repeated provider id away
        result = await take_message(tx, self.rt, Inbound(**row.payload), unseen=True)
        return {"row_id": row.id, "message_id": result.message_id, "at": now}

    async def _take_one_by_one(self, limit: int) -> tuple[int, bool]:
        async with self.rt.db.read() as conn:
            rows = (await conn.execute(_PENDING, {"limit": limit, "after": 0})).all()
        handled = 0
        for row in rows:
            try:
                async with self.rt.transaction() as tx:
                    still = (await tx.execute(_STATE, {"inbox_id": row.id})).one()
                    if still.state != "pending":  # another process took it meanwhile
                        continue
                    await tx.execute(_DONE, [await self._handle(tx, row)])
                handled += 1
            except Exception as error:
                log.exception("inbox row %s could not be handled; it is kept as failed", row.id)
                async with self.rt.db.transaction(serialize=False) as tx:
                    await tx.execute(
                        _FAILED, {"row_id": row.id, "error": f"{type(error).__name__}: {error}"}
                    )
        return handled, len(rows) == limit

    async def result(self, inbox_id: int, *, wait_seconds: float = 30.0) -> IntakeResult:
        """Wait until a stored text was handled, and say what became of it."""
        deadline = time.monotonic() + wait_seconds
        while True:
            processed = self._processed
            async with self.rt.db.read() as conn:
                row = (await conn.execute(_STATE, {"inbox_id": inbox_id})).one()
                if row.state == "done":
                    found = await intake_result(conn, row.message_id)
                    assert found is not None  # the message and the inbox row commit together
                    return found
            if row.state == "failed":
                raise InboxFailed(row.error)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"inbox row {inbox_id} is still pending")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(processed.wait(), min(left, 0.2))

    # --- the driver --------------------------------------------------------------------

    async def start(self) -> None:
        await self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def wake(self) -> None:
        self.loop.wake()


class InboxLoop(Loop):
    """Handles what the inbox stored: woken by :meth:`Inbox.accept`'s commits, and every
    ``intake.inbox_poll_seconds`` for rows stored by other processes."""

    name = "inbox"

    def __init__(self, box: Inbox) -> None:
        # Inbox.process waits for the gaps in the webhooks itself, before each batch
        super().__init__(poll=box.rt.settings.intake.inbox_poll_seconds)
        self.box = box

    async def run_once(self) -> float | None:
        await self.box.process()
        return None


def inbox(rt: Runtime) -> Inbox:
    """The runtime's inbox (made on first use, kept as ``rt.inbox``)."""
    found = rt.inbox
    if found is None:
        found = rt.inbox = Inbox(rt)
    assert isinstance(found, Inbox)
    return found
