"""The widget's sessions: a citizen's address on the channel, one open widget, its frames."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

HERE = Path(__file__).parent
TOKEN_BYTES = 24
MAX_FRAME = 256 * 1024  # a frame this large gets an error frame back, not a closed socket
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


async def send_frame(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    """One frame to an open widget; a socket that went away meanwhile is passed over."""
    if not ws.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(orjson.dumps(frame).decode())
