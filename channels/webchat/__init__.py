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
import json
import weakref
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import Field

from callcenter.api.guard import FRAMEABLE, LIMITED, Limit
from callcenter.api.http import json_response
from callcenter.channel import Access, Channel, ChannelOptions, OutboundMessage, Page, SendResult
from callcenter.runtime import Runtime
from channels.webchat.push import Push
from channels.webchat.sessions import HERE, ChatSocket, address_of, message_frame
from channels.webchat.socket import WidgetSocket

__all__ = ["ChatSocket", "WebChat", "WebChatOptions", "address_of", "message_frame"]


class WebChatOptions(ChannelOptions):
    """``[channel_options.webchat]``."""

    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])  # pages the widget is on
    behind_proxy: bool = False  # the status page's rate limit counts X-Forwarded-For


class WebChat(WidgetSocket, Push, Channel):
    name = "webchat"
    identity_kind = "web"  # the widget's session, known only as a hash
    strings_dir = HERE / "strings"
    Options = WebChatOptions
    config: WebChatOptions
    pages = (
        Page("/chat/", "channels.webchat.site_chat"),
        Page("/status", "channels.webchat.site_status"),
    )

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        self.allowed_origins: list[str] = list(self.config.allowed_origins)
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
        if LIMITED in app:  # each connection counts against the client's address
            security = self.rt.settings.security
            app[LIMITED].append(
                Limit(
                    "GET",
                    "/chat/ws",
                    "chat-ip",
                    security.chat_connections_per_ip,
                    timedelta(minutes=security.window_minutes),
                    "all",
                )
            )
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
