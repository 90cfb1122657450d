"""Reading request bodies whole, with a size limit and a time limit: the one place that does.

A body arrives in as many pieces as the network cuts it into; a Chinese SMS of
150 characters is already more than one TCP segment. ``request.content.read(n)``
returns what has arrived *so far*, so a reader that calls it once sees a
truncated body, a broken signature, malformed JSON. Every handler that reads a
body (the API, every channel's webhook, the simulated provider, the staff
pages) calls :func:`read_body` or :func:`read_json_body`, which read until the
end of the body and refuse, with 413, a body over the handler's limit, however
it is cut up and whatever its ``Content-Length`` says; a body that stops
arriving is refused with 408 after ``within`` seconds rather than held open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from callcenter.domain.errors import InvalidInput, PayloadTooLarge, RequestTimeout

BODY_TIMEOUT = 30.0  # seconds for a whole body; a provider sends its webhook in well under one


async def read_body(request: web.Request, *, limit: int, within: float = BODY_TIMEOUT) -> bytes:
    """The whole body, or :class:`PayloadTooLarge` once it passes ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("body_too_large", limit=limit)
    received = bytearray()
    try:
        async with asyncio.timeout(within):
            while chunk := await request.content.readany():
                received += chunk
                if len(received) > limit:
                    raise PayloadTooLarge("body_too_large", limit=limit)
    except TimeoutError:
        raise RequestTimeout("body_timeout", seconds=int(within)) from None
    return bytes(received)


async def read_json_body(request: web.Request, *, limit: int, within: float = BODY_TIMEOUT) -> Any:
    """The body parsed as JSON; a blank body is ``malformed_json`` like any other non-JSON."""
    raw = await read_body(request, limit=limit, within=within)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if raw.strip():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("invalid_encoding") from None
        raise InvalidInput("malformed_json") from None
