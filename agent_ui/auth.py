"""Cookies, sessions and CSRF for the staff's browser.

- The session cookie (``hotline_session``) is HttpOnly, SameSite=Lax, and
  Secure when the public URL is https. It holds a random value; the server
  keeps its hash (:mod:`callcenter.actions.staff`).
- Every state-changing request authenticated by that cookie, pages and JSON
  API alike, must carry the session's CSRF token in ``X-CSRF-Token`` (or a
  ``csrf`` form field for plain forms). A request authenticated by a bearer
  token needs none: a browser never adds that header on its own.
- The sign-in form itself is protected by a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web

from callcenter.actions.staff import Session, find_session, touch_session
from callcenter.api.http import ACTOR_KEY
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import Forbidden
from callcenter.domain.workflow import Actor

SESSION_COOKIE = "hotline_session"
LOGIN_COOKIE = "hotline_login_csrf"
SECOND_COOKIE = "hotline_second_step"  # a right password, waiting for its code
LANG_COOKIE = "hotline_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("session", object)  # type: ignore[arg-type]


def secure_cookies(request: web.Request) -> bool:
    return request.config_dict[RUNTIME].settings.effective_public_url.startswith("https://")


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="Lax",
        secure=secure_cookies(request),
    )


async def current_session(request: web.Request) -> Session | None:
    """The live session of the request's cookie (cached on the request)."""
    if SESSION_KEY in request:
        return request[SESSION_KEY]
    session: Session | None = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        rt = request.config_dict[RUNTIME]
        found = await find_session(rt, token)
        if found is not None:
            session, row = found
            await touch_session(rt, token, row.seen_at)
    request[SESSION_KEY] = session
    return session


def csrf_ok(request: web.Request, session: Session, form_value: str | None = None) -> bool:
    sent = request.headers.get("X-CSRF-Token") or form_value or ""
    return hmac.compare_digest(sent.encode(), session.csrf_token.encode())


async def session_actor(request: web.Request) -> Actor | None:
    """An authenticator for the JSON API (``AUTHENTICATORS``): the cookie's user, with CSRF
    checked on every state-changing method."""
    session = await current_session(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(request, session):
        raise Forbidden("csrf_failed")
    return session.actor


async def page_actor(request: web.Request) -> Actor | None:
    """The signed-in user for a page (bearer tokens are not used by pages)."""
    session = await current_session(request)
    actor = session.actor if session else None
    request[ACTOR_KEY] = actor
    return actor


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def origin_allowed(request: web.Request) -> bool:
    """A cookie-authenticated websocket must come from our own pages (no cross-site
    websocket hijacking)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    rt = request.config_dict[RUNTIME]
    allowed = {rt.settings.effective_public_url.rstrip("/")}
    host = request.headers.get("Host")
    if host:
        allowed |= {f"http://{host}", f"https://{host}"}
    return origin.rstrip("/") in allowed


def client_ip(request: web.Request) -> str:
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else "unknown"
