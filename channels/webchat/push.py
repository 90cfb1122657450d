"""Pushing to open widgets: messages as soon as they are stored, the conversation's state,
and the citizen's place in the queue when the queue moves (see :mod:`channels.webchat`)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from callcenter.bus import events as ev
from callcenter.queueing import queue_spot, queue_spots
from callcenter.runtime import Runtime
from channels.webchat.sessions import ChatSocket, message_frame, send_frame


async def state_frame(rt: Runtime, conversation: Any) -> dict[str, Any]:
    """The conversation's state for the widget, with its place in the queue while it waits."""
    frame: dict[str, Any] = {
        "type": "state",
        "conversation_id": conversation.id,
        "state": conversation.state,
        "queue": conversation.queue,
    }
    if conversation.state == "queued":
        spot = await queue_spot(rt, conversation.id)
        if spot is not None:
            frame["position"], frame["waiting"] = spot.position, spot.waiting
    return frame


class Push:
    """The pushing side of :class:`channels.webchat.WebChat` (a mixin)."""

    name: ClassVar[str]
    rt: Runtime
    by_address: dict[str, set[ChatSocket]]
    address_of_conversation: dict[int, str]
    _positions_due: asyncio.Event

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
                        await send_frame(chat.ws, frame)
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
                            await send_frame(chat.ws, frame)
        finally:
            subscription.close()

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
                        await send_frame(chat.ws, frame)
            except Exception:  # a failed update must not stop the loop
                continue
