"""A local stand-in for Twilio's Messages API, speaking Twilio's wire format.

The real ``twilio`` client is pointed at it (``api_base_url``). It answers
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded, HTTP
basic auth with the account SID and auth token) the way Twilio does: 201 and
the Message resource as JSON (``sid`` ``SM`` + 32 hex digits, ``status``
``queued``, ``num_segments``...), or Twilio's error document
``{code, message, more_info, status}``. ``GET .../Messages/{sid}.json``
fetches a stored message. ``GET .../Messages.json`` lists the account's
messages newest first, as Twilio's list does: filtered by ``To``, ``From`` and
``DateSent`` (``DateSent``, ``DateSent<``, ``DateSent>``, each a date
``YYYY-MM-DD`` or a time ``YYYY-MM-DDTHH:MM:SSZ``, on ``date_sent``, which is
empty until the message is reported sent), in pages of ``PageSize`` (50 by
default) with ``next_page_uri`` and the other paging fields.

Tests can tell it to misbehave for the next calls (:meth:`TwilioStandIn.fail_next`,
:meth:`TwilioStandIn.hang_next`), read every request it got in order
(``requests``) and what it accepted (``accepted``), and make it call the
hotline back the way Twilio does, signed with the auth token: status
callbacks (:meth:`TwilioStandIn.send_status`) and incoming messages
(:meth:`TwilioStandIn.send_inbound`).

For a demo without an account, run it on its own::

    python -m tests.fakes.twilio_api --port 8099

and set ``api_base_url = "http://127.0.0.1:8099"`` with the printed account SID
and token in ``[channel_options.sms]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from callcenter.domain.segments import count_segments

API_VERSION = "2010-04-01"
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

ERRORS = {
    20001: "Invalid paging or filter parameter",
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21606: "The From phone number {from_} is not a valid, SMS-capable inbound phone number "
    "or short code for your account.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


_DATE_FILTERS = (("DateSent", "="), ("DateSent<", "<"), ("DateSent>", ">"))


def _when(value: str) -> datetime | date:
    """A ``DateSent`` bound: a day (``YYYY-MM-DD``) or a time (``YYYY-MM-DDTHH:MM:SSZ``)."""
    if "T" in value:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return date.fromisoformat(value)


def _date_matches(date_sent: str | None, bounds: dict[str, datetime | date]) -> bool:
    """Twilio's ``DateSent`` filters: on or before, on or after, or on a day (GMT)."""
    if date_sent is None:
        return False  # not sent yet (queued): no DateSent filter matches it
    sent = parsedate_to_datetime(date_sent).astimezone(UTC)
    for op, bound in bounds.items():
        if isinstance(bound, datetime):
            ok = {"=": sent == bound, "<": sent <= bound, ">": sent >= bound}[op]
        else:
            day = sent.date()
            ok = {"=": day == bound, "<": day <= bound, ">": day >= bound}[op]
        if not ok:
            return False
    return True


def new_sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class Failure:
    """What to do instead of answering normally, once."""

    status: int = 500
    code: int | None = None
    retry_after: str | None = None
    hang: float = 0.0  # seconds to hold the request without answering
    store_first: bool = False  # accept the message, then fail or hang (the answer is lost)


@dataclass
class Recorded:
    """One request, as the stand-in saw it."""

    method: str
    path: str
    form: dict[str, str]
    authorized: bool
    status: int = 0  # what it answered (0: no answer, the client gave up)
    sid: str | None = None
    at: float = field(default_factory=time.monotonic)


class TwilioStandIn:
    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        numbers: list[str] | None = None,
        latency: float = 0.0,
        auto_status: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid or "AC" + uuid.uuid4().hex
        self.auth_token = auth_token or uuid.uuid4().hex
        self.numbers = set(numbers) if numbers else None  # the account's senders; None: any
        self.latency = latency  # seconds between storing a message and answering
        # for demos: report "sent", then "delivered", this many seconds after each accept
        self.auto_status = auto_status
        self.clock = clock or (lambda: datetime.now(UTC))  # Twilio's clock (date_created...)
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests: list[Recorded] = []
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> the Message resource
        self.callbacks: dict[str, str] = {}  # sid -> StatusCallback URL
        self.failures: deque[Failure] = deque()
        self.list_failures = 0  # answer this many of the next list reads with a 500
        self.validator = RequestValidator(self.auth_token)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = web.Application()
        self.app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create)
        self.app.router.add_get("/2010-04-01/Accounts/{account}/Messages/{sid}.json", self._fetch)
        self.app.router.add_get("/2010-04-01/Accounts/{account}/Messages.json", self._list)

    # --- running ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._release.clear()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        return self.base_url

    async def close(self) -> None:
        self._release.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TwilioStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- telling it what to do -------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        code: int | None = None,
        retry_after: str | int | None = None,
        times: int = 1,
        store_first: bool = False,
    ) -> None:
        """Answer the next ``times`` creates with an error (Twilio's JSON error document)."""
        for _ in range(times):
            self.failures.append(
                Failure(
                    status=status,
                    code=code,
                    retry_after=None if retry_after is None else str(retry_after),
                    store_first=store_first,
                )
            )

    def hang_next(
        self, seconds: float = 30.0, *, times: int = 1, store_first: bool = False
    ) -> None:
        """Hold the next ``times`` creates without answering (bounded by ``seconds``)."""
        for _ in range(times):
            self.failures.append(Failure(hang=seconds, store_first=store_first))

    # --- what it saw -------------------------------------------------------------------------

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Every message it took, in order."""
        return list(self.messages.values())

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # --- the API ------------------------------------------------------------------------

    def _authorized(self, request: web.Request, account: str) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.account_sid == account and password == self.auth_token

    def _error(
        self, code: int, status: int, headers: dict[str, str] | None = None, **params: str
    ) -> web.Response:
        template = ERRORS.get(code, "Error")
        return web.json_response(
            {
                "code": code,
                "message": template.format(**params) if params else template,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers=headers,
        )

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        account = request.match_info["account"]
        record = Recorded("POST", request.path, form, self._authorized(request, account))
        self.requests.append(record)
        if not record.authorized:
            record.status = 401
            return self._error(20003, 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        failure = self.failures.popleft() if self.failures else None
        if failure is not None and failure.store_first:
            record.sid = self._store(account, form)["sid"]
        if failure is not None and failure.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), failure.hang)
            record.status = 504
            return self._error(20500, 504)
        if failure is not None:
            record.status = failure.status
            code = failure.code or (20429 if failure.status == 429 else 20500)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return self._error(code, failure.status, headers, to=form.get("To", ""))
        problem = self._check(form)
        if problem is not None:
            record.status = 400
            return self._error(problem, 400, to=form.get("To", ""), from_=form.get("From", ""))
        message = self._store(account, form)
        record.sid = message["sid"]
        if self.latency:
            await asyncio.sleep(self.latency)
        record.status = 201
        return web.json_response(message, status=201)

    def _check(self, form: dict[str, str]) -> int | None:
        if not form.get("To"):
            return 21604
        if not E164.match(form["To"]):
            return 21211
        if self.numbers is not None and form.get("From") not in self.numbers:
            return 21606
        if not form.get("Body"):
            return 21602
        if len(form["Body"]) > 1600:
            return 21617
        return None

    def _store(self, account: str, form: dict[str, str]) -> dict[str, Any]:
        sid = new_sid()
        now = format_datetime(self.clock(), usegmt=True)
        body = form.get("Body", "")
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
        message = {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(count_segments(body).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
            "to": form.get("To"),
            "uri": uri + ".json",
        }
        self.messages[sid] = message
        if form.get("StatusCallback"):
            self.callbacks[sid] = form["StatusCallback"]
            if self.auto_status is not None:
                task = asyncio.create_task(self._progress(sid, self.auto_status))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return message

    async def _progress(self, sid: str, delay: float) -> None:
        for status in ("sent", "delivered"):
            await asyncio.sleep(delay)
            try:
                await self.send_status(sid, status)
            except aiohttp.ClientError as exc:
                print(f"status callback for {sid} failed: {exc}", flush=True)

    async def _fetch(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        record = Recorded("GET", request.path, {}, self._authorized(request, account))
        self.requests.append(record)
        if not record.authorized:
            record.status = 401
            return self._error(20003, 401)
        message = self.messages.get(request.match_info["sid"])
        if message is None or message["account_sid"] != account:
            record.status = 404
            return self._error(20404, 404, path=request.path)
        record.status = 200
        return web.json_response(message)

    def lists(self) -> list[Recorded]:
        """Every read of the Messages list, in order."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("Messages.json")]

    async def _list(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        query = {k: v for k, v in request.query.items()}
        record = Recorded("GET", request.path, query, self._authorized(request, account))
        self.requests.append(record)
        if not record.authorized:
            record.status = 401
            return self._error(20003, 401)
        if self.list_failures:
            self.list_failures -= 1
            record.status = 500
            return self._error(20500, 500)
        try:
            size = min(max(int(query.get("PageSize", "50")), 1), 1000)
            page = max(int(query.get("Page", "0")), 0)
            bounds = {op: _when(query[name]) for name, op in _DATE_FILTERS if name in query}
        except ValueError:
            record.status = 400
            return self._error(20001, 400)
        found = []
        for message in self.messages.values():
            if message["account_sid"] != account:
                continue
            if "To" in query and message["to"] != query["To"]:
                continue
            if "From" in query and message["from"] != query["From"]:
                continue
            if bounds and not _date_matches(message["date_sent"], bounds):
                continue
            found.append(message)
        found.sort(key=lambda m: parsedate_to_datetime(m["date_created"]), reverse=True)
        chunk = found[page * size : (page + 1) * size]
        base = request.path
        kept = {k: v for k, v in query.items() if k not in ("Page", "PageToken", "PageSize")}

        def uri(number: int) -> str:
            return base + "?" + urlencode({**kept, "PageSize": size, "Page": number})

        more = (page + 1) * size < len(found)
        record.status = 200
        return web.json_response(
            {
                "messages": chunk,
                "end": page * size + max(len(chunk) - 1, 0),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) + f"&PageToken=PA{page + 1}" if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": uri(page - 1) if page else None,
                "start": page * size,
                "uri": request.path_qs,
            }
        )

    # --- calling the hotline, as Twilio does -------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
        return str(self.validator.compute_signature(url, params))

    async def post_signed(
        self,
        url: str,
        params: dict[str, str],
        *,
        via: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a webhook signed for ``url``; ``via`` is where it really goes (a proxy)."""
        target = url
        if via is not None:
            parts = urlsplit(url)
            target = via.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        sent_headers = {
            "X-Twilio-Signature": signature if signature is not None else self.sign(url, params),
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            **(headers or {}),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=params, headers=sent_headers) as response,
        ):
            return response.status, await response.text()

    def inbound_params(
        self, sender: str, body: str, to: str, *, sid: str | None = None
    ) -> dict[str, str]:
        """The form Twilio posts for an incoming SMS."""
        sid = sid or new_sid()
        return {
            "ToCountry": "CN",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "CN",
            "To": to,
            "ToZip": "",
            "NumSegments": str(count_segments(body).segments),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }

    async def send_inbound(
        self,
        url: str,
        sender: str,
        body: str,
        to: str,
        *,
        sid: str | None = None,
        via: str | None = None,
    ) -> tuple[int, str]:
        """Deliver an incoming SMS to the hotline's webhook, as Twilio would."""
        return await self.post_signed(url, self.inbound_params(sender, body, to, sid=sid), via=via)

    async def send_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        via: str | None = None,
    ) -> tuple[int, str]:
        """Call the message's StatusCallback with a new status, signed as Twilio signs it."""
        message = self.messages[sid]
        message["status"] = status
        message["date_updated"] = format_datetime(self.clock(), usegmt=True)
        if status == "sent" and message["date_sent"] is None:
            message["date_sent"] = message["date_updated"]
        if error_code is not None:
            message["error_code"] = error_code
        params = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": str(message["to"]),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": str(message["from"]),
            "ApiVersion": API_VERSION,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return await self.post_signed(self.callbacks[sid], params, via=via)


def main() -> None:
    parser = argparse.ArgumentParser(description="a local stand-in for Twilio's Messages API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid")
    parser.add_argument("--auth-token")
    parser.add_argument(
        "--status-after",
        type=float,
        default=1.0,
        help="seconds before each status callback (sent, then delivered)",
    )
    args = parser.parse_args()

    async def run() -> None:
        standin = TwilioStandIn(args.account_sid, args.auth_token, auto_status=args.status_after)
        url = await standin.start(args.host, args.port)
        print(f"Twilio stand-in on {url}")
        print(f"  account_sid = {standin.account_sid!r}")
        print(f"  auth_token = {standin.auth_token!r}")
        print(f'  api_base_url = "{url}"', flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await standin.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
