"""The ticket page: facts, the steps this user may take (each a small form that htmx
posts), and the history as a timeline. A step that fails shows why beside its form,
with what was typed still there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from agent_ui.auth import csrf_ok, current_session
from agent_ui.common import (
    STAFF,
    error_text,
    form_text,
    not_found,
    page_handler,
    require,
    require_form,
)
from agent_ui.portal import handling_departments
from agent_ui.render import render, ui_locale
from agent_ui.timeline import timeline
from callcenter.actions.casework import MAX_FILE, Upload, add_note, attach_file
from callcenter.actions.privacy import view_ticket_contact
from callcenter.actions.tickets import take_step
from callcenter.api.http import error_body
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput, NotFound
from callcenter.domain.ids import parse_id, require_id
from callcenter.domain.privacy import mask_phone
from callcenter.domain.workflow import Actor, Role, Step
from callcenter.runtime import Runtime
from callcenter.views import (
    Contact,
    TicketFilter,
    TicketView,
    list_tickets,
    ticket_by_ref,
    ticket_casework,
    ticket_contact,
    ticket_history,
    ticket_mediations,
    ticket_view,
    visible_to,
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # textarea, number, department, ticket
    label: str
    required: bool = True
    limit: int = 4000


REASON = Field("reason", "textarea", "ui.ticket.reason")
NOTE = Field("note", "textarea", "ui.ticket.note", required=False)

# the fields each step's form asks for, in the order shown
STEP_FIELDS: dict[Step, tuple[Field, ...]] = {
    Step.DISPATCH: (Field("department_id", "department", "ui.ticket.department"),),
    Step.SIGN_FOR: (),
    Step.REPLY: (Field("text", "textarea", "ui.ticket.text"),),
    Step.REQUEST_EXTENSION: (Field("days", "number", "ui.ticket.days"), REASON),
    Step.APPROVE_EXTENSION: (),
    Step.DENY_EXTENSION: (REASON,),
    Step.RETURN: (REASON,),
    Step.CLOSE: (),
    Step.DIRECT_ANSWER: (Field("text", "textarea", "ui.ticket.answer"),),
    Step.URGE: (NOTE,),
    Step.SUPERVISE: (NOTE,),
    Step.REOPEN: (REASON,),
    Step.MERGE: (Field("into_ticket_id", "ticket", "ui.ticket.merge_into", limit=20),),
    Step.CANCEL: (REASON,),
}
EXTENSION_DECISIONS = (Step.APPROVE_EXTENSION, Step.DENY_EXTENSION)


def steps_shown(view: TicketView) -> list[Step]:
    """The steps worth a form: the workflow's allowed steps, less those a pending (or
    absent) extension request rules out, in the order of ``STEP_FIELDS`` (the usual
    work first: a department sees reply before extension and return)."""
    pending = view["extension_request"] is not None
    out = []
    for name in view["allowed_steps"]:
        step = Step(name)
        if step is Step.REQUEST_EXTENSION and pending:
            continue
        if step in EXTENSION_DECISIONS and not pending:
            continue
        out.append(step)
    order = list(STEP_FIELDS)
    return sorted(out, key=order.index)


async def merge_candidates(
    conn: Any, rt: Runtime, row: Any, actor: Actor, locale: str
) -> list[dict[str, str]]:
    """Open tickets this one may repeat: the same citizen's, then those of its category in
    the same grid cell (or street), newest first, at most ten."""
    category = rt.directory.category_by_id.get(row.category_id or -1)
    wanted = []
    if row.citizen_id is not None:
        wanted.append(TicketFilter(citizen_id=row.citizen_id, open_only=True))
    place: dict[str, Any] = (
        {"grid_cell_id": row.grid_cell_id}
        if row.grid_cell_id is not None
        else {"street_id": row.street_id}
        if row.street_id is not None
        else {}
    )
    if place:
        wanted.append(
            TicketFilter(open_only=True, category=category.code if category else None, **place)
        )
    found: dict[str, dict[str, str]] = {}
    for f in wanted:
        rows, _ = await list_tickets(conn, rt, f, actor=actor, per_page=10, sort="newest")
        for other in rows:
            if other.id != row.id and other.number not in found and len(found) < 10:
                found[other.number] = {
                    "number": other.number,
                    "title": other.title or "",
                    "state": rt.catalog.label("state", other.state, locale),
                    "created": rt.local_text(other.created_at) or "",
                }
    return list(found.values())


class MaskedContact(Contact):
    masked: bool  # the phone numbers masked: the full ones through the audited view


class TicketPage(TicketView):
    """A ticket as its page shows it: the view, its case work, how to call back (masked),
    what it was merged into or may repeat, and its mediations."""

    casework: dict[str, list[Any]]
    contact: MaskedContact | None
    merged_into_number: str | None
    merge_candidates: list[dict[str, str]]
    mediations: list[Any]


async def load_view(request: web.Request, actor: Actor) -> tuple[TicketPage, list[Any]]:
    rt: Runtime = request.config_dict[RUNTIME]
    ref = request.match_info["ticket"]
    async with rt.db.read() as conn:
        row = await ticket_by_ref(conn, ref)
        if row is None or not visible_to(actor, row):
            raise await not_found(request, actor)
        history = await ticket_history(conn, row.id)
        view_locale = ui_locale(request, actor)
        ticket = ticket_view(rt, row, view_locale, actor=actor)
        contact = await ticket_contact(conn, row.citizen_id)
        into = await ticket_by_ref(conn, row.merged_into_id) if row.merged_into_id else None
        view: TicketPage = {
            **ticket,
            "casework": await ticket_casework(conn, row.id),
            "merged_into_number": into.number if into is not None else None,
            "merge_candidates": (
                await merge_candidates(conn, rt, row, actor, view_locale)
                if Step.MERGE in steps_shown(ticket)
                else []
            ),
            "mediations": await ticket_mediations(conn, rt, row.id, view_locale),
            # masked on the page; the full numbers through the audited view
            # (ticket_contact_full)
            "contact": (
                {**contact, "phones": [mask_phone(p) for p in contact["phones"]], "masked": True}
                if contact
                else None
            ),
        }
    return view, history


def sla_clock(rt: Runtime, view: TicketView, locale: str) -> dict[str, str] | None:
    """The running clock as a person reads it: what is due, and the working time left
    (clock time for urgent tickets), or how late it is."""
    if view["state"] not in ("dispatched", "accepted"):
        return None
    signing = view["state"] == "dispatched" and view["sign_due_at"] is not None
    deadline = view["sign_due_at"] if signing else view["due_at"]
    if deadline is None:
        return None
    now = rt.clock.now()
    working = view["priority"] != "urgent"
    late = now >= deadline
    span = (
        rt.calendar.between(*((deadline, now) if late else (now, deadline)))
        if working
        else abs(deadline - now)
    )
    hours = span.total_seconds() / 3600
    if working:
        per_day = rt.calendar.day_length.total_seconds() / 3600
        days, rest = divmod(round(hours), round(per_day))
        key = "ui.sla.working" if days and rest else "ui.sla.days" if days else "ui.sla.hours"
        amount = rt.text(key, locale, days=int(days), hours=int(rest))
    else:
        amount = rt.text("ui.sla.clock", locale, hours=int(hours), minutes=int(hours * 60) % 60)
    what = rt.text("ui.sla.sign" if signing else "ui.sla.handle", locale)
    key = "ui.sla.late" if late else "ui.sla.left"
    return {"text": rt.text(key, locale, what=what, amount=amount), "late": "late" if late else ""}


async def card_context(
    request: web.Request,
    actor: Actor,
    *,
    failed: Step | None = None,
    values: dict[str, str] | None = None,
    error: str = "",
) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    view, history = await load_view(request, actor)
    steps = steps_shown(view)
    return {
        "ticket": view,
        "clock": sla_clock(rt, view, locale),
        "note_value": "",
        "note_error": "",
        "file_error": "",
        "steps": [(s, STEP_FIELDS[s]) for s in steps],
        "failed": failed.value if failed else "",
        "values": values or {},
        "error": error,
        "timeline": timeline(rt, history, locale),
        "departments": handling_departments(rt, locale) if Step.DISPATCH in steps else [],
    }


@page_handler
async def ticket_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, STAFF)
    context = await card_context(request, actor)
    context["page"] = "ticket"
    return await render(request, "ticket.html", actor, context)


@page_handler
async def ticket_contact_full(request: web.Request) -> web.StreamResponse:
    """The citizen's full numbers, asked for on the ticket page: each time an audit event
    (``ticket.contact_viewed``); a ticket the user may not see is 404, as the page."""
    actor, _ = await require_form(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    try:
        contact = await view_ticket_contact(rt, request.match_info["ticket"], actor=actor)
    except NotFound:
        raise await not_found(request, actor) from None
    return await render(
        request,
        "parts/ticket_contact.html",
        actor,
        {"contact": {**contact, "masked": False}, "number": contact["number"]},
    )


@page_handler
async def ticket_card(request: web.Request) -> web.StreamResponse:
    actor = await require(request, STAFF)
    return await render(
        request, "parts/ticket_card.html", actor, await card_context(request, actor)
    )


def _params(step: Step, form: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for f in STEP_FIELDS[step]:
        value = form_text(form, f.name)
        if value is None:
            if f.required:
                raise InvalidInput("missing_field", field=f.name)
            continue
        if len(value) > f.limit:
            raise InvalidInput("field_too_long", field=f.name, limit=f.limit)
        if f.kind in ("number", "department"):
            params[f.name] = require_id(value, field=f.name)
        else:
            params[f.name] = value
    return params


# where a step's form may ask to be answered: the ticket's card, or the queue it sits in
VIEWS = {
    "card": "parts/ticket_card.html",
    "approvals": "parts/approvals_list.html",
    "dispatch": "parts/dispatch_list.html",
}


async def _view_context(
    request: web.Request, actor: Actor, view: str, **failure: Any
) -> dict[str, Any]:
    from agent_ui import queues

    if view == "approvals":
        context = await queues.approvals_context(request, actor)
    elif view == "dispatch":
        context = await queues.dispatch_context(request, actor)
    else:
        return await card_context(request, actor, **failure)
    failed = failure.get("failed")
    context.update(
        failed=failed.value if failed else "",
        failed_ticket=request.match_info["ticket"] if failed else "",
        values=failure.get("values") or {},
        error=failure.get("error", ""),
    )
    return context


@page_handler
async def ticket_step(request: web.Request) -> web.StreamResponse:
    """POST /ui/tickets/{ticket}/steps/{step}: take one step; answer with the part the
    form came from (``view``: the card, the approvals queue, the dispatch desk)."""
    rt: Runtime = request.config_dict[RUNTIME]
    actor, form = await require_form(request, STAFF)
    name = request.match_info["step"]
    if name not in Step.__members__.values():
        raise await not_found(request, actor)
    step = Step(name)
    view = str(form.get("view", "card"))
    if view not in VIEWS:
        view = "card"
    values = {f.name: str(form.get(f.name, "")) for f in STEP_FIELDS[step]}
    locale = ui_locale(request, actor)
    version = form_text(form, "version")
    try:
        params = _params(step, form)
        await take_step(
            rt,
            request.match_info["ticket"],
            step,
            actor=actor,
            expected_version=parse_id(version),
            **params,
        )
    except HotlineError as error:
        message = str(error_body(rt, error, locale)["error"]["message"])
        context = await _view_context(
            request, actor, view, failed=step, values=values, error=message
        )
        context.update(notice=message, notice_kind="error", oob=True)
        return await render(request, VIEWS[view], actor, context, status=error.status)
    done = rt.text("ui.ticket.done", locale, step=rt.catalog.label("step", step.value, locale))
    if actor.role is Role.DEPARTMENT and step is Step.RETURN:
        # the ticket has left this department: back to the portal
        return web.Response(status=200, headers={"HX-Redirect": "/ui/portal"})
    context = await _view_context(request, actor, view)
    context.update(notice=done, notice_kind="ok", oob=True)
    return await render(request, VIEWS[view], actor, context)


@page_handler
async def ticket_timeline(request: web.Request) -> web.StreamResponse:
    """Only the timeline (shown beside a ticket in a queue)."""
    actor = await require(request, STAFF)
    rt: Runtime = request.config_dict[RUNTIME]
    _, history = await load_view(request, actor)
    entries = timeline(rt, history, ui_locale(request, actor))
    return await render(request, "parts/timeline.html", actor, {"timeline": entries})


@page_handler
async def ticket_note(request: web.Request) -> web.StreamResponse:
    """POST /ui/tickets/{ticket}/notes: an internal note; answers with the card."""
    rt: Runtime = request.config_dict[RUNTIME]
    actor, form = await require_form(request, STAFF)
    body = str(form.get("note", ""))
    try:
        await add_note(rt, request.match_info["ticket"], body, actor=actor)
    except HotlineError as error:
        context = await card_context(request, actor)
        message = error_text(request, error)
        context.update(note_value=body, note_error=message)
        context.update(notice=message, notice_kind="error", oob=True)
        return await render(request, VIEWS["card"], actor, context, status=error.status)
    context = await card_context(request, actor)
    locale = ui_locale(request, actor)
    context.update(notice=rt.text("ui.casework.noted", locale), notice_kind="ok", oob=True)
    return await render(request, VIEWS["card"], actor, context)


@page_handler
async def ticket_upload(request: web.Request) -> web.StreamResponse:
    """POST /ui/tickets/{ticket}/attachments (multipart): a photo or a document."""
    rt: Runtime = request.config_dict[RUNTIME]
    actor = await require(request, STAFF)
    session = await current_session(request)
    if session is None or not csrf_ok(request, session):
        raise Forbidden("csrf_failed")
    upload: Upload | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        data = await part.read_chunk(MAX_FILE + 1)
        while len(data) <= MAX_FILE and (chunk := await part.read_chunk()):
            data += chunk
        upload = Upload(bytes(data), part.filename or "")
    try:
        if upload is None:
            raise InvalidInput("missing_field", field="file")
        await attach_file(rt, request.match_info["ticket"], upload, actor=actor)
    except HotlineError as error:
        context = await card_context(request, actor)
        message = error_text(request, error)
        context.update(file_error=message, notice=message, notice_kind="error", oob=True)
        return await render(request, VIEWS["card"], actor, context, status=error.status)
    context = await card_context(request, actor)
    locale = ui_locale(request, actor)
    context.update(notice=rt.text("ui.casework.attached", locale), notice_kind="ok", oob=True)
    return await render(request, VIEWS["card"], actor, context)


@page_handler
async def ticket_file(request: web.Request) -> web.StreamResponse:
    """GET /ui/tickets/{ticket}/attachments/{id}: the file, to staff who may see the ticket."""
    rt: Runtime = request.config_dict[RUNTIME]
    actor = await require(request, STAFF)
    view, _ = await load_view(request, actor)  # 404 for another department's ticket
    wanted = parse_id(request.match_info["file"])
    found = next((f for f in view["casework"]["files"] if f.id == wanted), None)
    if found is None:
        raise await not_found(request, actor)
    path = Path(rt.settings.data_dir) / found.path
    inline = found.content_type.startswith("image/") or found.content_type == "application/pdf"
    name = found.filename or Path(found.path).name
    disposition = "inline" if inline else "attachment"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": found.content_type,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "private, max-age=3600",
        },
    )
