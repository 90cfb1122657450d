"""One middleware for the whole server: security headers, cookie flags, rate limits.

Every answer of every route (pages, API, webhooks, static files, errors) gets:

- ``Content-Security-Policy``: scripts, styles, fonts and images from this server
  only (no inline script or style, no ``eval``), connections to this server
  (and its websockets) plus ``security.connect_src``, no plugins, no ``<base>``,
  forms posting here only; ``frame-ancestors 'none'`` except on the paths a
  channel declares frameable (:data:`FRAMEABLE`: the web chat's own page, for
  its allowed origins);
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (ticket
  numbers in status links do not leak to other sites), ``X-Frame-Options`` to
  match ``frame-ancestors`` for old browsers, ``Cross-Origin-Opener-Policy``,
  a ``Permissions-Policy`` that allows the microphone and camera (softphone,
  mediation room) to this origin only, and ``Strict-Transport-Security`` when
  the public URL is https;
- ``Cache-Control: no-store`` on the API and the staff pages, which carry
  personal data, unless the handler chose its own;
- every cookie ``HttpOnly`` and ``SameSite=Lax`` (and ``Secure`` behind https),
  whatever the handler set.

Rate limits, per client address (:func:`client_ip`; behind a reverse proxy,
``security.behind_proxy`` takes the last ``X-Forwarded-For`` hop), counted in
the ``throttles`` table so that every server shares them:

- failed sign-ins and wrong API tokens: each refused sign-in, and each 401 to a
  request with a token, counts; once over the limit every sign-in (or every
  request with a token) from that address is 429 until the lock ends. Only
  failures count: an office of agents behind one address signing in at nine
  is not refused, and a valid token's 403 is no guess;
- web chat connections: each counts.

The paths are not the guard's to know: the part of the server that owns a route
declares it while it sets up its routes, as it declares a frameable page
(:data:`FRAMEABLE`): a private area (:data:`PRIVATE`, answered ``no-store``; the
API's ``/api/`` is the core's own) and a rate-limited route (:data:`LIMITED`, a
:class:`Limit`; the staff sign-in is the pages', the chat's socket the web chat's).
Per-account limits stay where the account is known (the staff sign-in's
lockout, the status page's per-ticket lock, the web chat's per-socket rate).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from callcenter.api.keys import RUNTIME
from callcenter.config import Settings
from callcenter.domain.errors import HotlineError, RateLimited
from callcenter.views import throttle_by_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """A rate limit per client address on one route.

    ``counts`` is ``"all"`` (every request counts, and the one over the limit is
    refused) or a set of statuses (those answers count, and once locked every request
    is refused until the lock ends). ``key`` names the counter in ``throttles``.
    """

    method: str
    path: str
    key: str
    limit: int
    window: timedelta
    counts: Any


# path -> origins that may frame it; a channel adds its own pages in setup_web
FRAMEABLE: web.AppKey[dict[str, list[str]]] = web.AppKey("frameable", dict)
# path prefixes of areas that carry personal data (no-store), and limited routes:
# each part adds its own as it sets up its routes
PRIVATE: web.AppKey[list[str]] = web.AppKey("private_prefixes", list)
LIMITED: web.AppKey[list[Limit]] = web.AppKey("limited_routes", list)
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_ip(request: web.Request) -> str:
    """The client's address; behind a reverse proxy (``security.behind_proxy``), the one
    the proxy appended to ``X-Forwarded-For`` (a client can forge earlier hops)."""
    settings: Settings = request.config_dict[RUNTIME].settings
    if settings.security.behind_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else "unknown"


def _source_list(origins: list[str]) -> str:
    if not origins:
        return "'none'"
    if "*" in origins:
        return "*"
    return " ".join(origins)


def content_security_policy(settings: Settings, frame_ancestors: list[str]) -> str:
    connect = ["'self'", *_websocket_origins(settings), *settings.security.connect_src]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{_tile_origin(settings)}",
            "media-src 'self' blob:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {_source_list(frame_ancestors)}",
        ]
    )


def _tile_origin(settings: Settings) -> str:
    """The configured map tile server's origin, whose images the maps show."""
    from urllib.parse import urlsplit

    url = settings.map.tile_url
    if not url:
        return ""
    parts = urlsplit(url)
    return f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _websocket_origins(settings: Settings) -> list[str]:
    """``'self'`` covers ws: and wss: in current browsers; older ones need it spelt out."""
    public = settings.effective_public_url
    scheme, _, rest = public.partition("://")
    return [("wss://" if scheme == "https" else "ws://") + rest.split("/")[0]]


class Guard:
    """The middleware and what it precomputes from the settings."""

    def __init__(
        self,
        settings: Settings,
        frameable: dict[str, list[str]],
        private: list[str],
        limited: list[Limit],
    ) -> None:
        self.settings = settings
        self.frameable = frameable
        self.private = private  # filled while the routes are set up: read per request
        self.routes = limited
        self.https = settings.effective_public_url.startswith("https://")
        self._policies: dict[str, str] = {}
        sec = settings.security
        window = timedelta(minutes=sec.window_minutes)
        # wrong tokens on any route: a valid token's 403 (a role that may not) is no
        # guess and does not count
        self.tokens = Limit("*", "*", "token-ip", sec.bad_tokens_per_ip, window, {401})

    def _rules(self, request: web.Request) -> list[tuple[str, int, timedelta, Any]]:
        found = [
            (f"{rule.key}:{client_ip(request)}", rule.limit, rule.window, rule.counts)
            for rule in self.routes
            if request.method == rule.method and request.path == rule.path
        ]
        if "Authorization" in request.headers:
            rule = self.tokens
            found.append((f"{rule.key}:{client_ip(request)}", rule.limit, rule.window, rule.counts))
        return found

    def _frame_origins(self, path: str) -> list[str] | None:
        return self.frameable.get(path)

    def _policy(self, path: str) -> tuple[str, list[str] | None]:
        origins = self._frame_origins(path)
        key = "|".join(origins) if origins is not None else ""
        if key not in self._policies:
            self._policies[key] = content_security_policy(self.settings, origins or [])
        return self._policies[key], origins

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rules = self._rules(request)
        try:
            await self._before(request, rules)
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's own answers (404, 405, 413...)
                response = exc
            if response.status in (401, 403):
                await self._count_failure(request, rules, response.status)
        except HotlineError as error:
            response = _error_response(request, error)
        self._decorate(request, response)
        if isinstance(response, web.HTTPException) and not response.prepared:
            raise response
        return response

    async def _before(self, request: web.Request, rules: list[Any]) -> None:
        from callcenter.actions.staff import check_rate, locked_until, minutes_left

        rt = request.config_dict[RUNTIME]
        for key, limit, window, counts in rules:
            if counts == "all":
                await check_rate(rt, key, limit=limit, window=window)
                continue
            async with rt.db.read() as conn:
                row = await throttle_by_key(conn, key)
            now = rt.clock.now()
            blocked = locked_until(row, now)
            if blocked is not None:
                raise RateLimited("rate_limited", minutes=minutes_left(blocked, now))

    async def _count_failure(self, request: web.Request, rules: list[Any], status: int) -> None:
        from callcenter.actions.staff import check_rate

        rt = request.config_dict[RUNTIME]
        for key, limit, window, counts in rules:
            if counts == "all" or status not in counts:
                continue
            try:  # locked once ``limit`` failures are counted
                await check_rate(rt, key, limit=limit - 1, window=window)
            except RateLimited:
                log.warning("%s: too many failures, locked for %s", key, window)

    def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        if response.prepared:  # a websocket or a streamed answer already sent its headers
            return
        headers = response.headers
        policy, origins = self._policy(request.path)
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if origins is None:
            headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault(
            "Permissions-Policy", "camera=(self), microphone=(self), geolocation=(), payment=()"
        )
        if self.https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        private = request.path.startswith(tuple(self.private)) and "/static/" not in request.path
        if private and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        for morsel in response.cookies.values():
            morsel["httponly"] = True
            morsel["samesite"] = morsel["samesite"] or "Lax"
            if self.https:
                morsel["secure"] = True


def _error_response(request: web.Request, error: HotlineError) -> web.Response:
    from callcenter.api.http import error_response

    return error_response(request, error)


def setup_guard(app: web.Application, settings: Settings) -> None:
    """Install the guard as the application's outermost middleware."""
    app[FRAMEABLE] = {}
    app[PRIVATE] = ["/api/"]
    app[LIMITED] = []
    guard = Guard(settings, app[FRAMEABLE], app[PRIVATE], app[LIMITED])
    app.middlewares.insert(0, guard.middleware)
