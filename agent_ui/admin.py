"""The administrator's staff pages, a person's own account page, and the one-time
set-password page (see ``docs/accounts.md``).

Forms are plain posts with the session's CSRF token: a success answers with the page
again and a notice (the one-time link of an invitation or a reset shown there, once);
a refusal answers with the same form, what was typed still in it, the reason in the
viewer's language and the error's status, and nothing changed.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from agent_ui.auth import SECOND_COOKIE, csrf_ok, current_session, set_cookie
from agent_ui.common import error_text, page_handler, require, require_form
from agent_ui.render import render, ui_locale
from callcenter.actions import accounts
from callcenter.actions.configuration import export_configuration, import_configuration
from callcenter.actions.staff import SecondStep, start_enrolment
from callcenter.api.keys import RUNTIME
from callcenter.domain.errors import Forbidden, HotlineError, InvalidInput, NotFound
from callcenter.domain.ids import require_id
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.staffviews import (
    account_events,
    admin_events,
    list_staff,
    open_sessions,
    staff_member,
)

ADMINS = frozenset({Role.ADMIN})
MAX_UPLOAD = 1024 * 1024  # the server's own limit on a request body
# the audit page's filter: entity types per choice
AUDIT_KINDS: dict[str, tuple[str, ...] | None] = {
    "": None,
    "accounts": ("user",),
    "configuration": (
        "category",
        "department",
        "grid_cell",
        "calendar_day",
        "text",
        "configuration",
        "queue",
        "sla",
    ),
}
SIGNED_IN = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.DEPARTMENT})
STEPS = {
    "deactivate": accounts.deactivate_staff,
    "reactivate": accounts.reactivate_staff,
    "signout": accounts.sign_out_everywhere,
    "two_factor_off": accounts.reset_two_factor,
}
# what the templates may leave out (they are rendered with StrictUndefined)
DEFAULTS: dict[str, Any] = {
    "link": None,
    "error": "",
    "sent_by_sms": False,
    "created": "",
    "member": None,
    "member_department": "",
    "form": {},
    "notice_kind": "ok",
}
FIELDS = ("username", "display_name", "role", "department", "locale", "phone", "capacity")
LISTS = ("languages", "queues", "categories")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/ui/admin", admin_home)
    r.add_get("/ui/admin/", admin_home)
    r.add_get("/ui/admin/config.json", config_export)
    r.add_post("/ui/admin/config", config_import)
    r.add_get("/ui/admin/staff", staff_page)
    r.add_post("/ui/admin/staff", staff_create)
    r.add_get("/ui/admin/staff/{user}", member_page)
    r.add_post("/ui/admin/staff/{user}", member_update)
    r.add_post("/ui/admin/staff/{user}/reset", member_reset)
    r.add_post("/ui/admin/staff/{user}/{step}", member_step)
    r.add_get("/ui/admin/audit", audit_page)
    r.add_get("/ui/account", account_page)
    r.add_post("/ui/account/sessions/{session}/end", account_end_session)
    r.add_post("/ui/account/two_factor", account_two_factor)
    r.add_post("/ui/account/password", account_password)
    r.add_get("/ui/password/{token}", password_page)
    r.add_post("/ui/password/{token}", password_submit)


def event_line(rt: Runtime, event: Any, locale: str) -> dict[str, Any]:
    """An audit event about accounts or configuration as a person says it: "系统管理员
    停用了 agent2（结束 1 个会话）", "Admin made 2026-12-21 a holiday (typhoon day)"."""
    details = event.details or {}
    after = event.after or {}
    before = event.before or {}
    subject = (
        details.get("username")
        or after.get("username")
        or details.get("code")
        or after.get("code")
        or details.get("key")
        or details.get("day")
        or (event.actor_name if event.actor_id == event.entity_id else None)
        or f"#{event.entity_id or '?'}"
    )
    action = str(event.action)
    group, _, step = action.partition(".")
    key = f"ui.admin.event.{step}" if group == "user" else f"ui.admin.event.{group}_{step}"
    if not rt.catalog.has(key):
        key = "ui.admin.event.other"
    reason = details.get("reason")
    kind = after.get("kind") if event.after else None
    fields = [f for f in after if f not in ("active", "restored")] or list(after)
    return {
        "at": event.at,
        "text": rt.text(
            key,
            locale,
            who=rt.text("ui.timeline.system", locale)
            if event.actor_role == "system"
            else event.actor_name,
            subject=subject,
            sessions=details.get("sessions_ended", 0),
            reason=rt.text(f"ui.admin.reason.{reason}", locale) if reason else "",
            action=action,
            kind=rt.text(f"ui.calendar.{kind or 'none'}", locale),
            note=after.get("note") or before.get("note") or "",
            locale=details.get("locale", ""),
            fields=", ".join(rt.catalog.label("field", f, locale) for f in fields),
        ),
    }


def _form_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in FIELDS:
        value = form.get(name)
        if isinstance(value, str):
            data[name] = value.strip()
    if not data.get("department"):
        data.pop("department", None)
    for name in LISTS:
        data[name] = [str(v) for v in form.getall(name, [])]
    per_channel = {
        str(k).removeprefix("capacity_"): str(v).strip()
        for k, v in form.items()
        if str(k).startswith("capacity_")
    }
    if per_channel:
        data["channel_capacity"] = per_channel
    return data


def _choices(rt: Runtime, locale: str) -> dict[str, Any]:
    departments = sorted(
        (d for d in rt.directory.departments if not d.is_area or d.kind == "street"),
        key=lambda d: d.name(locale),
    )
    return {
        "roles": [r.value for r in accounts.STAFF_ROLES],
        "departments": departments,
        "queues": sorted(rt.settings.acd.queues),
        "channels": sorted(c.name for c in rt.channels),
        "categories": sorted(rt.directory.categories, key=lambda c: c.code),
        "locales": ["zh-CN", "en"],
    }


async def _staff_context(request: web.Request, actor: Actor) -> dict[str, Any]:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        staff = await list_staff(conn)
        events = await account_events(conn, limit=30)
    return {
        **DEFAULTS,
        "page": "admin_staff",
        "staff": staff,
        "by_id": rt.directory.by_id,
        "events": [event_line(rt, e, locale) for e in events],
        "form": {},
        **_choices(rt, locale),
    }


@page_handler
async def admin_home(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await render(request, "admin_home.html", actor, {**DEFAULTS, "page": "admin_home"})


@page_handler
async def config_export(request: web.Request) -> web.StreamResponse:
    """The whole configuration as one JSON file (no accounts, no secrets)."""
    await require(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    document = await export_configuration(rt)
    day = rt.local(rt.clock.now()).strftime("%Y%m%d")
    return web.Response(
        body=json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="hotline-config-{day}.json"'},
    )


@page_handler
async def config_import(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        raise InvalidInput("body_too_large", limit=MAX_UPLOAD)
    form = await request.post()
    session = await current_session(request)
    if session is None or not csrf_ok(request, session, str(form.get("csrf", ""))):
        raise Forbidden("csrf_failed")
    upload = form.get("file")
    raw = upload.file.read(MAX_UPLOAD + 1) if isinstance(upload, FileField) else b""
    context: dict[str, Any] = {**DEFAULTS, "page": "admin_home"}
    try:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("config_format") from None
        counts = await import_configuration(rt, document, actor=actor)
    except HotlineError as error:
        context["error"] = error_text(request, error)
        return await render(request, "admin_home.html", actor, context, status=error.status)
    context["notice"] = rt.text("ui.config.imported", locale, **counts)
    return await render(request, "admin_home.html", actor, context)


@page_handler
async def staff_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await render(request, "admin_staff.html", actor, await _staff_context(request, actor))


@page_handler
async def staff_create(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    data = _form_data(form)
    try:
        made = await accounts.create_staff(
            rt, data, actor=actor, send_sms=form.get("invite") == "sms"
        )
    except HotlineError as error:
        context = await _staff_context(request, actor)
        context.update(form=data, error=error_text(request, error))
        return await render(request, "admin_staff.html", actor, context, status=error.status)
    context = await _staff_context(request, actor)
    context.update(link=made.link, created=data["username"], sent_by_sms=made.sent_by_sms)
    return await render(request, "admin_staff.html", actor, context)


async def _member_context(
    request: web.Request, actor: Actor, user_id: int
) -> dict[str, Any] | None:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    async with rt.db.read() as conn:
        member = await staff_member(conn, user_id)
        if member is None:
            return None
        sessions = await open_sessions(conn, rt, user_id)
        events = await account_events(conn, user_id=user_id, limit=50)
    dept = rt.directory.by_id.get(member["department_id"] or -1)
    return {
        **DEFAULTS,
        "page": "admin_member",
        "member": member,
        "member_department": dept.code if dept else "",
        "sessions": sessions,
        "events": [event_line(rt, e, locale) for e in events],
        "form": {},
        **_choices(rt, locale),
    }


def _user_id(request: web.Request) -> int:
    return require_id(request.match_info["user"], field="user")


async def _member_answer(
    request: web.Request, actor: Actor, user_id: int, *, status: int = 200, **extra: Any
) -> web.Response:
    context = await _member_context(request, actor, user_id)
    if context is None:
        raise NotFound("unknown_user", user=user_id)
    context.update(extra)
    return await render(request, "admin_member.html", actor, context, status=status)


@page_handler
async def member_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, ADMINS)
    return await _member_answer(request, actor, _user_id(request))


@page_handler
async def member_update(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    user_id = _user_id(request)
    data = _form_data(form)
    data.pop("username", None)
    try:
        await accounts.update_staff(rt, user_id, data, actor=actor)
    except HotlineError as error:
        return await _member_answer(
            request,
            actor,
            user_id,
            status=error.status,
            error=error_text(request, error),
            form=data,
        )
    locale = ui_locale(request, actor)
    return await _member_answer(request, actor, user_id, notice=rt.text("ui.admin.saved", locale))


@page_handler
async def member_reset(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    user_id = _user_id(request)
    try:
        made = await accounts.reset_password(
            rt, user_id, actor=actor, send_sms=form.get("invite") == "sms"
        )
    except HotlineError as error:
        return await _member_answer(
            request, actor, user_id, status=error.status, error=error_text(request, error)
        )
    locale = ui_locale(request, actor)
    notice = rt.text("ui.admin.reset_sent" if made.sent_by_sms else "ui.admin.reset_done", locale)
    return await _member_answer(request, actor, user_id, notice=notice, link=made.link)


@page_handler
async def member_step(request: web.Request) -> web.StreamResponse:
    actor, _ = await require_form(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    user_id = _user_id(request)
    step = STEPS.get(request.match_info["step"])
    if step is None:
        raise NotFound()
    try:
        await step(rt, user_id, actor=actor)
    except HotlineError as error:
        return await _member_answer(
            request, actor, user_id, status=error.status, error=error_text(request, error)
        )
    locale = ui_locale(request, actor)
    notice = rt.text("ui.admin.done." + request.match_info["step"], locale)
    return await _member_answer(request, actor, user_id, notice=notice)


@page_handler
async def audit_page(request: web.Request) -> web.StreamResponse:
    """What was done to accounts and configuration, newest first, in words."""
    actor = await require(request, ADMINS)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    kind = request.query.get("kind", "")
    async with rt.db.read() as conn:
        events = await admin_events(conn, kinds=AUDIT_KINDS.get(kind), limit=200)
    return await render(
        request,
        "admin_audit.html",
        actor,
        {
            **DEFAULTS,
            "page": "admin_audit",
            "kind": kind,
            "kinds": list(AUDIT_KINDS),
            "events": [event_line(rt, e, locale) for e in events],
        },
    )


# --- a person's own account -----------------------------------------------------------------


async def _account_answer(
    request: web.Request, actor: Actor, *, status: int = 200, **extra: Any
) -> web.Response:
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    session = await current_session(request)
    assert actor.id is not None
    async with rt.db.read() as conn:
        sessions = await open_sessions(conn, rt, actor.id)
        member = await staff_member(conn, actor.id)
        events = await account_events(conn, user_id=actor.id, limit=20)
    current = accounts.session_key(session.token) if session else ""
    context = {
        **DEFAULTS,
        "page": "account",
        "sessions": sessions,
        "current_session": current,
        "required": actor.role.value in rt.settings.staff.two_factor_roles,
        "member": member,
        "events": [event_line(rt, e, locale) for e in events],
        **extra,
    }
    return await render(request, "account.html", actor, context, status=status)


@page_handler
async def account_page(request: web.Request) -> web.StreamResponse:
    actor = await require(request, SIGNED_IN)
    return await _account_answer(request, actor)


@page_handler
async def account_end_session(request: web.Request) -> web.StreamResponse:
    actor, _ = await require_form(request, SIGNED_IN)
    rt: Runtime = request.config_dict[RUNTIME]
    await accounts.end_session(rt, request.match_info["session"][:64], actor=actor)
    locale = ui_locale(request, actor)
    return await _account_answer(request, actor, notice=rt.text("ui.account.ended", locale))


@page_handler
async def account_password(request: web.Request) -> web.StreamResponse:
    actor, form = await require_form(request, SIGNED_IN)
    rt: Runtime = request.config_dict[RUNTIME]
    locale = ui_locale(request, actor)
    session = await current_session(request)
    new = str(form.get("new", ""))[:300]
    try:
        if new != str(form.get("again", ""))[:300]:
            raise InvalidInput("passwords_differ")
        await accounts.change_own_password(
            rt,
            str(form.get("current", "")),
            new,
            actor=actor,
            keep_session=accounts.session_key(session.token) if session else None,
        )
    except HotlineError as error:
        return await _account_answer(
            request, actor, status=error.status, error=error_text(request, error)
        )
    return await _account_answer(request, actor, notice=rt.text("ui.account.password_set", locale))


@page_handler
async def account_two_factor(request: web.Request) -> web.StreamResponse:
    """Turn on two-factor sign-in (or, where the role allows, off)."""
    actor, form = await require_form(request, SIGNED_IN)
    rt: Runtime = request.config_dict[RUNTIME]
    assert actor.id is not None
    if form.get("turn") == "off":
        await accounts.reset_two_factor(rt, actor.id, actor=actor)
        locale = ui_locale(request, actor)
        return await _account_answer(
            request, actor, notice=rt.text("ui.account.two_factor_off", locale)
        )
    step = await start_enrolment(rt, actor=actor)
    return await second_step_page(request, step, next_url="/ui/account")


async def second_step_page(
    request: web.Request,
    step: SecondStep,
    *,
    next_url: str = "",
    error: str = "",
    status: int = 200,
) -> web.Response:
    """The code from the authenticator app (first scanning its QR code when enrolling)."""
    rt: Runtime = request.config_dict[RUNTIME]
    response = await render(
        request,
        "second_factor.html",
        None,
        {
            "page": "second_factor",
            "next_url": "/ui/login",  # the language switch: back to a page that exists
            "step": step,
            "error": error,
            "next": next_url
            if next_url.startswith("/ui/") and not next_url.startswith("//")
            else "",
        },
        status=status,
    )
    minutes = int(rt.settings.staff.second_step_minutes * 60)
    set_cookie(response, request, SECOND_COOKIE, step.token, max_age=minutes)
    return response


# --- the one-time set-password link ---------------------------------------------------------


@page_handler
async def password_page(request: web.Request) -> web.StreamResponse:
    rt: Runtime = request.config_dict[RUNTIME]
    user = await accounts.link_user(rt, request.match_info["token"])
    return await render(
        request,
        "set_password.html",
        None,
        {
            **DEFAULTS,
            "page": "set_password",
            "person": user,
            "token": request.match_info["token"],
        },
        status=200 if user is not None else 404,
    )


@page_handler
async def password_submit(request: web.Request) -> web.StreamResponse:
    """No session here: the link is the credential, and spent once used; a cross-site
    post cannot know it."""
    rt: Runtime = request.config_dict[RUNTIME]
    token = request.match_info["token"]
    form = await request.post()
    password = str(form.get("password", ""))[:300]
    try:
        if password != str(form.get("again", ""))[:300]:
            raise InvalidInput("passwords_differ")
        await accounts.set_password_from_link(rt, token, password)
    except HotlineError as error:
        user = await accounts.link_user(rt, token)
        return await render(
            request,
            "set_password.html",
            None,
            {
                **DEFAULTS,
                "page": "set_password",
                "person": user,
                "token": token,
                "error": error_text(request, error),
            },
            status=error.status,
        )
    return web.Response(status=303, headers={"Location": "/ui/login?set=1"})
