"""The mediator's room page (``/ui/mediations/<id>``): who waits, who is in, admit, mute,
remove, the recording indicator, the outcome and the end of the session; the mediator's
own camera in the room. Everything it does goes through the JSON API under
``/api/mediations`` with the session cookie and CSRF header (docs/mediation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from agent_ui.auth import current_session, page_actor
from callcenter.api.keys import RUNTIME
from callcenter.domain.ids import parse_id
from callcenter.runtime import Runtime
from callcenter.views import mediation_by_id, ticket_by_ref, visible_to

HERE = Path(__file__).parent
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("mediation_jinja", jinja2.Environment)
TEXTS = (
    "title", "start", "admit", "mute", "unmute", "remove", "end", "outcome", "agreement",
    "waiting", "in_room", "away", "removed", "declined", "consent_yes", "consent_no",
    "consent_none", "recording_on", "recording_off", "media_down", "ended", "join_error",
    "confirm_remove", "confirm_end", "recording_ready",
)  # fmt: skip


def setup(app: web.Application, rt: Runtime) -> None:
    aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/ui/mediations/{id}", mediation_page)


async def mediation_page(request: web.Request) -> web.StreamResponse:
    rt: Runtime = request.config_dict[RUNTIME]
    actor = await page_actor(request)
    if actor is None:
        raise web.HTTPFound("/ui/login?next=" + request.path)
    raw = request.match_info["id"]
    async with rt.db.read() as conn:
        mediation_id = parse_id(raw)
        m = await mediation_by_id(conn, mediation_id) if mediation_id else None
        ticket = await ticket_by_ref(conn, m.ticket_id) if m else None
    if m is None or ticket is None or not (visible_to(actor, ticket) or actor.id == m.mediator_id):
        raise web.HTTPNotFound(text=rt.text("errors.mediation_not_found", actor.locale))
    session = await current_session(request)
    locale = rt.catalog.locale_or_default(actor.locale)

    def t(key: str, **params: Any) -> str:
        return rt.text(f"ui.mediation.{key}", locale, **params)

    return aiohttp_jinja2.render_template(
        "mediation.html",
        request,
        {
            "t": t,
            "locale": locale,
            "mediation_id": m.id,
            "number": ticket.number,
            "csrf": session.csrf_token if session else "",
            "is_mediator": actor.id == m.mediator_id,
            "texts": {key: t(key) for key in TEXTS},
            "outcomes": [
                (value, rt.catalog.label("outcome", value, locale))
                for value in ("agreement", "partial", "none")
            ],
        },
        app_key=JINJA,
    )
