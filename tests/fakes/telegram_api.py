"""A local stand-in for Telegram's Bot API, for the real python-telegram-bot client.

Speaks the Bot API's wire format: ``/bot<token>/<method>`` with form-encoded
(or JSON) parameters, nested values JSON-encoded, answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}``; files under ``/file/bot<token>/<path>``.
It records every call the bot makes, feeds updates to ``getUpdates`` (long
polling, honouring ``offset``), serves files, and can be told to fail.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

BOT_USER = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Hotline",
    "username": "hotline_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
NESTED = {"reply_markup", "allowed_updates", "entities", "reply_parameters", "link_preview_options"}


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.pending: list[dict[str, Any]] = []
        self.next_update_id = 1000
        self.calls: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.failures: list[tuple[str, int, str, int | None]] = []
        self.webhook: dict[str, Any] | None = None
        self.message_id = 1
        self._changed = asyncio.Event()

    # --- what tests use ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        return app

    def push(self, update: dict[str, Any]) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        self.pending.append({"update_id": update_id, **update})
        self._changed.set()
        return update_id

    def fail_next(
        self, method: str, status: int, description: str, retry_after: int | None = None
    ) -> None:
        self.failures.append((method, status, description, retry_after))

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent and the API accepted, in order."""
        return [
            c
            for c in self.calls
            if c["method"] == "sendMessage"
            and "failed" not in c
            and (chat_id is None or int(c["chat_id"]) == chat_id)
        ]

    # --- the API ---------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in NESTED & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        return params

    @staticmethod
    def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        for index, (name, status, description, retry_after) in enumerate(self.failures):
            if name == method:
                del self.failures[index]
                self.calls.append({"method": method, "failed": status, **params})
                return self._error(status, description, retry_after)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        if method != "getUpdates":
            self.calls.append({"method": method, **params})
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = params
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not self.pending and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        limit = int(params.get("limit") or 100)
        return self.pending[:limit]

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        self.message_id += 1
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "text": params["text"],
        }
        if (
            isinstance(params.get("reply_markup"), dict)
            and "inline_keyboard" in params["reply_markup"]
        ):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(self.files[file_id]),
            "file_path": f"photos/{file_id}.jpg",
        }

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="image/jpeg")


# --- updates as Telegram sends them -------------------------------------------------------


def user(user_id: int, language: str = "zh-hans", first: str = "小明") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first, "language_code": language}


def message(user_id: int, language: str = "zh-hans", **content: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": int(time.time() * 1000) % 10**9,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private"},
        "from": user(user_id, language),
        **content,
    }
    if str(content.get("text", "")).startswith("/"):
        command = str(content["text"]).split()[0]
        body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"message": body}


def text(user_id: int, words: str, language: str = "zh-hans") -> dict[str, Any]:
    return message(user_id, language, text=words)


def location(user_id: int, lat: float, lon: float) -> dict[str, Any]:
    return message(user_id, location={"latitude": lat, "longitude": lon})


def photo(user_id: int, file_id: str, caption: str | None = None) -> dict[str, Any]:
    sizes = [
        {"file_id": file_id + "_s", "file_unique_id": "s" + file_id, "width": 90, "height": 90},
        {"file_id": file_id, "file_unique_id": "u" + file_id, "width": 800, "height": 600},
    ]
    extra = {"caption": caption} if caption else {}
    return message(user_id, photo=sizes, **extra)


def contact(user_id: int, phone: str, owner: int | None = None) -> dict[str, Any]:
    return message(
        user_id,
        contact={
            "phone_number": phone,
            "first_name": "小明",
            "user_id": owner if owner is not None else user_id,
        },
    )


def button(
    user_id: int, data: str, keyboard: dict[str, Any] | None = None, language: str = "zh-hans"
) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private"},
        "from": BOT_USER,
        "text": "…",
    }
    if keyboard:
        shown["reply_markup"] = keyboard
    return {
        "callback_query": {
            "id": f"cb{time.time_ns()}",
            "from": user(user_id, language),
            "chat_instance": "1",
            "data": data,
            "message": shown,
        }
    }
