"""The public ticket status page: a ticket's state and the department's answer, by its
number and the last four digits of the citizen's phone number.

Guessing is rate-limited twice (counters in the ``throttles`` table, so every
server shares them): each client address may try ``LOOKUPS_PER_IP`` times in
``WINDOW``, and a ticket number locks after ``FAILURES_PER_TICKET`` wrong
digits in ``WINDOW``. An unknown number and wrong digits get the same answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callcenter.actions.lookup import WINDOW, look_up_ticket
from callcenter.actions.staff import check_rate
from callcenter.api.bodies import read_json_body
from callcenter.api.http import json_response
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import InvalidInput

if TYPE_CHECKING:
    from channels.webchat import WebChat

BEHIND_PROXY = web.AppKey("webchat_behind_proxy", bool)
LOOKUPS_PER_IP = 20
MAX_LOOKUP_BODY = 4096
NUMBER = re.compile(r"^[0-9]{8}-[0-9]{4,6}$")  # ASCII digits: "\d" takes "१" and "²" too
LAST4 = re.compile(r"[0-9]{4}")


def add_status_routes(app: web.Application, channel: WebChat) -> None:
    app.router.add_get("/status", channel.static_file("status.html", "text/html"))
    app.router.add_get(
        "/status/status.js", channel.static_file("status.js", "application/javascript")
    )
    app.router.add_get("/status/status.css", channel.static_file("status.css", "text/css"))
    app.router.add_get("/status/strings/{locale}.json", _strings(channel))
    app.router.add_post("/status/lookup", lookup)
    app.router.add_get("/s/{number}", short_link)  # the status link in SMS notices
    app[BEHIND_PROXY] = bool(channel.options.get("behind_proxy", False))


def _strings(channel: WebChat) -> Any:
    async def serve(request: web.Request) -> web.Response:
        return json_response(channel.texts(request.match_info["locale"]))

    return serve


def _ip(request: web.Request) -> str:
    """The client's address; behind a reverse proxy (option ``behind_proxy``), the one the
    proxy saw, so that citizens are not all counted as one."""
    if request.config_dict.get(BEHIND_PROXY):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else "unknown"


async def lookup(request: web.Request) -> web.Response:
    rt = request.config_dict[RUNTIME]
    locale = rt.catalog.normalize(
        request.query.get("lang") or rt.catalog.negotiate(request.headers.get("Accept-Language"))
    )
    data = await read_json_body(request, limit=MAX_LOOKUP_BODY)
    if not isinstance(data, dict):
        raise InvalidInput("malformed_json")
    number = str(data.get("number", "")).strip()
    digits = str(data.get("last4", "")).strip()
    if not NUMBER.match(number):
        raise InvalidInput("invalid_field", field="number")
    if not LAST4.fullmatch(digits):
        raise InvalidInput("invalid_field", field="last4")
    await check_rate(rt, f"lookup-ip:{_ip(request)}", limit=LOOKUPS_PER_IP, window=WINDOW)
    return json_response(await look_up_ticket(rt, number, digits, locale))


async def short_link(request: web.Request) -> web.Response:
    """``/s/<ticket number>``: the short link SMS notices carry, to the status page."""
    number = request.match_info["number"]
    target = f"/status?ticket={number}" if NUMBER.match(number) else "/status"
    raise web.HTTPFound(target)
