"""Telegram's rate limits: about 30 messages a second overall and one a second per chat.

A send that would break them is deferred (the job runs again later, without
spending an attempt), so the bot never waits in a loop and other chats go on.
Times come from the runtime's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime


class Pacer:
    def __init__(
        self, now: Callable[[], datetime], *, per_second: float = 30, chat_interval: float = 1.0
    ) -> None:
        self.now = now
        self.gap = 1.0 / per_second
        self.chat_interval = chat_interval
        self.next_any = 0.0
        self.next_chat: dict[str, float] = {}

    def reserve(self, chat: str) -> float:
        """Seconds to wait before this chat may get a message; 0 means send now (and counts)."""
        now = self.now().timestamp()
        wait = max(self.next_chat.get(chat, 0.0) - now, self.next_any - now, 0.0)
        if wait >= 0.001:  # less than a millisecond early is on time (clocks tick in microseconds)
            return wait
        self.next_chat[chat] = now + self.chat_interval
        self.next_any = max(self.next_any, now) + self.gap
        if len(self.next_chat) > 10_000:  # forget chats long quiet
            self.next_chat = {k: v for k, v in self.next_chat.items() if v > now}
        return 0.0
