"""SMS through Twilio: inbound and status webhooks, outbound through the Messages API.

Enable it with ``channels = ["channels.twilio.sms:TwilioSms"]`` and the
``[channel_options.sms]`` table (see :class:`TwilioSmsOptions` and
docs/channels/twilio.md).

Inbound, ``POST /channels/twilio/sms`` checks Twilio's signature against the
configured public URL, hands the text to the intake action, and answers empty
TwiML only after that committed; a retried webhook (same MessageSid) changes
nothing. ``POST /channels/twilio/sms/status`` takes Twilio's status callbacks.

Outbound, the core's ``message.deliver`` job calls :meth:`TwilioSms.send`,
which asks Twilio's REST API (through the official client and its aiohttp
transport) to send the message, records the attempt and Twilio's answer, and
turns Twilio's errors into retry-or-not: 429, 5xx, timeouts and network
errors are retried with backoff (Twilio's ``Retry-After`` is honoured);
refusals (invalid number, unsubscribed, not a mobile...) are not. Sends are
paced per sender number (a long code sends about one segment per second);
a send that would exceed the pace is deferred without spending an attempt.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy
from pydantic import Field, field_validator
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from callcenter.actions.deliveries import (
    ACCEPTED,
    FAILED,
    RETRY,
    record_attempt,
    record_provider_status,
    start_attempt,
)
from callcenter.actions.inbox import inbox
from callcenter.actions.intake import Inbound
from callcenter.api.keys import RUNTIME
from callcenter.channel import (
    Access,
    DeliveryError,
    OutboundMessage,
    SendResult,
    SmsChannel,
    SmsOptions,
)
from callcenter.domain import delivery
from callcenter.domain.errors import Forbidden, InvalidInput
from callcenter.domain.ids import ascii_int
from callcenter.domain.phone import normalize_phone
from callcenter.runtime import Runtime
from callcenter.views import provider_ids_recorded
from channels.twilio.webhooks import TwilioWebhook

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
INBOUND_PATH = "/channels/twilio/sms"
STATUS_PATH = "/channels/twilio/sms/status"

# Twilio error codes that no retry will cure (https://www.twilio.com/docs/api/errors).
# Any other 4xx answer is not retried either; these are named for the docs and the logs.
PERMANENT_CODES = {
    21211: "invalid 'To' phone number",
    21408: "permission to send to this region is not enabled",
    21610: "the recipient unsubscribed (replied STOP)",
    21612: "the 'To' number cannot be reached from this 'From' number",
    21614: "the 'To' number is not a mobile number",
    21617: "the body is longer than 1600 characters",
    21606: "the 'From' number cannot send SMS for this account",
    21212: "invalid 'From' phone number",
    21602: "the body is empty",
}
# 4xx answers that are about us or the moment, not the message: retried
RETRYABLE_STATUS = {401, 403, 408, 409, 429}
# asking Twilio whether a message went out: how far before the attempt to look (the two
# clocks may differ), and how many of the pair's newest messages to read at most
FIND_MARGIN = timedelta(minutes=5)
FIND_PAGE = 50
FIND_LIMIT = 500

# Twilio's words for a message's state, and ours (callcenter.domain.delivery)
STATUSES = {
    "accepted": delivery.SENT,
    "scheduled": delivery.SENT,
    "queued": delivery.SENT,
    "sending": delivery.SENT,
    "sent": delivery.SENT,
    "delivered": delivery.DELIVERED,
    "read": delivery.DELIVERED,
    "undelivered": delivery.UNDELIVERED,
    "failed": delivery.FAILED,
    "canceled": delivery.FAILED,
}

_SID = re.compile(r"^[A-Za-z]{2}[0-9a-fA-F]{32}$")
_MAX_MEDIA = 10

# the HTTP answers seen while one send runs (each send is its own task, hence its own context)
_ANSWERS: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "twilio_answers", default=None
)


class TwilioSmsOptions(SmsOptions):
    """``[channel_options.sms]`` for Twilio."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=1)
    from_number: str  # E.164; the default sender
    # more Twilio numbers of the account: a reply goes out from the number the citizen wrote to
    from_numbers: list[str] = Field(default_factory=list)
    api_base_url: str = TWILIO_API
    rate_segments_per_second: float = Field(default=1.0, gt=0)
    timeout_seconds: float = Field(default=15.0, gt=0)
    max_segments: int = Field(default=10, ge=1)

    @field_validator("from_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return _e164_or_error(value)

    @field_validator("from_numbers")
    @classmethod
    def _all_e164(cls, value: list[str]) -> list[str]:
        return [_e164_or_error(v) for v in value]

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("api_base_url must be an http(s) URL")
        return value.rstrip("/")


def _e164_or_error(value: str) -> str:
    try:
        number = normalize_phone(value, "US")
    except InvalidInput:
        raise ValueError(f"{value!r} is not a phone number") from None
    if number != value.strip():
        raise ValueError(f"{value!r} must be written in E.164 form, like +8613800000000")
    return number


class TwilioHttpClient(AsyncTwilioHttpClient):
    """Twilio's own aiohttp transport, as its docs suggest customising it.

    It sends what the library addresses to ``https://api.twilio.com`` to the
    configured base URL (a local stand-in in tests and demos), applies the
    configured timeout (the library's async transport ignores its own), and
    keeps each answer for the send that is running, so that ``Retry-After``
    can be read when the library raises.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature)
        allow_redirects: bool = False,
    ) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        if auth is not None:
            # the same Basic credentials, without aiohttp's deprecated BasicAuth object
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        answer = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        seen = _ANSWERS.get()
        if seen is not None:
            seen.append(answer)
        return answer


class TwilioSms(SmsChannel):
    """The ``sms`` channel carried by Twilio."""

    strings_dir = Path(__file__).parent / "strings"
    default_max_segments = 10
    default_rate = 1.0

    Options = TwilioSmsOptions
    config: TwilioSmsOptions

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        self.webhook = TwilioWebhook(self.config.auth_token, rt.settings.effective_public_url)
        self.status_callback = rt.settings.effective_public_url + STATUS_PATH
        self.senders = {self.config.from_number, *self.config.from_numbers}
        self.http: TwilioHttpClient | None = None
        self.client: Any = None

    async def initialize(self) -> None:
        if not self.rt.settings.public_url:
            log.warning(
                "public_url is not set: Twilio's webhooks will be checked against %s, "
                "which is probably not the address Twilio calls",
                self.rt.settings.effective_public_url,
            )
        self.http = TwilioHttpClient(self.config.api_base_url, self.config.timeout_seconds)
        self.client = Client(self.config.account_sid, self.config.auth_token, http_client=self.http)

    async def shutdown(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None

    def setup_web(self, app: web.Application) -> None:
        app.router.add_post(INBOUND_PATH, self.inbound)
        app.router.add_post(STATUS_PATH, self.status)

    def access(self) -> list[Access]:
        return [Access(f"POST {INBOUND_PATH}, {STATUS_PATH}", "signed", "X-Twilio-Signature")]

    # --- inbound --------------------------------------------------------------------------

    async def inbound(self, request: web.Request) -> web.Response:
        """Twilio's "a message comes in" webhook."""
        rt = request.app[RUNTIME]
        form = await self._form(request)
        # stored before Twilio gets its 200, handled right after (callcenter.actions.inbox)
        accepted = await inbox(rt).accept(self.to_inbound(form))
        if accepted.duplicate:
            log.info("Twilio repeated message (inbox #%s); nothing changed", accepted.inbox_id)
        return _empty_twiml()

    async def _form(self, request: web.Request) -> MultiDictProxy[str]:
        try:
            return MultiDictProxy(await self.webhook.verified_form(request))
        except Forbidden:
            log.warning("Twilio webhook %s with a missing or wrong signature", request.path)
            raise

    def to_inbound(self, form: MultiDictProxy[str]) -> Inbound:
        sid = _required(form, "MessageSid", "SmsMessageSid", "SmsSid")
        if not _SID.match(sid):
            raise InvalidInput("invalid_field", field="MessageSid")
        sender = _required(form, "From")
        if ":" in sender:
            # another Twilio channel's address (whatsapp:+86..., messenger:...): not an SMS number
            raise InvalidInput("invalid_phone", number=sender[:40])
        to = _required(form, "To")
        if "Body" not in form:
            raise InvalidInput("missing_field", field="Body")
        body = form["Body"]
        meta: dict[str, Any] = {"to": to}
        media = _media(form)
        if media:
            meta["media"] = media
            if not body.strip():
                body = self.rt.text("channels.sms.media_only", None, count=len(media))
        segments = ascii_int(form.get("NumSegments"), maximum=1000)
        if segments is not None:
            meta["num_segments"] = segments
        try:
            service_address = self.phone_address(to)
        except InvalidInput:
            service_address = to[:200]  # a short code
        return self.make_inbound(
            sender=sender, body=body, provider_id=sid, service_address=service_address, meta=meta
        )

    async def status(self, request: web.Request) -> web.Response:
        """Twilio's status callback: what became of a message we sent."""
        rt = request.app[RUNTIME]
        form = await self._form(request)
        sid = _required(form, "MessageSid", "SmsSid")
        reported = _required(form, "MessageStatus", "SmsStatus").lower()
        ours = STATUSES.get(reported)
        if ours is None:
            log.info("Twilio status %r for %s is not one we track; ignored", reported, sid)
            return _empty_twiml()
        outcome = await record_provider_status(
            rt,
            channel=self.name,
            provider_id=sid,
            status=ours,
            provider_status=reported,
            error_code=form.get("ErrorCode") or None,
            error_message=form.get("ErrorMessage") or None,
        )
        if outcome is None:
            log.warning("Twilio status %r for unknown message %s ignored", reported, sid)
        return _empty_twiml()

    # --- outbound -------------------------------------------------------------------------

    def sender_for(self, message: OutboundMessage) -> str:
        """The number the citizen wrote to when it is one of ours, else ``from_number``."""
        if message.sender in self.senders:
            return str(message.sender)
        return self.config.from_number

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.client is None:
            raise DeliveryError("the Twilio channel is not initialised")
        body = self.fit_body(message.body)
        count = self.segments(body)
        sender = self.sender_for(message)
        await self.pace(sender, count.segments)  # may defer the job, spending no attempt
        detail: dict[str, Any] = {
            "from": sender,
            "segments": count.segments,
            "encoding": count.encoding,
        }
        if body != message.body:
            detail["shortened_from"] = len(message.body)
        # recorded before Twilio is called: if this process dies once Twilio has the
        # message, the next try finds this attempt unfinished and asks Twilio (find_sent)
        attempt = await start_attempt(
            self.rt, message.message_id, detail={"from": sender, "to": message.to}
        )
        answers: list[Any] = []
        token = _ANSWERS.set(answers)
        started = time.monotonic()
        try:
            sent = await self.client.messages.create_async(
                to=message.to, from_=sender, body=body, status_callback=self.status_callback
            )
        except TwilioRestException as exc:
            detail["elapsed_ms"] = round((time.monotonic() - started) * 1000)
            raise await self._refused(message, attempt, sender, exc, answers, detail) from None
        except TimeoutError:
            await self._unanswered(message, attempt, "timeout", started, detail)
            raise DeliveryError(
                f"Twilio did not answer within {self.config.timeout_seconds:g} s", code="timeout"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            detail["error"] = f"{type(exc).__name__}: {exc}"[:500]
            await self._unanswered(message, attempt, "network", started, detail)
            raise DeliveryError(f"cannot reach Twilio: {exc}", code="network") from None
        finally:
            _ANSWERS.reset(token)
        detail["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        detail["provider_status"] = sent.status
        if sent.num_segments is not None:
            detail["provider_segments"] = str(sent.num_segments)
        await record_attempt(
            self.rt,
            message.message_id,
            attempt=attempt,
            outcome=ACCEPTED,
            http_status=answers[-1].status_code if answers else None,
            provider_id=sent.sid,
            detail=detail,
        )
        return SendResult(provider_id=sent.sid, status=delivery.SENT, detail=detail)

    async def _unanswered(
        self,
        message: OutboundMessage,
        attempt: int,
        code: str,
        started: float,
        detail: dict[str, Any],
    ) -> None:
        """Complete an attempt Twilio gave no answer to (timeout, network): retried."""
        detail["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        await record_attempt(
            self.rt,
            message.message_id,
            attempt=attempt,
            outcome=RETRY,
            error_code=code,
            detail=detail,
        )

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Twilio's Messages list, filtered by sender and recipient, read back to ``since``
        (less a margin for the two clocks): an outbound message with this body that no
        other message of ours holds is the one the dead attempt handed over.

        Time is filtered here on ``date_created``, not with Twilio's ``DateSent``
        filter: that one matches ``date_sent``, which stays empty while a message
        waits in Twilio's queue (a number sends about one segment a second), and
        a message still queued would be missed and sent twice.
        """
        if self.client is None:
            raise DeliveryError("the Twilio channel is not initialised")
        sender, body = self.sender_for(message), self.fit_body(message.body)
        after = since - FIND_MARGIN
        found = []
        try:
            async for item in await self.client.messages.stream_async(
                to=message.to, from_=sender, page_size=FIND_PAGE, limit=FIND_LIMIT
            ):
                created = item.date_created
                if created is not None and created < after:
                    break  # newest first: the rest is older
                if item.body == body and str(item.direction or "").startswith("outbound"):
                    found.append(item)
        except TwilioRestException as exc:
            raise DeliveryError(
                f"cannot ask Twilio whether message {message.message_id} went out: {exc.msg}",
                code=str(exc.code or exc.status),
            ) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(
                f"cannot ask Twilio whether message {message.message_id} went out: {exc!r}",
                code="network",
            ) from None
        if not found:
            return None
        taken = await self._sids_recorded([str(item.sid) for item in found])
        for item in sorted(found, key=lambda m: m.date_created or after):
            if item.sid not in taken:
                return SendResult(
                    provider_id=str(item.sid),
                    status=delivery.SENT,
                    detail={"provider_status": str(item.status), "from": sender},
                )
        return None

    async def _sids_recorded(self, sids: list[str]) -> set[str]:
        async with self.rt.db.read() as conn:
            return await provider_ids_recorded(conn, self.name, sids)

    async def _refused(
        self,
        message: OutboundMessage,
        attempt: int,
        sender: str,
        exc: TwilioRestException,
        answers: list[Any],
        detail: dict[str, Any],
    ) -> DeliveryError:
        """Record a refusal and turn it into the error the outbox understands."""
        status = int(exc.status)
        code = str(exc.code) if exc.code is not None else str(status)
        detail["message"] = str(exc.msg)[:500]
        retry_after = None
        if answers:
            retry_after = _retry_after(answers[-1].headers.get("Retry-After"), self.rt.clock.now())
        if retry_after is not None:
            detail["retry_after"] = retry_after
        permanent = 400 <= status < 500 and status not in RETRYABLE_STATUS
        if permanent:
            known = PERMANENT_CODES.get(ascii_int(code) or 0)
            if known:
                detail["meaning"] = known
        elif status == 429:
            # the sender (or the account) is over its rate: hold this number's other sends too
            await self.pacer_hold(sender, retry_after)
        if status in (401, 403):
            log.error(
                "Twilio refused our credentials (%s %s): check channel_options.sms", status, code
            )
        await record_attempt(
            self.rt,
            message.message_id,
            attempt=attempt,
            outcome=FAILED if permanent else RETRY,
            http_status=status,
            error_code=code,
            detail=detail,
        )
        return DeliveryError(
            f"Twilio answered {status} ({code}): {exc.msg}",
            permanent=permanent,
            code=code,
            retry_after=retry_after,
        )

    async def pacer_hold(self, sender: str, seconds: float | None) -> None:
        if self.pacer is not None and seconds:
            now = self.rt.clock.now()
            self.pacer.hold(sender, seconds, now)
            if self.shared_pacer is not None:
                await self.shared_pacer.hold(sender, seconds, now)


def _required(form: MultiDictProxy[str], *names: str) -> str:
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    raise InvalidInput("missing_field", field=names[0])


def _media(form: MultiDictProxy[str]) -> list[dict[str, str]]:
    count = min(ascii_int(form.get("NumMedia")) or 0, _MAX_MEDIA)
    media = []
    for i in range(count):
        url = form.get(f"MediaUrl{i}")
        if url:
            media.append({"url": url[:1000], "type": form.get(f"MediaContentType{i}", "")[:100]})
    return media


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _empty_twiml() -> web.Response:
    """Twilio's webhooks want TwiML; replies leave through the outbox instead."""
    return web.Response(text=str(MessagingResponse()), content_type="text/xml")
