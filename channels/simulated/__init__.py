"""A simulated SMS provider, so that the whole loop runs with no account anywhere.

Anyone who can post to the inbound endpoint writes as any phone number (and
could send STOP or answer a survey for another citizen), so it answers only
requests from this machine (a loopback peer, and no proxy's forwarding
header), unless the ``token`` option is set, when a request carrying
``Authorization: Bearer <token>`` may come from anywhere. It is off when a
real SMS adapter is configured too (it is a :attr:`~Channel.stand_in`).

Inbound: ``POST /channels/simulated/sms`` with ``{"from": "+8613800000000",
"text": "...", "id": "optional provider id", "to": "12345"}`` takes the path
of a real provider's webhook: the text is stored in the inbox and the answer,
``202 {"inbox_id": ..., "duplicate": false}``, comes as soon as it is
committed; the text is handled right after. With ``?wait=1`` the answer waits
for that and says what happened (citizen, conversation, ticket or queue), as
``callcenter simulate sms`` does.

Outbound: the "provider" keeps what it was asked to send in
``<data_dir>/simulated-sms/sent.jsonl``, one JSON line per message, and answers
a repeated request (same idempotency key) with the id it gave the first time,
as a real provider with idempotency keys does. Every call, repeated or not, is
also logged to ``calls.jsonl``, so tests can tell an attempt from an effect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import hmac
import ipaddress
import json
import os
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field

from callcenter.actions.inbox import inbox
from callcenter.actions.intake import Inbound
from callcenter.api.bodies import read_json_body
from callcenter.api.http import json_response
from callcenter.api.keys import RUNTIME
from callcenter.channel import Access, OutboundMessage, SendResult, SmsChannel, SmsOptions
from callcenter.domain.errors import Forbidden, InvalidInput
from callcenter.runtime import Runtime

MAX_BODY = 64 * 1024
INBOUND_PATH = "/channels/simulated/sms"
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def from_this_machine(request: web.Request) -> bool:
    """A loopback peer that no proxy forwarded (a proxy on this machine is loopback too)."""
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    if not peer or not isinstance(peer, tuple):
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class ProviderLog:
    """An append-only JSON-lines file shared safely by several processes."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.sent_path = folder / "sent.jsonl"
        self.calls_path = folder / "calls.jsonl"
        self._index: dict[str, dict[str, Any]] = {}
        self._offset = 0

    def _refresh(self, handle: Any) -> None:
        handle.seek(self._offset)
        for line in handle:
            if line.endswith("\n"):
                entry = json.loads(line)
                self._index[entry["key"]] = entry
                self._offset += len(line.encode("utf-8"))

    def record(self, key: str, to: str, body: str, sender: str | None) -> tuple[str, bool]:
        """Store one send; returns (provider id, whether it was new)."""
        with self.calls_path.open("a", encoding="utf-8") as calls:
            calls.write(json.dumps({"key": key, "to": to}) + "\n")
        with self.sent_path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._refresh(handle)
                if key in self._index:
                    return str(self._index[key]["sid"]), False
                entry = {
                    "key": key,
                    "sid": "SM" + uuid.uuid4().hex,
                    "to": to,
                    "from": sender,
                    "body": body,
                }
                line = json.dumps(entry, ensure_ascii=False) + "\n"
                handle.seek(0, os.SEEK_END)
                handle.write(line)
                handle.flush()
                self._index[key] = entry
                self._offset += len(line.encode("utf-8"))
                return str(entry["sid"]), True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def sent(self) -> list[dict[str, Any]]:
        if not self.sent_path.exists():
            return []
        with self.sent_path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n")]


class SimulatedSmsOptions(SmsOptions):
    """``[channel_options.sms]`` for the simulated provider."""

    token: str = ""  # required of senders from other machines (loopback needs none)
    # a slow provider, for tests and demos: time before it stores the message, and
    # time before it answers after storing it
    delay_seconds: float = Field(default=0, ge=0)
    settle_seconds: float = Field(default=0, ge=0)


class SimulatedSms(SmsChannel):
    """The ``sms`` channel, answered by a provider that lives in the data directory."""

    stand_in = True
    Options = SimulatedSmsOptions
    config: SimulatedSmsOptions

    def __init__(self, rt: Runtime, options: dict[str, Any]) -> None:
        super().__init__(rt, options)
        self.token = self.config.token
        self.delay = self.config.delay_seconds
        self.settle = self.config.settle_seconds
        self.log = ProviderLog(Path(rt.settings.data_dir) / "simulated-sms")

    def setup_web(self, app: web.Application) -> None:
        app.router.add_post(INBOUND_PATH, self.inbound)

    def access(self) -> list[Access]:
        if self.token:
            return [Access(f"POST {INBOUND_PATH}", "token")]
        return [Access(f"POST {INBOUND_PATH}", "loopback")]

    def _allowed(self, request: web.Request) -> bool:
        if self.token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                return True
        return from_this_machine(request)

    async def inbound(self, request: web.Request) -> web.Response:
        rt = request.app[RUNTIME]
        box = inbox(rt)
        if not self._allowed(request):
            raise Forbidden("local_only")
        data = await read_json_body(request, limit=MAX_BODY)
        accepted = await box.accept(self.to_inbound(data))
        if request.query.get("wait") not in ("1", "true"):
            return json_response(
                {"inbox_id": accepted.inbox_id, "duplicate": accepted.duplicate}, status=202
            )
        await box.process()  # at once, whether or not this process runs the inbox driver
        result = dataclasses.replace(
            await box.result(accepted.inbox_id), duplicate=accepted.duplicate
        )
        return json_response(result.as_dict(), status=200 if result.duplicate else 201)

    def to_inbound(self, data: Any) -> Inbound:
        if not isinstance(data, dict):
            raise InvalidInput("malformed_json")
        sender, text = data.get("from"), data.get("text")
        if not isinstance(sender, str) or not sender.strip():
            raise InvalidInput("missing_field", field="from")
        if not isinstance(text, str):
            raise InvalidInput("missing_field", field="text")
        provider_id = data.get("id")
        if provider_id is not None and (not isinstance(provider_id, str) or len(provider_id) > 100):
            raise InvalidInput("invalid_field", field="id")
        return self.make_inbound(
            sender=sender,
            body=text,
            provider_id=provider_id or f"SIM{uuid.uuid4().hex}",
            service_address=str(data.get("to") or self.rt.settings.hotline_number),
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        # no segment budget and no pacing unless configured (``max_segments``,
        # ``rate_segments_per_second``), as for every SMS gateway
        body = self.fit_body(message.body)
        await self.pace(message.sender or "", self.segments(body).segments)
        if self.delay:
            await asyncio.sleep(self.delay)
        sid, _ = await asyncio.to_thread(
            self.log.record, message.idempotency_key, message.to, body, message.sender
        )
        if self.settle:
            await asyncio.sleep(self.settle)
        return SendResult(provider_id=sid, status="sent")
