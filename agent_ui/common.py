"""What every page handler shares: who may open a page, forms with CSRF, errors shown
in the viewer's language, and the notices that htmx puts in the page header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from agent_ui.auth import csrf_ok, current_session, page_actor
from agent_ui.render import is_htmx, render, ui_locale
from callcenter.api.http import error_body
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput
from callcenter.domain.ids import require_id
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime

STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})
DESK = frozenset({Role.AGENT, Role.SUPERVISOR})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
MAX_FORM = 256 * 1024  # a form's text fields; files go through their own route


class PageDenied(Exception):
    """Raised by :func:`require` when a page may not be shown; the handler wrapper answers."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


def login_redirect(request: web.Request) -> web.StreamResponse:
    target = "/ui/login?next=" + quote(request.path_qs, safe="")
    if is_htmx(request):
        # htmx follows HX-Redirect with a full page load (a 302 would be swapped in)
        return web.Response(status=200, headers={"HX-Redirect": "/ui/login"})
    return web.Response(status=302, headers={"Location": target})


async def error_page(request: web.Request, actor: Actor | None, status: int) -> web.Response:
    return await render(
        request, "error.html", actor, {"page": "error", "status": status}, status=status
    )


async def require(request: web.Request, roles: frozenset[Role]) -> Actor:
    """The signed-in user if their role may open this page; otherwise the answer is a
    redirect to the sign-in page (not signed in) or a 403 page."""
    actor = await page_actor(request)
    if actor is None:
        raise PageDenied(login_redirect(request))
    if actor.role not in roles:
        raise PageDenied(await error_page(request, actor, 403))
    return actor


async def not_found(request: web.Request, actor: Actor) -> PageDenied:
    return PageDenied(await error_page(request, actor, 404))


async def require_form(
    request: web.Request, roles: frozenset[Role]
) -> tuple[Actor, MultiDictProxy[Any]]:
    """For a state-changing request from a page: the user, their role, the session's CSRF
    token (header from htmx, or the form's ``csrf`` field), and the form."""
    actor = await require(request, roles)
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise InvalidInput("body_too_large", limit=MAX_FORM)
    form = await request.post()
    session = await current_session(request)
    if session is None or not csrf_ok(request, session, str(form.get("csrf", ""))):
        raise Forbidden("csrf_failed")
    return actor, form


def error_text(request: web.Request, error: HotlineError) -> str:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, None)
    return str(error_body(rt, error, locale)["error"]["message"])


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_handler(handler: Handler) -> Handler:
    """Turns :class:`PageDenied` into its answer, and a core error in a form post into a
    notice in the viewer's language (with the error's status)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageDenied as denied:
            return denied.response
        except HotlineError as error:
            actor = await page_actor(request)
            message = error_text(request, error)
            if is_htmx(request):
                return await notice(request, actor, message, "error", status=error.status)
            return await render(
                request,
                "error.html",
                actor,
                {"page": "error", "status": error.status, "message": message},
                status=error.status,
            )

    wrapped.__name__ = handler.__name__
    return wrapped


async def notice(
    request: web.Request,
    actor: Actor | None,
    message: str,
    kind: str = "ok",
    *,
    status: int = 200,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    """Only the header's notice, swapped in out of band."""
    return await render(
        request,
        "parts/notice.html",
        actor,
        {"notice": message, "notice_kind": kind, "oob": True, **(extra or {})},
        status=status,
    )


def form_text(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def form_int(form: Mapping[str, Any], name: str) -> int | None:
    value = form_text(form, name)
    if value is None:
        return None
    return require_id(value, field=name)
