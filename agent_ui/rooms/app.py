"""The parties' pages: ``/m/<link>`` (PIN), ``/m/<link>/room`` (device check, consent,
waiting room, the room), ``/m/<link>/api/*`` (the page's calls), ``/m/doc/<link>`` (the
agreement). In the party's own language; every refusal is a page that says why.

A party's browser proves who it is by the link (signed, bound to the party and the
invitation) plus the seat cookie it got for the right PIN; the seat cookie is
HttpOnly, SameSite=Strict and scoped to that link's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from callcenter.actions import mediations as med
from callcenter.actions.mediation_files import agreement_for
from callcenter.api.http import json_response
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import HotlineError, InvalidInput
from callcenter.domain.ids import parse_id
from callcenter.runtime import Runtime
from callcenter.views import mediation_party_by_id

HERE = Path(__file__).parent
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("room_ui_jinja", jinja2.Environment)
STATUS = {
    "link_invalid": 404,
    "link_expired": 410,
    "link_replaced": 410,
    "session_over": 410,
    "declined": 403,
    "removed": 403,
    "too_early": 403,
    "pin_wrong": 403,
    "pin_needed": 403,
    "pin_locked": 429,
    "seat_taken": 409,
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob: mediastream:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
TEXT_KEYS = (
    "check_failed", "muted_by_mediator", "unmuted_by_mediator", "removed", "ended", "left",
    "reconnecting", "media_down",
)  # fmt: skip


def setup(app: web.Application, rt: Runtime) -> None:
    rt.catalog.load_dir(HERE / "strings", prefix="room")
    aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.middlewares.append(headers)
    r = app.router
    r.add_static("/m/static/", HERE / "static", append_version=False)
    r.add_get("/m/doc/{link}", agreement)
    r.add_get("/m/{link}", pin_page)
    r.add_post("/m/{link}", pin_submit)
    r.add_get("/m/{link}/room", room_page)
    r.add_post("/m/{link}/api/{what}", room_api)


@web.middleware
async def headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    if request.path.startswith("/m/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
        if not request.path.startswith("/m/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def _cookie(link: str) -> str:
    return f"seat_{link.split('-')[0]}"


async def _locale(request: web.Request, link: str) -> tuple[str, Any]:
    """The party's own language when the link names a party; else the browser's."""
    rt: Runtime = request.config_dict[RUNTIME]
    # only the language is taken from an unchecked link: a forged one is refused all the
    # same, in the language of the party it names
    head = link.split("-", 1)[0]
    party_id = parse_id(head)
    party = None
    if party_id is not None:
        async with rt.db.read() as conn:
            party = await mediation_party_by_id(conn, party_id)
    if party is not None:
        return party.locale, party
    return rt.catalog.negotiate(request.headers.get("Accept-Language")), None


def _context(rt: Runtime, locale: str, **values: Any) -> dict[str, Any]:
    def t(key: str, **params: Any) -> str:
        return rt.text(f"room.{key}", locale, hotline=rt.settings.hotline_number, **params)

    return {"t": t, "locale": locale, "dial_in": rt.settings.mediation.dial_in, **values}


async def _refused(request: web.Request, link: str, error: HotlineError) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    locale, _ = await _locale(request, link)
    message = rt.text(f"errors.{error.code}", locale, **error.params)
    response = aiohttp_jinja2.render_template(
        "refused.html",
        request,
        _context(rt, locale, code=error.code, message=message),
        app_key=JINJA,
        status=STATUS.get(error.code, error.status),
    )
    if error.code == "pin_locked":
        response.headers["Retry-After"] = str(error.params.get("retry_after", 60))
    return response


async def _pin_form(
    request: web.Request, admission: med.Admission, link: str, error: HotlineError | None = None
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    party = admission.party
    return aiohttp_jinja2.render_template(
        "pin.html",
        request,
        _context(
            rt, party.locale, link=link, name=party.name,
            time=rt.local_text(admission.mediation.scheduled_at),
            error=rt.text(f"errors.{error.code}", party.locale, **error.params) if error else "",
            code=error.code if error else "",
        ),
        app_key=JINJA,
        status=STATUS.get(error.code, 403) if error else 200,
    )  # fmt: skip


async def pin_page(request: web.Request) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    link = request.match_info["link"]
    try:
        admission = await med.open_link(rt, link)
    except HotlineError as error:
        return await _refused(request, link, error)
    seat = request.cookies.get(_cookie(link))
    if seat:
        try:
            await med.seated(rt, link, seat)
            raise web.HTTPSeeOther(f"/m/{link}/room")
        except HotlineError:
            pass
    return await _pin_form(request, admission, link)


async def pin_submit(request: web.Request) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    link = request.match_info["link"]
    form = await request.post()
    try:
        seat = await med.check_pin(rt, link, str(form.get("pin", ""))[:20])
    except HotlineError as error:
        if error.code in ("pin_wrong", "seat_taken"):
            try:
                admission = await med.open_link(rt, link)
            except HotlineError as other:
                return await _refused(request, link, other)
            return await _pin_form(request, admission, link, error)
        return await _refused(request, link, error)
    response = web.HTTPSeeOther(f"/m/{link}/room")
    response.set_cookie(
        _cookie(link), seat, path=f"/m/{link}", httponly=True, samesite="Strict",
        secure=rt.settings.effective_public_url.startswith("https:"),
    )  # fmt: skip
    raise response


async def room_page(request: web.Request) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    link = request.match_info["link"]
    try:
        admission = await med.seated(rt, link, request.cookies.get(_cookie(link)))
    except HotlineError as error:
        if error.code == "pin_needed":
            raise web.HTTPSeeOther(f"/m/{link}") from None
        return await _refused(request, link, error)
    party = admission.party
    texts = {key: rt.text(f"room.{key}", party.locale, hotline=rt.settings.hotline_number)
             for key in TEXT_KEYS}  # fmt: skip
    return aiohttp_jinja2.render_template(
        "room.html",
        request,
        _context(
            rt, party.locale, link=link, name=party.name, texts=texts,
            retention_days=int(rt.settings.mediation.recording_retention_days),
        ),
        app_key=JINJA,
    )  # fmt: skip


async def room_api(request: web.Request) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    link, what = request.match_info["link"], request.match_info["what"]
    seat = request.cookies.get(_cookie(link)) or ""
    try:
        if what == "state":
            return json_response(await med.heartbeat(rt, link, seat))
        if what == "enter":
            body = await request.json() if request.can_read_body else {}
            consent = body.get("consent") if isinstance(body, dict) else None
            if not isinstance(consent, bool):
                raise InvalidInput("missing_field", field="consent")
            await med.enter_waiting_room(rt, link, seat, consent=consent)
        elif what == "rejoin":
            await med.rejoin(rt, link, seat)
        elif what == "leave":
            await med.leave(rt, link, seat)
        else:
            raise web.HTTPNotFound()
    except HotlineError as error:
        locale, _ = await _locale(request, link)
        message = rt.text(f"errors.{error.code}", locale, **error.params)
        return json_response(
            {"error": {"code": error.code, "message": message}},
            status=STATUS.get(error.code, error.status),
        )
    return json_response({"ok": True})


async def agreement(request: web.Request) -> web.StreamResponse:
    rt: Runtime = request.config_dict[RUNTIME]
    link = request.match_info["link"]
    try:
        party_id, nonce = med.read_link(rt, link, "doc")
        path = await agreement_for(rt, party_id)
        if path is None or not path.is_file():
            raise med.LinkRefused("link_invalid")
        async with rt.db.read() as conn:
            party = await mediation_party_by_id(conn, party_id)
        if party is None or party.nonce != nonce:
            raise med.LinkRefused("link_replaced")
    except HotlineError as error:
        return await _refused(request, link, error)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": f'inline; filename="mediation-{party.mediation_id}.pdf"',
        },
    )
