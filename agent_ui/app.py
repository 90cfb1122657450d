"""The staff's browser pages: sign-in, agent desk, department portal, ticket page and
supervisor wallboard, served by the hotline's own aiohttp server (see ``docs/ui.md``).

Mounted by the composition root because the ``ui`` setting names
``agent_ui.app:setup``. Pages are HTML shells with ``data-i18n`` labels and a
small script each; everything they show comes from the JSON API under
``/api`` (with the session cookie and the CSRF header) and the staff
websocket. Every script, style and chart library is under ``static/``: no
CDN, no web font.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from aiohttp import web

from agent_ui import mediation
from agent_ui.auth import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    current_session,
    new_login_token,
    origin_allowed,
    page_actor,
    session_actor,
    set_cookie,
)
from agent_ui.ws import StaffHub
from callcenter.actions.staff import log_in, log_out, set_locale
from callcenter.api.http import (
    AUTHENTICATORS,
    Authenticator,
    bearer_actor,
    error_body,
    json_response,
)
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput, Unauthenticated
from callcenter.domain.ids import parse_id
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.views import ticket_by_ref, visible_to

HERE = Path(__file__).parent
PAGES = HERE / "pages"
STATIC = HERE / "static"
STRINGS = HERE / "strings"
HUB = web.AppKey("staff_hub", StaffHub)
LABEL_GROUPS = (
    "ui.",
    "state.",
    "step.",
    "light.",
    "presence.",
    "ticket_type.",
    "priority.",
    "queue.",
    "wrap_up.",
    "role.",
    "department_kind.",
)
HOME = {
    Role.AGENT: "/ui/desk",
    Role.SUPERVISOR: "/ui/wallboard",
    Role.ADMIN: "/ui/wallboard",
    Role.DEPARTMENT: "/ui/portal",
}
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "desk": frozenset({Role.AGENT, Role.SUPERVISOR}),
    "portal": frozenset({Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN}),
    "ticket": frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT}),
    "wallboard": frozenset({Role.SUPERVISOR, Role.ADMIN}),
}


def setup(app: web.Application, rt: Runtime) -> None:
    """Add the pages, static files and the staff websocket to the server."""
    rt.catalog.load_dir(STRINGS, prefix="ui")
    authenticators: list[Authenticator] = [bearer_actor, session_actor]
    app[AUTHENTICATORS] = authenticators
    app[HUB] = StaffHub(rt)

    async def hub_context(app: web.Application) -> Any:
        await app[HUB].start()
        yield
        await app[HUB].stop()

    app.cleanup_ctx.append(hub_context)
    # security headers and cookie flags: the server-wide guard (callcenter/api/guard.py)
    r = app.router
    r.add_get("/ui", home)
    r.add_get("/ui/", home)
    r.add_get("/ui/login", login_page)
    r.add_post("/ui/login", login_submit)
    r.add_post("/ui/logout", logout)
    r.add_post("/ui/lang", switch_language)
    r.add_get("/ui/i18n/{locale}.json", strings_json)
    r.add_get("/ui/desk", page("desk"))
    r.add_get("/ui/portal", page("portal"))
    r.add_get("/ui/tickets/{ticket}", ticket_page)
    r.add_get("/ui/wallboard", page("wallboard"))
    r.add_get("/ui/ws", staff_socket)
    r.add_static("/ui/static/", STATIC, append_version=False)
    mediation.setup(app, rt)


# --- texts --------------------------------------------------------------------------------


def ui_locale(request: web.Request, actor: Actor | None) -> str:
    rt = request.config_dict[RUNTIME]
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen:
        return rt.catalog.normalize(chosen)
    if actor is not None:
        return rt.catalog.locale_or_default(actor.locale)
    return rt.catalog.negotiate(request.headers.get("Accept-Language"))


def strings(rt: Runtime, locale: str) -> dict[str, str]:
    texts = rt.catalog.texts[rt.catalog.locale_or_default(locale)]
    return {k: v for k, v in texts.items() if k.startswith(LABEL_GROUPS)}


async def strings_json(request: web.Request) -> web.Response:
    rt = request.config_dict[RUNTIME]
    locale = request.match_info["locale"]
    if locale not in ("zh-CN", "en"):
        raise web.HTTPNotFound()
    return json_response(strings(rt, locale))


_INCLUDE = re.compile(r"\{\{> (_\w+)\}\}\n?")


@functools.cache
def _page_source(name: str) -> str:
    """A page, with its shared parts (``{{> _head}}``, ``{{> _top}}``) put in."""
    text = (PAGES / f"{name}.html").read_text("utf-8")
    return _INCLUDE.sub(lambda m: _page_source(m.group(1)), text)


def _json_script(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(
    request: web.Request,
    name: str,
    actor: Actor | None,
    *,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    rt = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    boot: dict[str, Any] = {
        "locale": locale,
        "strings": strings(rt, locale),
        "hotline": rt.settings.hotline_number,
        "user": (
            {
                "id": actor.id,
                "name": actor.name,
                "role": actor.role.value,
                "department_id": actor.department_id,
            }
            if actor
            else None
        ),
        **(extra or {}),
    }
    title = rt.text(f"ui.title.{name}", locale, hotline=rt.settings.hotline_number)
    html = (
        _page_source(name)
        .replace("{{lang}}", locale)
        .replace("{{title}}", _escape(title))
        .replace("{{boot}}", _json_script(boot))
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


# --- pages ---------------------------------------------------------------------------------


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound("/ui/login?next=" + quote(request.path_qs, safe=""))


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


async def _forbidden(request: web.Request, actor: Actor, status: int = 403) -> web.Response:
    return render(request, "error", actor, status=status, extra={"status": status})


async def _page_boot(request: web.Request, actor: Actor) -> dict[str, Any]:
    session = await current_session(request)
    return {"csrf": session.csrf_token if session else ""}


def page(name: str) -> Any:
    async def view(request: web.Request) -> web.StreamResponse:
        actor = await page_actor(request)
        if actor is None:
            raise _login_redirect(request)
        if actor.role not in PAGE_ROLES[name]:
            return await _forbidden(request, actor)
        extra = await _page_boot(request, actor)
        if name == "portal":
            dept = actor.department_id
            raw = request.query.get("department")
            if actor.role is not Role.DEPARTMENT:
                rt = request.config_dict[RUNTIME]
                dept = parse_id(raw) if raw else None
                if dept is not None and dept not in rt.directory.by_id:
                    return await _forbidden(request, actor, 404)
            elif raw and raw != str(dept):
                return await _forbidden(request, actor, 404)
            extra["department_id"] = dept
        return render(request, name, actor, extra=extra)

    view.__name__ = f"{name}_page"
    return view


async def ticket_page(request: web.Request) -> web.StreamResponse:
    actor = await page_actor(request)
    if actor is None:
        raise _login_redirect(request)
    if actor.role not in PAGE_ROLES["ticket"]:
        return await _forbidden(request, actor)
    ref = request.match_info["ticket"]
    rt = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        row = await ticket_by_ref(conn, ref)
    if row is None or not visible_to(actor, row):
        return await _forbidden(request, actor, 404)
    extra = await _page_boot(request, actor)
    extra["ticket"] = row.number
    return render(request, "ticket", actor, extra=extra)


async def login_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    actor = await page_actor(request)
    token = request.cookies.get(LOGIN_COOKIE) or new_login_token()
    response = render(
        request,
        "login",
        None,
        status=status,
        extra={
            "login_csrf": token,
            "error": error,
            "next": _safe_next(request.query.get("next")) or "",
            "signed_in_as": actor.name if actor else None,
        },
    )
    set_cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    form = await request.post()
    token = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("csrf", ""))
    locale = ui_locale(request, None)
    if not token or sent != token:
        message = rt.text("errors.csrf_failed", locale)
        return await login_page(request, error=message, status=403)
    try:
        session = await log_in(
            rt,
            str(form.get("username", ""))[:64],
            str(form.get("password", ""))[:256],
            user_agent=request.headers.get("User-Agent"),
        )
    except HotlineError as error:
        message = error_body(rt, error, locale)["error"]["message"]
        return await login_page(request, error=message, status=error.status)
    target = _safe_next(str(form.get("next", ""))) or HOME.get(session.actor.role, "/ui/")
    response = web.Response(status=303, headers={"Location": target})
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        session.token,
        max_age=int(rt.settings.staff.session_hours * 3600),
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


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
    """The language switch: a cookie for everyone, and the user's own language when signed in."""
    rt = request.config_dict[RUNTIME]
    try:
        data = await request.json()
    except ValueError:
        data = {}
    locale = data.get("locale") if isinstance(data, dict) else None
    if locale not in ("zh-CN", "en"):
        raise InvalidInput("invalid_choice", field="locale", choices="zh-CN, en")
    session = await current_session(request)
    if session is not None:
        if not csrf_ok(request, session):
            raise Forbidden("csrf_failed")
        await set_locale(rt, locale, actor=session.actor)
    response = json_response({"locale": locale, "strings": strings(rt, locale)})
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
