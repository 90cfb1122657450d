"""Verifying Twilio's webhooks.

Twilio signs each webhook with the account's auth token over the full URL it
requested plus the sorted form parameters (``X-Twilio-Signature``). Behind a
reverse proxy the URL this server sees is not the one Twilio requested, so the
URL is rebuilt from the configured public URL and the request's path and
query, never from the Host header.

A missing or wrong signature is 403; a body over 64 kB is 413; a body that is
not UTF-8 form data is 400. The body is read whole first, however many pieces
it arrives in (:mod:`callcenter.api.bodies`): the signature covers all of it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from callcenter.api.bodies import read_body
from callcenter.domain.errors import Forbidden, InvalidInput

MAX_FORM_BYTES = 64 * 1024


class TwilioWebhook:
    def __init__(self, auth_token: str, public_url: str) -> None:
        if not auth_token:
            raise ValueError("a Twilio auth token is needed to check webhooks")
        self.validator = RequestValidator(auth_token)
        self.public_url = public_url.rstrip("/")

    def url_for(self, request: web.Request) -> str:
        """The URL Twilio requested: the public URL plus this request's path and query."""
        return self.public_url + request.rel_url.path_qs

    async def verified_form(self, request: web.Request) -> MultiDict[str]:
        """The webhook's form parameters, or an error if it was not signed by Twilio."""
        raw = await read_body(request, limit=MAX_FORM_BYTES)
        try:
            text = raw.decode("utf-8")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("invalid_encoding") from None
        form: MultiDict[str] = MultiDict(pairs)
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(self.url_for(request), form, signature):
            raise Forbidden("invalid_signature")
        return form

    def sign(self, url: str, params: dict[str, str]) -> str:
        """The signature Twilio would send (for tests and the local stand-in)."""
        return str(self.validator.compute_signature(url, params))
