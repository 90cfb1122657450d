"""The widget's websocket: hello, messages, leaving a message, closing; every message
stored by the intake action before it is acknowledged (see :mod:`channels.webchat`)."""

from __future__ import annotations

import secrets
import weakref
from typing import Any, ClassVar

import orjson
from aiohttp import WSMsgType, web

from callcenter.actions.citizens import update_contact
from callcenter.actions.conversation_tickets import leave_message
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.queues import citizen_left
from callcenter.api.http import error_body
from callcenter.domain.errors import HotlineError, InvalidInput
from callcenter.domain.workflow import SYSTEM
from callcenter.runtime import Runtime
from callcenter.views import conversation_messages, latest_conversation
from channels.webchat.push import state_frame
from channels.webchat.sessions import (
    MAX_FRAME,
    TOKEN_BYTES,
    ChatSocket,
    address_of,
    message_frame,
    send_frame,
)


class WidgetSocket:
    """The socket's side of :class:`channels.webchat.WebChat` (a mixin: the channel holds
    the sessions)."""

    name: ClassVar[str]
    rt: Runtime
    allowed_origins: list[str]
    by_address: dict[str, set[ChatSocket]]
    address_of_conversation: dict[int, str]
    sockets: weakref.WeakSet[web.WebSocketResponse]

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
                    await send_frame(ws, {"type": "error", "code": "malformed_json"})
                    continue
                if not isinstance(frame, dict):
                    continue
                if chat is None:
                    if frame.get("type") != "hello":
                        await send_frame(ws, {"type": "error", "code": "hello_first"})
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
                rows = await conversation_messages(conn, conversation.id, after=after_id)
            history = [message_frame(r._asdict())["message"] for r in rows]
        await send_frame(
            ws,
            {
                "type": "welcome",
                "session": token,
                "conversation_id": conversation.id if conversation else None,
                "messages": history,
            },
        )
        if conversation is not None:
            await send_frame(ws, await state_frame(self.rt, conversation))
        return chat

    async def _latest_conversation(self, address: str) -> Any:
        async with self.rt.db.read() as conn:
            return await latest_conversation(conn, self.name, "web", address)

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
                await send_frame(
                    chat.ws, {"type": "ticket", "id": client_id, "number": ticket["number"]}
                )
            elif kind == "close":
                conversation = await self._latest_conversation(chat.address)
                if conversation is not None:
                    await citizen_left(self.rt, conversation.id)
            elif kind == "ping":
                await send_frame(chat.ws, {"type": "pong"})
        except HotlineError as error:
            body = error_body(self.rt, error, chat.locale)["error"]
            await send_frame(
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
                await send_frame(
                    chat.ws, {"type": "error", "code": body["code"], "message": body["message"]}
                )
        await send_frame(
            chat.ws,
            {
                "type": "ack",
                "id": client_id,
                "message_id": result.message_id,
                "conversation_id": result.conversation_id,
                "duplicate": result.duplicate,
            },
        )
