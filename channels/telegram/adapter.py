"""The Telegram channel: the hotline's bot, inside the server process.

Long polling by default; webhook mode (``webhook = true``) when the hotline has
a public URL, with Telegram's secret-token header checked (missing or wrong:
403, nothing written). Every update is handled through the core's intake
action with the update id as provider id, so an update seen twice changes
nothing; the poller confirms an update (moves its offset) only after that
action committed.

Outbound messages come through the outbox like SMS; Telegram's flood limits
are kept by two :class:`~callcenter.domain.pacing.SendPacer`, and a 429 answer's
``retry_after`` is honoured.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field, model_validator
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from callcenter.actions.attachments import store_file
from callcenter.actions.intake import Inbound, receive_message, reply_to_sender
from callcenter.actions.messages import MAX_BODY
from callcenter.api.bodies import read_json_body
from callcenter.api.http import error_body
from callcenter.channel import (
    Access,
    Channel,
    ChannelOptions,
    DeliveryError,
    OutboundMessage,
    SendResult,
)
from callcenter.domain.errors import Forbidden as ForbiddenError
from callcenter.domain.errors import HotlineError, InvalidInput
from callcenter.domain.pacing import SendPacer
from callcenter.runtime import Runtime
from channels.telegram.dialog import Dialog

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/channels/telegram/webhook"
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_UPDATE_BYTES = 1024 * 1024


def _retry_after(error: RetryAfter) -> float:
    """Seconds to wait, whether the library gives an int or (from v22.2 on) a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramOptions(ChannelOptions):
    """``[channel_options.telegram]``."""

    token: str = Field(min_length=1)  # the bot's token from @BotFather
    webhook: bool = False  # webhook mode (the hotline has a public URL); else long polling
    secret_token: str = ""  # Telegram's secret-token header in webhook mode
    poll_timeout: int = Field(default=25, ge=1, le=50)
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    # Telegram's flood limits: about 30 messages a second in all, one a second per chat
    messages_per_second: float = Field(default=30, gt=0)
    chat_interval_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> TelegramOptions:
        if self.webhook and not self.secret_token:
            raise ValueError("webhook mode needs secret_token")
        return self


class TelegramChannel(Channel):
    name = "telegram"
    identity_kind = "telegram"  # the chat id
    strings_dir = Path(__file__).parent / "strings"
    Options = TelegramOptions
    config: TelegramOptions

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        config = self.config
        self.webhook = config.webhook
        self.secret = config.secret_token
        self.poll_timeout = config.poll_timeout
        self.bot = Bot(
            config.token,
            base_url=config.base_url,
            base_file_url=config.base_file_url,
            request=HTTPXRequest(connection_pool_size=16, read_timeout=20),
            get_updates_request=HTTPXRequest(read_timeout=self.poll_timeout + 10),
        )
        self.all_chats = SendPacer(config.messages_per_second)
        self.each_chat = SendPacer(1 / config.chat_interval_seconds)
        self.dialog = Dialog(self)
        self._task: asyncio.Task[None] | None = None
        self._offset: int | None = None
        self.ready = asyncio.Event()

    # --- life cycle -----------------------------------------------------------------

    async def initialize(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TelegramError, RuntimeError):
            await self.bot.shutdown()

    def setup_web(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    def access(self) -> list[Access]:
        if self.webhook:
            return [Access(f"POST {WEBHOOK_PATH}", "secret", "X-Telegram-Bot-Api-Secret-Token")]
        return [Access("getUpdates", "outbound")]

    async def _run(self) -> None:
        """Connect (retrying while Telegram cannot be reached), then poll or set the webhook."""
        delay = 1.0
        while True:
            try:
                await self.bot.initialize()
                if self.webhook:
                    url = self.rt.settings.effective_public_url + WEBHOOK_PATH
                    await self.bot.set_webhook(
                        url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES
                    )
                else:
                    await self.bot.delete_webhook()
                break
            except InvalidToken:
                log.error("telegram: the bot token was refused; the channel stays off")
                return
            except TelegramError as exc:
                log.warning("telegram: not ready (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300)
        self.ready.set()
        if not self.webhook:
            await self._poll()

    async def _poll(self) -> None:
        delay = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=self._offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
                delay = 1.0
            except RetryAfter as exc:
                await asyncio.sleep(_retry_after(exc))
                continue
            except InvalidToken:
                log.error("telegram: the bot token was refused; polling stops")
                return
            except TelegramError as exc:
                log.warning("telegram: polling failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
                continue
            for update in updates:
                await self._process(update)
                self._offset = update.update_id + 1

    async def _process(self, update: Update) -> None:
        """Handle one update; a failure is retried a few times, then logged and passed."""
        for attempt in range(3):
            try:
                await self.handle(update)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "telegram: update %s failed (attempt %d)", update.update_id, attempt + 1
                )
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()) or not self.secret:
            raise ForbiddenError("invalid_signature")
        data = await read_json_body(request, limit=MAX_UPDATE_BYTES)
        await self.handle(self.parse_update(data))
        return web.Response(status=200)

    def parse_update(self, data: Any) -> Update:
        """An update from its JSON, or :class:`InvalidInput` naming what is wrong with it."""
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise InvalidInput("missing_field", field="update_id")
        for name, value in data.items():
            if name != "update_id" and not isinstance(value, dict):
                raise InvalidInput("invalid_field", field=str(name)[:40])
        try:
            return Update.de_json(data, self.bot)
        except (AttributeError, KeyError, TypeError, ValueError):
            # a field missing or of the wrong type deeper down (a message without a date...)
            raise InvalidInput("invalid_field", field="update") from None

    # --- inbound ------------------------------------------------------------------

    async def handle(self, update: Update) -> None:
        query = update.callback_query
        message = update.message
        user: Any
        chat: Any
        if query is not None:
            user = query.from_user
            chat = query.message.chat if query.message is not None else None
        elif message is not None:
            user, chat = message.from_user, message.chat
        else:
            return  # edits, channel posts...: not for the hotline
        if user is None or chat is None or chat.type != "private" or user.is_bot:
            return
        locale = "zh-CN" if (user.language_code or "").lower().startswith("zh") else "en"
        inbound = Inbound(
            channel=self.name,
            identity_kind="telegram",
            address=str(chat.id),
            body="",
            provider_id=str(update.update_id),
            name=user.full_name,
            locale=locale,
            auto_ticket=False,  # free text goes to an agent; reports come through /new
        )
        t = self.dialog.t
        if query is not None:
            label = _button_label(query, str(query.data or ""))
            inbound.body = t("button_text", locale, label=label)
            inbound.meta = {"callback": str(query.data or "")}
        elif message is not None:
            await self._fill(inbound, message, locale)
        try:
            await receive_message(self.rt, inbound, bot=self.dialog.hook)
        except InvalidInput as error:
            if error.code == "message_too_long":
                text = t("too_long", locale, limit=MAX_BODY)
            else:
                text = error_body(self.rt, error, locale)["error"]["message"]
            await reply_to_sender(self.rt, inbound, text)
        if query is not None:
            with contextlib.suppress(TelegramError):
                await self.bot.answer_callback_query(query.id)

    async def _fill(self, inbound: Inbound, message: Any, locale: str) -> None:
        t = self.dialog.t
        if message.text is not None:
            inbound.body = message.text
        elif message.location is not None:
            inbound.lat, inbound.lon = message.location.latitude, message.location.longitude
            inbound.body = t("location_text", locale, lat=inbound.lat, lon=inbound.lon)
        elif message.contact is not None:
            contact = message.contact
            inbound.body = t("contact_text", locale, phone=contact.phone_number)
            inbound.meta = {"contact": {"phone": contact.phone_number, "user_id": contact.user_id}}
        elif message.photo:
            inbound.body = t("photo_text", locale) + (
                f" {message.caption}" if message.caption else ""
            )
            inbound.meta = await self._download(message.photo[-1])
        else:
            inbound.body = f"[{message.effective_attachment.__class__.__name__.lower()}]"

    async def _download(self, photo: Any) -> dict[str, Any]:
        """The photo's bytes into the data directory; a failure is noted, not raised."""
        try:
            file = await self.bot.get_file(photo.file_id)
            data = bytes(await file.download_as_bytearray())
            stored = await store_file(self.rt, data, "image/jpeg")
        except (TelegramError, HotlineError, OSError) as exc:
            log.warning("telegram: photo %s could not be downloaded: %s", photo.file_id, exc)
            return {"photo_error": True}
        return {"photo": {**stored.__dict__, "source_id": photo.file_unique_id}}

    # --- outbound -----------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        now = self.rt.clock.now()
        wait = max(self.each_chat.wait(message.to, now), self.all_chats.wait("*", now))
        if wait > 0:
            raise DeliveryError("telegram pacing", retry_after=wait, count_attempt=False)
        self.each_chat.reserve(message.to, 1, now)
        self.all_chats.reserve("*", 1, now)
        try:
            sent = await self.bot.send_message(
                chat_id=int(message.to),
                text=message.body,
                reply_markup=self._markup(message.meta, message.locale),
            )
        except RetryAfter as exc:
            self.each_chat.hold(message.to, _retry_after(exc), self.rt.clock.now())
            raise DeliveryError(
                str(exc), retry_after=_retry_after(exc), count_attempt=False, code="429"
            ) from exc
        except Forbidden as exc:  # the user blocked the bot
            raise DeliveryError(str(exc), permanent=True, code="403") from exc
        except BadRequest as exc:  # chat not found, text refused
            raise DeliveryError(str(exc), permanent=True, code="400") from exc
        except NetworkError as exc:
            raise DeliveryError(str(exc)) from exc
        return SendResult(provider_id=f"{message.to}:{sent.message_id}", status="sent")

    def _markup(self, meta: dict[str, Any], locale: str) -> Any:
        if meta.get("quick_replies"):
            columns = int(meta.get("columns", 5))
            buttons = [
                InlineKeyboardButton(
                    q.get("label") or self.rt.text(q["label_key"], locale), callback_data=q["data"]
                )
                for q in meta["quick_replies"]
            ]
            if "survey_id" in meta:  # five scores on a row, then solved yes / no
                rows = [buttons[:5], buttons[5:]]
            else:
                rows = [buttons[i : i + columns] for i in range(0, len(buttons), columns)]
            return InlineKeyboardMarkup(rows)
        if meta.get("keyboard"):
            return ReplyKeyboardMarkup(
                [
                    [
                        KeyboardButton(b["label"], request_location=bool(b.get("request_location")))
                        for b in row
                    ]
                    for row in meta["keyboard"]
                ],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        if meta.get("remove_keyboard"):
            return ReplyKeyboardRemove()
        return None


def _button_label(query: Any, data: str) -> str:
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if button.callback_data == data:
                return str(button.text)
    return data
