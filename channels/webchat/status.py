"""The public ticket status page: a ticket's state and the department's answer, by its
number and the last four digits of the citizen's phone number.

Guessing is rate-limited twice (counters in the ``throttles`` table, so every
server shares them): each client address may try ``LOOKUPS_PER_IP`` times in
``WINDOW``, and a ticket number locks after ``FAILURES_PER_TICKET`` wrong
digits in ``WINDOW``. An unknown number and wrong digits get the same answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from callcenter.actions.lookup import WINDOW, StatusLookup, look_up_ticket
from callcenter.actions.staff import check_rate
from callcenter.api.bodies import read_json_body
from callcenter.api.http import error_body, json_response, retry_after
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import HotlineError, InvalidInput

if TYPE_CHECKING:
    from channels.webchat import WebChat

BEHIND_PROXY = web.AppKey("webchat_behind_proxy", bool)
LOOKUPS_PER_IP = 20
MAX_LOOKUP_BODY = 4096
NUMBER = re.compile(r"^[0-9]{8}-[0-9]{4,6}$")  # ASCII digits: "\d" takes "१" and "²" too
LAST4 = re.compile(r"[0-9]{4}")


TEMPLATES = Path(__file__).parent / "templates"
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("webchat_jinja", jinja2.Environment)


def add_status_routes(app: web.Application, channel: WebChat) -> None:
    aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/status", status_page(channel))
    app.router.add_post("/status", status_page(channel))
    app.router.add_get("/status/status.css", channel.static_file("status.css", "text/css"))
    app.router.add_get("/status/strings/{locale}.json", _strings(channel))
    app.router.add_post("/status/lookup", lookup)
    app.router.add_get("/s/{number}", short_link)  # the status link in SMS notices
    app[BEHIND_PROXY] = channel.config.behind_proxy


def _locale(request: web.Request) -> str:
    rt = request.config_dict[RUNTIME]
    return str(
        rt.catalog.normalize(
            request.query.get("lang")
            or rt.catalog.negotiate(request.headers.get("Accept-Language"))
        )
    )


async def _check(request: web.Request, number: str, digits: str, locale: str) -> StatusLookup:
    """Validate, count against the client's address, and look the ticket up."""
    rt = request.config_dict[RUNTIME]
    if not NUMBER.match(number):
        raise InvalidInput("invalid_field", field="number")
    if not LAST4.fullmatch(digits):
        raise InvalidInput("invalid_field", field="last4")
    await check_rate(rt, f"lookup-ip:{_ip(request)}", limit=LOOKUPS_PER_IP, window=WINDOW)
    return await look_up_ticket(rt, number, digits, locale)


def status_page(channel: WebChat) -> Any:
    """The page itself: a plain form (it works with no script), answered on the server
    with the ticket's state, times in the hotline's zone."""

    async def serve(request: web.Request) -> web.Response:
        rt = request.config_dict[RUNTIME]
        locale = _locale(request)
        texts = channel.texts(locale)
        number = request.query.get("ticket", "")
        number = number if NUMBER.match(number) else ""
        result: StatusLookup | None = None
        error = ""
        status = 200
        refused: HotlineError | None = None
        if request.method == "POST":
            form = await request.post()
            number = str(form.get("number", "")).strip()[:20]
            try:
                result = await _check(request, number, str(form.get("last4", "")).strip(), locale)
            except HotlineError as failure:
                error = str(error_body(rt, failure, locale)["error"]["message"])
                status = failure.status
                refused = failure

        def t(key: str, **params: Any) -> str:
            template = texts.get(key, key)
            return template.format(**params) if params else template

        context = {
            "locale": locale,
            "other": "zh-CN" if locale == "en" else "en",
            "t": t,
            "when": lambda value: rt.local_text(value) if value else "",
            "hotline": rt.settings.hotline_number,
            "zone": rt.settings.timezone,
            "number": number,
            "result": result,
            "error": error,
        }
        response = aiohttp_jinja2.render_template(
            "status.html", request, context, app_key=JINJA, status=status
        )
        if refused is not None:
            retry_after(response, refused)
        return response

    return serve


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
    locale = _locale(request)
    data = await read_json_body(request, limit=MAX_LOOKUP_BODY)
    if not isinstance(data, dict):
        raise InvalidInput("malformed_json")
    number = str(data.get("number", "")).strip()
    digits = str(data.get("last4", "")).strip()
    return json_response(await _check(request, number, digits, locale))


async def short_link(request: web.Request) -> web.Response:
    """``/s/<ticket number>``: the short link SMS notices carry, to the status page."""
    number = request.match_info["number"]
    target = f"/status?ticket={number}" if NUMBER.match(number) else "/status"
    raise web.HTTPFound(target)
