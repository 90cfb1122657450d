"""Web chat for citizens: an embeddable widget over a websocket, and the ticket status page.

Channel name ``webchat``; see ``docs/channels/webchat.md``.

- ``GET /chat/widget.js``: one script tag on any page opens the widget.
- ``GET /chat/ws``: the widget's websocket. A browser keeps a random session
  token (localStorage); the server knows it only as ``web:<sha256 prefix>``,
  the citizen's address on this channel. Every message is stored by the
  intake action before it is acknowledged; the widget's own message id is
  the provider id, so a message sent again after a reconnect is stored once.
  A reconnect says the last message id it saw and gets everything after it.
- When no agent has taken the chat, the citizen sees their place in the
  queue (:mod:`callcenter.queueing`, the same place the IVR and the desk see;
  none is shown until the queue has it) and may leave a message, which becomes
  a ticket.
- ``GET /status`` and ``POST /status/lookup``: a ticket's state and answer by
  ticket number and the last four digits of the phone number, rate-limited.

Outbound messages are pushed to the citizen's open sockets from the bus as soon
as they are stored; ``send`` (the outbox job) only records them as sent, so a
citizen who is away finds them on their next visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import secrets
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from sqlalchemy import select

from callcenter.actions.citizens import update_contact
from callcenter.actions.conversation_tickets import leave_message
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.queues import citizen_left
from callcenter.api.guard import FRAMEABLE
from callcenter.api.http import error_body, json_response
from callcenter.bus import events as ev
from callcenter.channel import Access, Channel, OutboundMessage, SendResult
from callcenter.domain.errors import HotlineError, InvalidInput
from callcenter.domain.workflow import SYSTEM
from callcenter.queueing import queue_spot, queue_spots
from callcenter.runtime import Runtime
from callcenter.store.tables import citizen_identities, conversations, messages

HERE = Path(__file__).parent
TOKEN_BYTES = 24
MAX_FRAME = 16 * 1024
BURST = 20  # messages a socket may send in BURST_SECONDS
BURST_SECONDS = 10.0


def address_of(token: str) -> str:
    return "web:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:40]


def message_frame(m: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "message": {
            "id": m["id"],
            "direction": m["direction"],
            "body": m["body"],
            "kind": m.get("kind", "text"),
            "created_at": m["created_at"],
        },
    }


class ChatSocket:
    """One open widget."""

    def __init__(self, ws: web.WebSocketResponse, address: str, locale: str) -> None:
        self.ws = ws
        self.address = address
        self.locale = locale
        self.sent: deque[float] = deque()
        self.own: set[int] = set()  # messages this socket wrote: acknowledged, not echoed

    def allow(self) -> bool:
        now = time.monotonic()
        while self.sent and now - self.sent[0] > BURST_SECONDS:
            self.sent.popleft()
        if len(self.sent) >= BURST:
            return False
        self.sent.append(now)
        return True


class WebChat(Channel):
    name = "webchat"
    strings_dir = HERE / "strings"

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        self.allowed_origins: list[str] = list(options.get("allowed_origins", ["*"]))
        self.by_address: dict[str, set[ChatSocket]] = {}
        self.address_of_conversation: dict[int, str] = {}
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._tasks: list[asyncio.Task[None]] = []
        self._positions_due = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------

    async def initialize(self) -> None:
        subscription = self.rt.bus.subscribe(maxsize=100_000)
        self._tasks = [
            asyncio.create_task(self._listen(subscription), name="webchat-listen"),
            asyncio.create_task(self._positions(), name="webchat-positions"),
        ]

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")

    def setup_web(self, app: web.Application) -> None:
        if FRAMEABLE in app:  # the chat page may be framed by the sites that embed the widget
            app[FRAMEABLE]["/chat/"] = self.allowed_origins
        app.router.add_get("/chat/widget.js", self.widget_js)
        app.router.add_get("/chat/widget.css", self.static_file("widget.css", "text/css"))
        app.router.add_get("/chat/demo.css", self.static_file("demo.css", "text/css"))
        app.router.add_get("/chat/", self.static_file("demo.html", "text/html"))
        app.router.add_get("/chat/ws", self.socket)
        app.router.add_get("/chat/health", self.health)
        from channels.webchat.status import add_status_routes

        add_status_routes(app, self)

    def access(self) -> list[Access]:
        # who may embed the widget is said in the detail: its allowed origins
        return [
            Access("GET /chat/, /chat/ws", "everyone", ", ".join(self.allowed_origins)),
            Access("GET /status, POST /status/lookup", "everyone"),
        ]

    async def send(self, message: OutboundMessage) -> SendResult:
        # already pushed to open widgets from the bus when it was stored
        return SendResult(provider_id=f"webchat-{message.message_id}", status="sent")

    # --- texts and files ---------------------------------------------------------------

    def texts(self, locale: str) -> dict[str, str]:
        prefix = "channels.webchat."
        texts = self.rt.catalog.texts[self.rt.catalog.locale_or_default(locale)]
        return {k[len(prefix) :]: v for k, v in texts.items() if k.startswith(prefix)}

    @functools.cache  # noqa: B019 (one adapter per process)
    def _source(self, name: str) -> str:
        return (HERE / "static" / name).read_text("utf-8")

    async def widget_js(self, request: web.Request) -> web.Response:
        strings = {"zh-CN": self.texts("zh-CN"), "en": self.texts("en")}
        body = (
            self._source("widget.js")
            .replace("__STRINGS__", json.dumps(strings, ensure_ascii=False).replace("<", "\\u003c"))
            .replace("__HOTLINE__", json.dumps(self.rt.settings.hotline_number))
        )
        return web.Response(
            text=body,
            content_type="application/javascript",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    def static_file(self, name: str, content_type: str) -> Any:
        async def serve(request: web.Request) -> web.Response:
            return web.Response(
                text=self._source(name),
                content_type=content_type,
                charset="utf-8",
                headers={"Access-Control-Allow-Origin": "*"},
            )

        return serve

    async def health(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "sessions": sum(len(s) for s in self.by_address.values()),
                "sockets": len(self.sockets),
            }
        )

    # --- the socket -------------------------------------------------------------------

    def origin_ok(self, request: web.Request) -> bool:
        if "*" in self.allowed_origins:
            return True
        origin = request.headers.get("Origin", "")
        own = self.rt.settings.effective_public_url.rstrip("/")
        host = request.headers.get("Host", "")
        return origin.rstrip("/") in {
            *self.allowed_origins,
            own,
            f"http://{host}",
            f"https://{host}",
        }

    async def socket(self, request: web.Request) -> web.StreamResponse:
        if not self.origin_ok(request):
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        self.sockets.add(ws)
        chat: ChatSocket | None = None
        try:
            async for raw in ws:
                if raw.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = orjson.loads(raw.data)
                except orjson.JSONDecodeError:
                    await self._send(ws, {"type": "error", "code": "malformed_json"})
                    continue
                if not isinstance(frame, dict):
                    continue
                if chat is None:
                    if frame.get("type") != "hello":
                        await self._send(ws, {"type": "error", "code": "hello_first"})
                        continue
                    chat = await self._hello(ws, frame)
                    continue
                await self._on_frame(chat, frame)
        finally:
            if chat is not None:
                sockets = self.by_address.get(chat.address)
                if sockets is not None:
                    sockets.discard(chat)
                    if not sockets:
                        del self.by_address[chat.address]
        return ws

    async def _hello(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> ChatSocket:
        token = frame.get("session")
        if not isinstance(token, str) or not (20 <= len(token) <= 100):
            token = secrets.token_urlsafe(TOKEN_BYTES)
        locale = self.rt.catalog.normalize(str(frame.get("locale") or ""))
        chat = ChatSocket(ws, address_of(token), locale)
        self.by_address.setdefault(chat.address, set()).add(chat)
        after = frame.get("after")
        after_id = after if isinstance(after, int) and after >= 0 else 0
        conversation = await self._latest_conversation(chat.address)
        history: list[dict[str, Any]] = []
        if conversation is not None:
            self.address_of_conversation[conversation.id] = chat.address
            async with self.rt.db.read() as conn:
                rows = (
                    await conn.execute(
                        select(messages)
                        .where(
                            messages.c.conversation_id == conversation.id,
                            messages.c.id > after_id,
                        )
                        .order_by(messages.c.id)
                    )
                ).all()
            history = [message_frame(r._asdict())["message"] for r in rows]
        await self._send(
            ws,
            {
                "type": "welcome",
                "session": token,
                "conversation_id": conversation.id if conversation else None,
                "messages": history,
            },
        )
        if conversation is not None:
            await self._send(ws, await self._state_frame(conversation))
        return chat

    async def _latest_conversation(self, address: str) -> Any:
        async with self.rt.db.read() as conn:
            return (
                await conn.execute(
                    select(conversations)
                    .join(
                        citizen_identities,
                        citizen_identities.c.citizen_id == conversations.c.citizen_id,
                    )
                    .where(
                        citizen_identities.c.kind == "web",
                        citizen_identities.c.value == address,
                        conversations.c.channel == self.name,
                        conversations.c.address == address,
                    )
                    .order_by(conversations.c.id.desc())
                    .limit(1)
                )
            ).first()

    async def _on_frame(self, chat: ChatSocket, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        client_id = frame.get("id")
        try:
            if kind == "message":
                if not chat.allow():
                    raise InvalidInput("too_many_messages")
                await self._message(chat, frame)
            elif kind == "leave_message":
                conversation = await self._latest_conversation(chat.address)
                if conversation is None:
                    raise InvalidInput("missing_field", field="text")
                text = frame.get("text")
                ticket = await leave_message(
                    self.rt,
                    conversation.id,
                    text if isinstance(text, str) and text.strip() else None,
                )
                await self._send(
                    chat.ws, {"type": "ticket", "id": client_id, "number": ticket["number"]}
                )
            elif kind == "close":
                conversation = await self._latest_conversation(chat.address)
                if conversation is not None:
                    await citizen_left(self.rt, conversation.id)
            elif kind == "ping":
                await self._send(chat.ws, {"type": "pong"})
        except HotlineError as error:
            body = error_body(self.rt, error, chat.locale)["error"]
            await self._send(
                chat.ws,
                {
                    "type": "error",
                    "id": client_id,
                    "code": body["code"],
                    "message": body["message"],
                },
            )

    async def _message(self, chat: ChatSocket, frame: dict[str, Any]) -> None:
        client_id = frame.get("id")
        if not isinstance(client_id, str) or not (1 <= len(client_id) <= 64):
            raise InvalidInput("invalid_field", field="id")
        text = frame.get("text")
        if not isinstance(text, str):
            raise InvalidInput("missing_field", field="text")
        name = frame.get("name") if isinstance(frame.get("name"), str) else None
        phone = frame.get("phone") if isinstance(frame.get("phone"), str) else None
        result = await receive_message(
            self.rt,
            Inbound(
                channel=self.name,
                identity_kind="web",
                address=chat.address,
                body=text,
                provider_id=f"{chat.address[4:24]}:{client_id}",
                service_address="webchat",
                name=(name or "").strip()[:100] or None,
                locale=chat.locale,
            ),
        )
        self.address_of_conversation[result.conversation_id] = chat.address
        chat.own.add(result.message_id)
        if (name and name.strip()) or (phone and phone.strip()):
            try:
                await update_contact(
                    self.rt, result.citizen_id, actor=SYSTEM, name=name, phone=phone
                )
            except HotlineError as error:
                body = error_body(self.rt, error, chat.locale)["error"]
                await self._send(
                    chat.ws, {"type": "error", "code": body["code"], "message": body["message"]}
                )
        await self._send(
            chat.ws,
            {
                "type": "ack",
                "id": client_id,
                "message_id": result.message_id,
                "conversation_id": result.conversation_id,
                "duplicate": result.duplicate,
            },
        )

    # --- pushing -----------------------------------------------------------------------

    async def _listen(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                data = event.data
                if data.get("channel") != self.name:
                    if event.type == ev.CONVERSATION_CHANGED:
                        self._positions_due.set()
                    continue
                address = self.address_of_conversation.get(data.get("conversation_id", -1))
                if event.type == ev.MESSAGE_CREATED:
                    if address is None or data.get("status") not in ("queued", "received"):
                        continue
                    frame = message_frame(
                        {
                            "id": data["message_id"],
                            "direction": data["direction"],
                            "body": data["body"],
                            "kind": data.get("kind"),
                            "created_at": data.get("created_at"),
                        }
                    )
                    for chat in list(self.by_address.get(address, ())):
                        if data["message_id"] in chat.own:
                            chat.own.discard(data["message_id"])
                            continue
                        await self._send(chat.ws, frame)
                elif event.type == ev.CONVERSATION_CHANGED:
                    self._positions_due.set()
                    if address is not None:
                        # from the event itself: no database read per change
                        frame = {
                            "type": "state",
                            "conversation_id": data["conversation_id"],
                            "state": data["state"],
                            "queue": data.get("queue"),
                        }
                        for chat in list(self.by_address.get(address, ())):
                            await self._send(chat.ws, frame)
        finally:
            subscription.close()

    async def _state_frame(self, conversation: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "state",
            "conversation_id": conversation.id,
            "state": conversation.state,
            "queue": conversation.queue,
        }
        if conversation.state == "queued":
            spot = await queue_spot(self.rt, conversation.id)
            if spot is not None:
                frame["position"], frame["waiting"] = spot.position, spot.waiting
        return frame

    async def _positions(self) -> None:
        """Tell waiting citizens their place in the queue when the queue moves."""
        while True:
            await self._positions_due.wait()
            await asyncio.sleep(2.0)  # at most every two seconds, however busy the queue
            self._positions_due.clear()
            waiting_here = [
                (conversation_id, address)
                for conversation_id, address in self.address_of_conversation.items()
                if address in self.by_address
            ]
            if not waiting_here:
                continue
            try:
                async with self.rt.db.read() as conn:
                    by_conversation = await queue_spots(conn, self.rt)
                for conversation_id, address in waiting_here:
                    spot = by_conversation.get(conversation_id)
                    if spot is None:
                        continue
                    frame = {
                        "type": "state",
                        "conversation_id": conversation_id,
                        "state": "queued",
                        "queue": spot.queue,
                        "position": spot.position,
                        "waiting": spot.waiting,
                    }
                    for chat in list(self.by_address.get(address, ())):
                        await self._send(chat.ws, frame)
            except Exception:  # a failed update must not stop the loop
                continue

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(orjson.dumps(frame).decode())
