"""The bot's side of a Telegram chat: commands, the /new report dialog, buttons.

Runs inside the intake transaction as the channel's bot hook, so what it does
(state, replies, the ticket) commits with the message that caused it. Its state
lives on the conversation, so a restart loses no dialog.

- ``/start``, ``/help``: what the bot can do, in the user's language;
- ``/new``: category (buttons), description, location (Telegram's location or
  a typed address), an optional photo (or ``/skip``): then a routed ticket;
- ``/status <number>``: the state of one of the citizen's own tickets;
- ``/queue``: while the chat waits for an agent, its place in the queue and the
  expected wait (:mod:`callcenter.queueing`, as the IVR and the web chat say it);
- ``/lang``: Chinese or English (buttons); ``/cancel`` ends a dialog;
- a shared contact with the user's own number joins them to the citizen of
  that number (their SMS and calls);
- survey buttons answer the survey;
- anything else goes to an agent (returns False).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from callcenter.actions import surveys
from callcenter.actions.attachments import StoredFile
from callcenter.actions.citizens import link_identity, set_locale
from callcenter.actions.intake import BotTurn
from callcenter.actions.tickets import TicketDraft
from callcenter.domain.errors import InvalidInput
from callcenter.domain.phone import normalize_phone
from callcenter.domain.workflow import SYSTEM
from callcenter.queueing import spot_of
from callcenter.views import citizen_ticket, ticket_status_params

if TYPE_CHECKING:
    from channels.telegram.adapter import TelegramChannel

_NUMBER = re.compile(r"\d{8}-\d{4,}")


class Dialog:
    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel

    def t(self, key: str, locale: str, **params: Any) -> str:
        rt = self.channel.rt
        return rt.text(
            f"channels.telegram.{key}", locale, hotline=rt.settings.hotline_number, **params
        )

    async def hook(self, turn: BotTurn) -> bool:
        meta = turn.inbound.meta
        locale = turn.conversation.locale
        state = dict(turn.conversation.bot_state or {})
        if "callback" in meta:
            return await self._button(turn, str(meta["callback"]), state)
        if "contact" in meta:
            return await self._contact(turn, meta["contact"])
        text = turn.body.strip()
        if text.startswith("/") and "photo" not in meta:
            return await self._command(turn, text, state)
        if state.get("flow") == "new":
            return await self._new_step(turn, state)
        if meta.get("photo_error"):
            await turn.reply(self.t("photo_failed", locale))
            return True
        return False

    async def _command(self, turn: BotTurn, text: str, state: dict[str, Any]) -> bool:
        locale = turn.conversation.locale
        word, _, rest = text.partition(" ")
        command = word[1:].split("@")[0].lower()
        if command == "start":
            await turn.reply(self.t("start", locale), meta={"remove_keyboard": True})
        elif command == "help":
            await turn.reply(self.t("help", locale))
        elif command == "lang":
            choice = rest.strip().lower()
            if choice.startswith(("zh", "中")) or choice.startswith("en"):
                await self._set_lang(turn, "zh-CN" if not choice.startswith("en") else "en")
            else:
                await turn.reply(
                    self.t("lang_prompt", locale),
                    meta={
                        "quick_replies": [
                            {"label": "中文", "data": "lang:zh-CN"},
                            {"label": "English", "data": "lang:en"},
                        ]
                    },
                )
        elif command == "new":
            await turn.set_state({"flow": "new", "step": "category"})
            await turn.reply(self.t("new_category", locale), meta=self._categories(locale))
        elif command == "cancel":
            if state.get("flow"):
                await turn.set_state(None, close=True)
            await turn.reply(self.t("new_cancelled", locale), meta={"remove_keyboard": True})
        elif command == "skip" and state.get("flow") == "new":
            return await self._new_step(turn, state, skip=True)
        elif command == "status":
            await self._status(turn, rest)
        elif command == "queue":
            await self._queue(turn)
        else:
            await turn.reply(self.t("unknown_command", locale))
        return True

    def _categories(self, locale: str) -> dict[str, Any]:
        return {
            "columns": 2,
            "quick_replies": [
                {"label": c.name(locale), "data": f"new:cat:{c.code}"}
                for c in self.channel.rt.directory.categories
            ],
        }

    async def _set_lang(self, turn: BotTurn, chosen: str) -> None:
        await set_locale(turn.tx, turn.rt, turn.citizen, chosen, actor=SYSTEM)
        await turn.reply(self.t("lang_set", chosen))

    async def _status(self, turn: BotTurn, rest: str) -> None:
        locale = turn.conversation.locale
        found = _NUMBER.search(rest)
        if found is None:
            await turn.reply(self.t("status_usage", locale))
            return
        row = await citizen_ticket(turn.tx, turn.citizen.id, found.group(0))
        if row is None:
            await turn.reply(self.t("status_not_found", locale, number=found.group(0)))
            return
        params = ticket_status_params(turn.rt, row, locale)
        reply = self.t("status_reply", locale, reply=params["reply"]) if params["reply"] else ""
        await turn.reply(self.t("status_found", locale, **{**params, "reply": reply}))

    async def _queue(self, turn: BotTurn) -> None:
        """The chat's place in the queue for an agent, and the expected wait."""
        locale = turn.conversation.locale
        spot = await spot_of(turn.tx, turn.rt, turn.conversation.id)
        if spot is None:
            await turn.reply(self.t("queue_none", locale))
            return
        minutes = spot.expected_wait_minutes
        await turn.reply(self.t("queue_place", locale, position=spot.position, minutes=minutes))

    async def _button(self, turn: BotTurn, data: str, state: dict[str, Any]) -> bool:
        locale = turn.conversation.locale
        if data.startswith("survey:"):
            if not await surveys.answer_button(turn.tx, turn.rt, turn.citizen.id, data):
                await turn.reply(self.t("button_expired", locale))
            return True
        if data.startswith("lang:"):
            await self._set_lang(turn, data.split(":", 1)[1])
            return True
        if (
            data.startswith("new:cat:")
            and state.get("flow") == "new"
            and state.get("step") == "category"
        ):
            code = data.split(":", 2)[2]
            if code in turn.rt.directory.category_by_code:
                await turn.set_state({**state, "category": code, "step": "description"})
                await turn.reply(self.t("new_description", locale))
                return True
        await turn.reply(self.t("button_expired", locale))
        return True

    async def _contact(self, turn: BotTurn, contact: dict[str, Any]) -> bool:
        locale = turn.conversation.locale
        if str(contact.get("user_id")) != turn.inbound.address:
            await turn.reply(self.t("contact_not_own", locale))
            return True
        raw = str(contact.get("phone", ""))
        try:
            phone = normalize_phone(
                raw if raw.startswith("+") else "+" + raw, turn.rt.settings.default_region
            )
        except InvalidInput:
            await turn.reply(self.t("contact_not_own", locale))
            return True
        turn.citizen = await link_identity(
            turn.tx, turn.rt, turn.citizen, "phone", phone, actor=SYSTEM
        )
        await turn.reply(
            self.t("contact_linked", locale, phone=phone), meta={"remove_keyboard": True}
        )
        return True

    async def _new_step(self, turn: BotTurn, state: dict[str, Any], *, skip: bool = False) -> bool:
        locale = turn.conversation.locale
        meta = turn.inbound.meta
        step = state.get("step")
        if step == "category":
            await turn.reply(self.t("new_category", locale), meta=self._categories(locale))
        elif step == "description":
            if skip or "photo" in meta or turn.inbound.lat is not None:
                await turn.reply(self.t("new_need_text", locale))
            else:
                await turn.set_state({**state, "description": turn.body, "step": "location"})
                await turn.reply(
                    self.t("new_location", locale),
                    meta={
                        "keyboard": [
                            [{"label": self.t("send_location", locale), "request_location": True}],
                            [{"label": "/skip"}],
                        ]
                    },
                )
        elif step == "location":
            found: dict[str, Any] = {}
            if turn.inbound.lat is not None:
                found = {"lat": turn.inbound.lat, "lon": turn.inbound.lon}
            elif not skip and "photo" not in meta:
                found = {"address": turn.body}
            await turn.set_state({**state, **found, "step": "photo"})
            await turn.reply(self.t("new_photo", locale), meta={"remove_keyboard": True})
        elif step == "photo":
            if meta.get("photo_error"):
                await turn.reply(self.t("photo_failed", locale))
            elif "photo" in meta or skip:
                await self._finish(turn, state, meta.get("photo"))
            else:
                await turn.reply(self.t("new_need_photo", locale))
        return True

    async def _finish(
        self, turn: BotTurn, state: dict[str, Any], photo: dict[str, Any] | None
    ) -> None:
        draft = TicketDraft(
            description=state["description"],
            category=state.get("category"),
            address=state.get("address"),
            lat=state.get("lat"),
            lon=state.get("lon"),
        )
        await turn.open_ticket(draft)
        if photo:
            stored = StoredFile(
                photo["path"], photo["sha256"], photo["size"], photo["content_type"]
            )
            await turn.attach(stored, kind="photo", source_id=photo.get("source_id"))
