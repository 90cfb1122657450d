"""Server templates (Jinja2 through aiohttp-jinja2) and what every page is given.

Templates live in ``agent_ui/templates/``: ``base.html`` is the frame (header,
navigation, notices, the live indicator, the time-zone note), each page
extends it, and the parts that htmx swaps in are templates of their own under
``parts/``. Autoescaping is on for everything: whatever a citizen or a
colleague wrote reaches the page as text.

Every template gets ``t(key, **params)`` (the catalog in the viewer's
language), ``label(group, value)``, ``when(dt)`` (a time in the hotline's zone,
never the browser's), ``since(dt)``/``iso(dt)`` (for the counters the page
script updates every second), the signed-in ``user`` and the CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from agent_ui.auth import LANG_COOKIE, current_session
from callcenter.api.keys import RUNTIME
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("agent_ui_jinja", jinja2.Environment)

# the labels the page script needs for what it draws itself (the live indicator, counters)
SCRIPT_TEXTS = ("ui.live.", "ui.time.", "ui.form.", "ui.desk.")

ALL_STAFF = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})
# the header's links, and who may open each page
# the administrator's pages, behind the one "administration" entry of the header
ADMIN_NAV: tuple[tuple[str, str], ...] = (
    ("/ui/admin/staff", "ui.nav.admin"),
    ("/ui/admin/departments", "ui.nav.departments"),
    ("/ui/admin/categories", "ui.nav.categories"),
    ("/ui/admin/calendar", "ui.nav.calendar"),
    ("/ui/admin/sla", "ui.nav.sla"),
    ("/ui/admin/queues", "ui.nav.queues"),
    ("/ui/admin/texts", "ui.nav.texts"),
    ("/ui/admin/audit", "ui.nav.audit"),
)
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("/ui/desk", "ui.nav.desk", frozenset({Role.AGENT, Role.SUPERVISOR})),
    ("/ui/dispatch", "ui.nav.dispatch", frozenset({Role.AGENT, Role.SUPERVISOR})),
    ("/ui/approvals", "ui.nav.approvals", frozenset({Role.SUPERVISOR, Role.ADMIN})),
    ("/ui/tickets", "ui.nav.search", ALL_STAFF),
    ("/ui/portal", "ui.nav.portal", frozenset({Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN})),
    (
        "/ui/map",
        "ui.nav.map",
        frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT}),
    ),
    ("/ui/wallboard", "ui.nav.wallboard", frozenset({Role.SUPERVISOR, Role.ADMIN})),
    ("/ui/admin/", "ui.nav.admin_home", frozenset({Role.ADMIN})),
    ("/ui/account", "ui.nav.account", ALL_STAFF),
)


def setup_templates(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def ui_locale(request: web.Request, actor: Actor | None) -> str:
    """The language of a page: asked for in the URL, chosen by the switch, the user's
    own, or the browser's."""
    rt = request.config_dict[RUNTIME]
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen:
        return rt.catalog.normalize(chosen)
    if actor is not None:
        return rt.catalog.locale_or_default(actor.locale)
    return rt.catalog.negotiate(request.headers.get("Accept-Language"))


def utc_offset(rt: Runtime, now: datetime) -> str:
    offset = rt.local(now).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class Texts:
    """The helpers every template gets, bound to one viewer's language."""

    def __init__(self, rt: Runtime, locale: str) -> None:
        self.rt = rt
        self.locale = locale

    def t(self, key: str, **params: Any) -> str:
        return self.rt.text(key, self.locale, **params)

    def label(self, group: str, value: Any) -> str:
        return self.rt.catalog.label(group, None if value is None else str(value), self.locale)

    def when(self, value: datetime | None, *, date_only: bool = False) -> str:
        return self.rt.local_text(value, with_time=not date_only) if value else ""

    @staticmethod
    def iso(value: datetime | None) -> str:
        return value.isoformat() if value else ""

    def duration(self, seconds: float | None) -> str:
        s = max(0, round(seconds or 0))
        if s < 60:
            return self.t("ui.time.seconds", n=s)
        if s < 3600:
            return self.t("ui.time.minutes", n=s // 60, s=s % 60)
        return self.t("ui.time.hours", n=s // 3600, m=(s % 3600) // 60)

    def pct(self, ratio: Any) -> str:
        value = ratio.get("value") if isinstance(ratio, Mapping) else ratio
        if value is None:
            return self.t("ui.wall.no_data")
        return f"{float(value) * 100:.1f}%"

    def script_texts(self) -> dict[str, str]:
        texts = self.rt.catalog.texts[self.rt.catalog.locale_or_default(self.locale)]
        return {k: v for k, v in texts.items() if k.startswith(SCRIPT_TEXTS)}


def json_island(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block (never executed)."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


async def page_context(
    request: web.Request, actor: Actor | None, locale: str | None = None
) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = locale or ui_locale(request, actor)
    texts = Texts(rt, locale)
    session = await current_session(request) if actor is not None else None
    csrf = session.csrf_token if session else ""
    now = rt.clock.now()
    zone = rt.settings.timezone
    boot = {
        "locale": locale,
        "csrf": csrf,
        "zone": zone,
        "now": now.isoformat(),  # counters run on the server's clock, not the PC's
        "strings": texts.script_texts(),
        "user": ({"id": actor.id, "name": actor.name, "role": actor.role.value} if actor else None),
    }
    return {
        "rt": rt,
        "locale": locale,
        "t": texts.t,
        "label": texts.label,
        "when": texts.when,
        "iso": texts.iso,
        "duration": texts.duration,
        "pct": texts.pct,
        "now": now,
        "user": actor,
        "role": actor.role.value if actor else "",
        "csrf": csrf,
        "hotline": rt.settings.hotline_number,
        "zone": zone,
        "zone_note": texts.t("ui.zone_note", zone=zone, offset=utc_offset(rt, now)),
        "nav": [(href, key) for href, key, roles in NAV if actor and actor.role in roles],
        "path": request.path,
        "admin_nav": ADMIN_NAV if actor and actor.role is Role.ADMIN else (),
        "boot_json": json_island(boot),
        "json_island": json_island,
    }


async def render(
    request: web.Request,
    template: str,
    actor: Actor | None,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    locale: str | None = None,
) -> web.Response:
    """A page or a part of one, rendered for ``actor``."""
    values = await page_context(request, actor, locale)
    values.update(context or {})
    return aiohttp_jinja2.render_template(template, request, values, app_key=JINJA, status=status)


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"
