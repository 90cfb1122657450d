"""The staff's browser pages: sign-in, agent desk, department portal, ticket page and
supervisor wallboard, served by the hotline's own aiohttp server (see ``docs/ui.md``).

Mounted by the composition root because the ``ui`` setting names
``agent_ui.app:setup``. Pages are Jinja2 templates rendered on the server in the
viewer's language, with times in the hotline's zone; their live parts are htmx
fragments that the staff websocket's events ask to be fetched again. Every script,
style and library is served from ``static/`` (libraries from ``static/vendor/``,
fetched by the setup from the npm registry): no CDN, no web font, no inline script.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import WSCloseCode, web

from agent_ui import (
    admin,
    admin_config,
    desk,
    maps,
    mediation,
    portal,
    queues,
    search,
    tickets,
    wallboard,
)
from agent_ui.admin import second_step_page
from agent_ui.auth import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SECOND_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    current_session,
    new_login_token,
    origin_allowed,
    page_actor,
    session_actor,
    set_cookie,
)
from agent_ui.common import error_text
from agent_ui.render import render, setup_templates, ui_locale
from agent_ui.vendor import VENDOR_DIR, missing
from agent_ui.ws import StaffHub
from callcenter.actions.staff import (
    SecondStep,
    Session,
    complete_sign_in,
    log_in,
    log_out,
    pending_step,
    set_locale,
)
from callcenter.api.guard import LIMITED, PRIVATE, Limit
from callcenter.api.http import (
    AUTHENTICATORS,
    Authenticator,
    bearer_actor,
    error_body,
    json_response,
)
from callcenter.api.keys import RUNTIME, SITE_PAGES
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput, Unauthenticated
from callcenter.domain.workflow import Role
from callcenter.ports import Page
from callcenter.runtime import Runtime

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
STRINGS = HERE / "strings"
HUB = web.AppKey("staff_hub", StaffHub)
HOME = {
    Role.AGENT: "/ui/desk",
    Role.SUPERVISOR: "/ui/wallboard",
    Role.ADMIN: "/ui/wallboard",
    Role.DEPARTMENT: "/ui/portal",
}


def setup(app: web.Application, rt: Runtime) -> None:
    """Add the pages, static files and the staff websocket to the server."""
    rt.catalog.load_dir(STRINGS, prefix="ui")
    setup_templates(app)
    absent = missing()
    if absent:
        log.error(
            "browser libraries missing from %s (%s): run `python -m agent_ui.vendor`",
            VENDOR_DIR,
            ", ".join(p.name for p in absent),
        )
    authenticators: list[Authenticator] = [bearer_actor, session_actor]
    app[AUTHENTICATORS] = authenticators
    app[HUB] = StaffHub(rt)

    async def hub_context(app: web.Application) -> Any:
        await app[HUB].start()
        yield
        await app[HUB].stop()

    app.cleanup_ctx.append(hub_context)
    app.on_shutdown.append(close_staff_sockets)
    app[SITE_PAGES].append(Page("/ui/", "site.staff"))  # on the server's front page
    # security headers and cookie flags: the server-wide guard (callcenter/api/guard.py);
    # the staff pages carry personal data (no-store), and failed sign-ins lock an address
    security = rt.settings.security
    if PRIVATE in app:
        app[PRIVATE].append("/ui/")
    if LIMITED in app:
        app[LIMITED].append(
            Limit(
                "POST",
                "/ui/login",
                "login-ip",
                security.failed_logins_per_ip,
                timedelta(minutes=security.window_minutes),
                frozenset({401, 403}),
            )
        )
    r = app.router
    r.add_get("/ui", home)
    r.add_get("/ui/", home)
    r.add_get("/ui/login", login_page)
    r.add_post("/ui/login", login_submit)
    r.add_post("/ui/login/code", code_submit)
    r.add_post("/ui/logout", logout)
    r.add_post("/ui/lang", switch_language)
    r.add_get("/favicon.ico", favicon)
    # the desk
    r.add_get("/ui/desk", desk.desk_page)
    r.add_get("/ui/desk/side", desk.desk_side)
    r.add_post("/ui/desk/presence", desk.post_presence)
    r.add_post("/ui/desk/offers/{offer}/{how}", desk.post_offer)
    r.add_post("/ui/desk/suggest", desk.suggest)
    r.add_get("/ui/desk/conversations/{conversation}", desk.desk_conversation)
    r.add_get("/ui/desk/conversations/{conversation}/messages", desk.desk_messages)
    r.add_post("/ui/desk/conversations/{conversation}/messages", desk.post_reply)
    r.add_get("/ui/desk/conversations/{conversation}/old", desk.desk_old_conversation)
    r.add_get("/ui/desk/conversations/{conversation}/forms/{kind}", desk.ticket_form)
    r.add_post("/ui/desk/conversations/{conversation}/ticket", desk.post_ticket)
    r.add_post("/ui/desk/conversations/{conversation}/answer", desk.post_answer)
    r.add_post("/ui/desk/conversations/{conversation}/transfer", desk.post_transfer)
    r.add_post("/ui/desk/conversations/{conversation}/pick", desk.post_pick)
    r.add_post("/ui/desk/conversations/{conversation}/take_over", desk.post_take_over)
    r.add_post("/ui/desk/conversations/{conversation}/end", desk.post_end)
    r.add_get("/ui/desk/citizens/{citizen}/history", desk.desk_history)
    # the department portal, tickets, the wallboard
    r.add_get("/ui/portal", portal.portal_page)
    r.add_get("/ui/portal/inbox", portal.portal_inbox)
    r.add_get("/ui/tickets", search.search_page)
    r.add_get("/ui/tickets/results", search.search_results)
    r.add_get("/ui/tickets.csv", search.search_csv)
    r.add_get("/ui/tickets/{ticket}", tickets.ticket_page)
    r.add_get("/ui/tickets/{ticket}/card", tickets.ticket_card)
    r.add_post("/ui/tickets/{ticket}/contact", tickets.ticket_contact_full)
    r.add_post("/ui/tickets/{ticket}/steps/{step}", tickets.ticket_step)
    r.add_get("/ui/tickets/{ticket}/timeline", tickets.ticket_timeline)
    r.add_post("/ui/tickets/{ticket}/notes", tickets.ticket_note)
    r.add_post("/ui/tickets/{ticket}/attachments", tickets.ticket_upload)
    r.add_get("/ui/tickets/{ticket}/attachments/{file}", tickets.ticket_file)
    r.add_get("/ui/dispatch", queues.dispatch_page)
    r.add_get("/ui/dispatch/list", queues.dispatch_list)
    r.add_post("/ui/dispatch/selected", queues.dispatch_selected)
    r.add_get("/ui/approvals", queues.approvals_page)
    r.add_get("/ui/approvals/list", queues.approvals_list)
    r.add_get("/ui/map", maps.map_page)
    r.add_get("/ui/map/grid.json", maps.grid_layer)
    r.add_get("/ui/map/tickets.json", maps.ticket_layer)
    r.add_get("/ui/wallboard", wallboard.wallboard_page)
    r.add_get("/ui/wallboard/live", wallboard.wallboard_live)
    r.add_get("/ui/wallboard/kpis", wallboard.wallboard_kpis)
    r.add_get("/ui/wallboard/trends", wallboard.wallboard_trends)
    r.add_get("/ui/ws", staff_socket)
    r.add_static("/ui/static/", STATIC, append_version=False)
    mediation.setup(app, rt)
    admin.setup(app)
    admin_config.setup(app)


async def close_staff_sockets(app: web.Application) -> None:
    """Open pages are told the server is going (GOING_AWAY) before it waits for its
    handlers, so a shutdown never waits on a websocket; the pages reconnect."""
    for socket in list(app[HUB].sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


# --- sign-in, language, home -------------------------------------------------------------


def _safe_next(value: str | None) -> str | None:
    """Only our own pages: never an absolute URL (open redirect)."""
    if not value or not value.startswith("/ui/") or value.startswith("//"):
        return None
    parsed = urlparse(value)
    return value if not parsed.scheme and not parsed.netloc else None


async def home(request: web.Request) -> web.StreamResponse:
    actor = await page_actor(request)
    if actor is None:
        raise web.HTTPFound("/ui/login")
    raise web.HTTPFound(HOME.get(actor.role, "/ui/login"))


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


async def login_page(
    request: web.Request, *, error: str = "", status: int = 200, username: str = ""
) -> web.Response:
    actor = await page_actor(request)
    token = request.cookies.get(LOGIN_COOKIE) or new_login_token()
    response = await render(
        request,
        "login.html",
        None,
        {
            "page": "login",
            "login_csrf": token,
            "error": error,
            "username": username,
            "next": _safe_next(request.query.get("next")) or "",
            "next_url": request.path_qs,
            "signed_in_as": actor.name if actor else None,
        },
        status=status,
    )
    set_cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    form = await request.post()
    token = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("csrf", ""))
    locale = ui_locale(request, None)
    username = str(form.get("username", ""))[:64]
    if not token or sent != token:
        message = rt.text("errors.csrf_failed", locale)
        return await login_page(request, error=message, status=403, username=username)
    try:
        session = await log_in(
            rt,
            username,
            str(form.get("password", ""))[:256],
            user_agent=request.headers.get("User-Agent"),
        )
    except HotlineError as error:
        message = error_body(rt, error, locale)["error"]["message"]
        return await login_page(request, error=message, status=error.status, username=username)
    if isinstance(session, SecondStep):
        return await second_step_page(request, session, next_url=str(form.get("next", "")))
    return signed_in(request, session, str(form.get("next", "")))


def signed_in(request: web.Request, session: Session, next_url: str) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    target = _safe_next(next_url) or HOME.get(session.actor.role, "/ui/")
    response = web.Response(status=303, headers={"Location": target})
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        session.token,
        max_age=int(rt.settings.staff.session_hours * 3600),
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    response.del_cookie(SECOND_COOKIE, path="/")
    return response


async def code_submit(request: web.Request) -> web.StreamResponse:
    """The second step's form. Its cookie is the credential of a right password; a
    cross-site post cannot know it (SameSite=Lax keeps it off such posts too)."""
    rt = request.config_dict[RUNTIME]
    form = await request.post()
    token = request.cookies.get(SECOND_COOKIE, "")
    next_url = str(form.get("next", ""))
    try:
        session = await complete_sign_in(
            rt, token, str(form.get("code", ""))[:20], user_agent=request.headers.get("User-Agent")
        )
    except HotlineError as error:
        message = error_text(request, error)
        step = await pending_step(rt, token)
        if step is None:
            response = await login_page(request, error=message, status=error.status)
            response.del_cookie(SECOND_COOKIE, path="/")
            return response
        return await second_step_page(
            request, step, next_url=next_url, error=message, status=error.status
        )
    return signed_in(request, session, next_url)


async def logout(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    session = await current_session(request)
    if session is not None:
        form = await request.post()
        if not csrf_ok(request, session, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text=rt.text("errors.csrf_failed", ui_locale(request, None)))
        await log_out(rt, session.token)
    response = web.Response(status=303, headers={"Location": "/ui/login"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def switch_language(request: web.Request) -> web.StreamResponse:
    """The language switch: a cookie for everyone, and the user's own language when signed in.
    A form post (the pages' switch) is answered with the page again; JSON with JSON."""
    rt = request.config_dict[RUNTIME]
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    data: Any
    if is_form:
        data = dict(await request.post())
    else:
        try:
            data = await request.json()
        except ValueError:
            data = {}
    locale = data.get("locale") if isinstance(data, dict) else None
    try:
        if locale not in ("zh-CN", "en"):
            raise InvalidInput("invalid_choice", field="locale", choices="zh-CN, en")
        session = await current_session(request)
        if session is not None:
            if not csrf_ok(request, session, str(data.get("csrf", ""))):
                raise Forbidden("csrf_failed")
            await set_locale(rt, locale, actor=session.actor)
    except HotlineError as error:
        body = error_body(rt, error, ui_locale(request, None))
        return json_response(body, status=error.status)
    response: web.StreamResponse
    if is_form:
        target = _safe_next(str(data.get("next", ""))) or "/ui/"
        response = web.Response(status=303, headers={"Location": target})
    else:
        response = json_response({"locale": locale})
    set_cookie(response, request, LANG_COOKIE, locale, max_age=365 * 86400, http_only=False)
    return response


async def staff_socket(request: web.Request) -> web.StreamResponse:
    actor = await bearer_actor(request)
    if actor is None:
        if not origin_allowed(request):
            raise Forbidden("origin_not_allowed")
        session = await current_session(request)
        actor = session.actor if session else None
    if actor is None:
        raise Unauthenticated()
    return await request.app[HUB].handle(request, actor)
