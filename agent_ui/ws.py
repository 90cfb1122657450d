"""The staff websocket: live events from the core bus, filtered by who is listening.

``GET /ui/ws?topics=a,b&queue_id=...&last_event_id=N``

Every browser tab has an **event queue** on the server (Zulip's model). The
hub puts into it the bus events its user may see and asked for (topics); the
socket sends them. When the socket drops, the queue keeps collecting for
``QUEUE_TTL`` seconds; a reconnect that names it and the last event id it saw
gets exactly the events after that one. A queue this node does not have (the
page was on another node, or this one restarted) is made again from the bus's
recent events when the bus keeps them (the Redis bus of several nodes does, see
``docs/scaling.md``). A queue that is gone for good (expired, overflowed, or
older than what the bus keeps) is answered with ``{"type": "refetch"}``: the
page reloads its data through the API and carries on with a new queue.

Frames, server to client (event data schemas in :mod:`callcenter.bus.schemas`): ``hello``,
``event``, ``heartbeat`` (every ``HEARTBEAT`` seconds), ``refetch``,
``subscribed``, ``error``. Client to server: ``subscribe``, ``unsubscribe``,
``ping``.

Topics and who may take them (a refused topic is 403, at the upgrade or as an
``error`` frame):

- ``tickets``: every staff role; department staff get their own department's only;
- ``department:<id>``: that department's tickets; department staff only their own;
- ``conversations``, ``conversation:<id>``, ``agents``: agents, supervisors, admins
  (an agent's ``conversations`` carries the messages of conversations they hold);
- ``wallboard``: supervisors and admins (tickets, conversations and agents, for counting).

Every agent also gets their own offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from callcenter.api.http import error_body
from callcenter.bus import BUS_RESET, Event
from callcenter.bus import events as ev
from callcenter.domain.errors import Forbidden, HotlineError
from callcenter.domain.ids import ascii_int, parse_id
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime

log = logging.getLogger(__name__)

HEARTBEAT = 20.0
QUEUE_TTL = 120.0
QUEUE_MAX = 2000
DESK = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})


def check_topic(actor: Actor, topic: str) -> None:
    """Raise :class:`Forbidden` unless ``actor`` may subscribe to ``topic``."""
    name, _, arg = topic.partition(":")
    if name == "tickets" and not arg and actor.role in STAFF:
        return
    if name == "department" and parse_id(arg) is not None:
        if actor.role in SUPERVISORS | {Role.AGENT}:
            return
        if actor.role is Role.DEPARTMENT and actor.department_id == parse_id(arg):
            return
    if name in ("conversations", "agents") and not arg and actor.role in DESK:
        return
    if name == "conversation" and parse_id(arg) is not None and actor.role in DESK:
        return
    if name == "wallboard" and not arg and actor.role in SUPERVISORS:
        return
    raise Forbidden("topic_not_allowed", topic=topic[:60])


def wants(actor: Actor, topics: set[str], event: Event) -> bool:
    """Whether a listener with ``topics`` may and wants to receive ``event``."""
    data, scope = event.data, event.scope
    if event.type == ev.OFFER_CHANGED:
        return scope.get("agent_id") == actor.id
    if event.type in (ev.DIRECTORY_CHANGED, ev.MEDIA_CHANGED):
        return True
    if event.type == ev.TICKET_CHANGED:
        dept = scope.get("department_id")
        if actor.role is Role.DEPARTMENT:
            if dept is None or dept != actor.department_id:
                return False
            return "tickets" in topics or f"department:{dept}" in topics
        return bool(
            {"tickets", "wallboard"} & topics
            or (dept is not None and f"department:{dept}" in topics)
        )
    if scope.get("staff_only") and actor.role not in DESK:
        return False
    if event.type == ev.AGENT_CHANGED:
        return data.get("agent_id") == actor.id or bool({"agents", "wallboard"} & topics)
    if event.type in (ev.CONVERSATION_CHANGED, ev.MESSAGE_CREATED):
        if f"conversation:{data.get('conversation_id')}" in topics:
            return True
        if event.type == ev.CONVERSATION_CHANGED:
            return bool({"conversations", "wallboard"} & topics)
        if "conversations" in topics:
            return actor.role is not Role.AGENT or data.get("agent_id") == actor.id
        return False
    return False


def event_frame(event: Event) -> dict[str, Any]:
    return {
        "type": "event",
        "id": event.id,
        "event": event.type,
        "at": event.at,
        "data": event.data,
    }


@dataclass
class ClientQueue:
    id: str
    actor: Actor
    topics: set[str]
    pending: deque[Event] = field(default_factory=deque)  # not sent yet
    sent: deque[Event] = field(default_factory=deque)  # sent, kept for a resume
    evicted_upto: int = 0  # the newest event no longer kept
    overflowed: bool = False
    detached_at: float | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    socket: web.WebSocketResponse | None = None
    newest: int = 0  # the newest event pushed

    def push(self, event: Event) -> None:
        if event.id <= self.newest:  # had already (a resume from the bus, then the feed)
            return
        self.newest = event.id
        if len(self.pending) >= QUEUE_MAX:
            self.overflowed = True
            self.pending.clear()
        if not self.overflowed:
            self.pending.append(event)
        self.wake.set()

    def reset(self) -> None:
        """The bus lost its events and starts its ids again: refetch, then carry on."""
        self.pending.clear()
        self.sent.clear()
        self.newest = self.evicted_upto = 0
        self.overflowed = True  # the writer sends the refetch
        self.wake.set()

    def mark_sent(self, event: Event) -> None:
        if len(self.sent) >= QUEUE_MAX:
            self.evicted_upto = self.sent.popleft().id
        self.sent.append(event)

    def rewind(self, last_event_id: int) -> bool:
        """Send again what followed ``last_event_id``; False if some of it is lost."""
        if self.overflowed or last_event_id < self.evicted_upto:
            return False
        replay = [e for e in self.sent if e.id > last_event_id]
        replay += [e for e in self.pending if e.id > last_event_id]
        self.sent.clear()
        self.pending = deque(replay)
        return True


class StaffHub:
    """Owns the event queues and feeds them from the bus."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.queues: dict[str, ClientQueue] = {}
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.last_event_id = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        subscription = self.rt.bus.subscribe(maxsize=100_000)
        self._tasks = [
            asyncio.create_task(self._feed(subscription), name="staff-hub-feed"),
            asyncio.create_task(self._reap(), name="staff-hub-reap"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for socket in list(self.sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _feed(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                if event.type == BUS_RESET:  # the bus starts its ids again: every page refetches
                    self.last_event_id = event.id
                    for queue in list(self.queues.values()):
                        queue.reset()
                    continue
                self.last_event_id = max(self.last_event_id, event.id)
                for queue in list(self.queues.values()):
                    if wants(queue.actor, queue.topics, event):
                        queue.push(event)
        finally:
            subscription.close()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(10)
            now = time.monotonic()
            for key, queue in list(self.queues.items()):
                if queue.detached_at is not None and now - queue.detached_at > QUEUE_TTL:
                    del self.queues[key]

    def open_queue(self, actor: Actor, topics: set[str]) -> ClientQueue:
        queue = ClientQueue(secrets.token_urlsafe(12), actor, topics)
        self.queues[queue.id] = queue
        return queue

    async def resume(
        self, queue_id: str, actor: Actor, topics: set[str], last_event_id: int
    ) -> ClientQueue | None:
        queue = self.queues.get(queue_id)
        if queue is not None and queue.actor.id == actor.id and queue.rewind(last_event_id):
            return queue
        if queue is not None:
            del self.queues[queue_id]
        return await self._resume_from_bus(actor, topics, last_event_id)

    async def _resume_from_bus(
        self, actor: Actor, topics: set[str], last_event_id: int
    ) -> ClientQueue | None:
        """A queue this node never had (the page was on another node, or this node
        restarted): made again from the bus's recent events, if it still has them all
        (the Redis bus does; the in-process one keeps none)."""
        if not topics or last_event_id <= 0:
            return None
        queue = self.open_queue(actor, topics)  # collects what the feed brings meanwhile
        queue.newest = last_event_id
        missed = await self.rt.bus.since(last_event_id)
        if missed is None:
            del self.queues[queue.id]
            return None
        fed = list(queue.pending)
        queue.pending.clear()
        queue.newest = last_event_id
        for event in sorted([*missed, *fed], key=lambda e: e.id):
            if wants(actor, topics, event):
                queue.push(event)
            else:
                queue.newest = max(queue.newest, event.id)
        return queue

    async def handle(self, request: web.Request, actor: Actor) -> web.StreamResponse:
        topics = {t.strip() for t in request.query.get("topics", "").split(",") if t.strip()}
        for topic in topics:
            check_topic(actor, topic)
        queue_id = request.query.get("queue_id")
        raw_last = request.query.get("last_event_id", "")
        last = ascii_int(raw_last) or 0
        queue = (
            await self.resume(queue_id, actor, topics or {"tickets"}, last) if queue_id else None
        )
        resumed = queue is not None
        if queue is None:
            queue = self.open_queue(actor, topics or {"tickets"})
        elif topics:
            queue.topics = topics
        socket = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
        await socket.prepare(request)
        if queue.socket is not None and not queue.socket.closed:
            await queue.socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")
        queue.socket, queue.detached_at = socket, None
        self.sockets.add(socket)
        await self._send(
            socket,
            {
                "type": "hello",
                "queue_id": queue.id,
                "resumed": resumed,
                "last_event_id": self.last_event_id,
                "topics": sorted(queue.topics),
                "heartbeat_s": HEARTBEAT,
                "user": {"id": actor.id, "role": actor.role.value, "name": actor.name},
            },
        )
        if queue_id and not resumed:
            await self._send(socket, {"type": "refetch", "reason": "queue_gone"})
        queue.wake.set()  # whatever a resume put back is sent at once
        writer = asyncio.create_task(self._write(queue, socket))
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._on_message(queue, socket, message.data)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if queue.socket is socket:
                queue.socket, queue.detached_at = None, time.monotonic()
        return socket

    async def _on_message(
        self, queue: ClientQueue, socket: web.WebSocketResponse, raw: str
    ) -> None:
        try:
            data = orjson.loads(raw)
        except ValueError:
            await self._send(socket, {"type": "error", "code": "malformed_json", "status": 400})
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            await self._send(socket, {"type": "pong", "last_event_id": self.last_event_id})
        elif kind in ("subscribe", "unsubscribe"):
            topics = data.get("topics")
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                await self._send(socket, {"type": "error", "code": "invalid_field", "status": 400})
                return
            try:
                if kind == "subscribe":
                    for topic in topics:
                        check_topic(queue.actor, topic)
                    queue.topics |= set(topics)
                else:
                    queue.topics -= set(topics)
            except HotlineError as error:
                body = error_body(self.rt, error, queue.actor.locale)["error"]
                await self._send(socket, {"type": "error", "status": error.status, **body})
                return
            await self._send(socket, {"type": "subscribed", "topics": sorted(queue.topics)})

    async def _write(self, queue: ClientQueue, socket: web.WebSocketResponse) -> None:
        while not socket.closed:
            woken = True
            try:
                await asyncio.wait_for(queue.wake.wait(), HEARTBEAT)
            except TimeoutError:
                woken = False
            queue.wake.clear()
            if queue.overflowed:
                await self._send(socket, {"type": "refetch", "reason": "queue_overflow"})
                queue.overflowed = False
                continue
            if not queue.pending:
                if not woken:  # quiet for a while: say we are still here
                    await self._send(
                        socket, {"type": "heartbeat", "last_event_id": self.last_event_id}
                    )
                continue
            while queue.pending and not socket.closed:
                event = queue.pending.popleft()
                await self._send(socket, event_frame(event))
                queue.mark_sent(event)

    @staticmethod
    async def _send(socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if not socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_str(orjson.dumps(frame).decode())
